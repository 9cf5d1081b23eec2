// The worker's serving endpoint: POST /v2/replicas/<replicaId>/infer, KServe v2 with binary
// tensors both ways (the gateway has already authenticated and validated). Plain node:http: this
// hop is internal, and every microsecond here is overhead on each request.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Tensor } from "@kiln/engine";
import { decodeInferRequest, encodeInferResponse, ServingError } from "@kiln/serving";
import type { ReplicaHost } from "./replica-host.ts";

const ROUTE = /^\/v2\/replicas\/([A-Za-z0-9_]+)\/infer$/;
const MAX_BODY_BYTES = 256 * 1024 * 1024;

function send(
  res: ServerResponse,
  status: number,
  body: Buffer | string,
  headers: Record<string, string | number> = {},
) {
  res.writeHead(status, { "content-length": Buffer.byteLength(body), ...headers });
  res.end(body);
}

const sendError = (res: ServerResponse, status: number, message: string) =>
  send(res, status, JSON.stringify({ error: message }), { "content-type": "application/json" });

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size > MAX_BODY_BYTES) req.destroy(new Error("body too large"));
      else chunks.push(chunk);
    });
    req.on("end", () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

export function createServingServer(host: ReplicaHost): Server {
  return createServer(async (req, res) => {
    const match = req.method === "POST" ? ROUTE.exec(req.url ?? "") : null;
    if (!match) return sendError(res, 404, `no route ${req.method} ${req.url}`);
    const replica = host.replicas.get(match[1] as string);
    // 410: the gateway's view of the registry is stale; it retries on another replica.
    if (replica?.status !== "ready") return sendError(res, 410, `replica ${match[1]} is not serving here`);
    replica.inFlight++;
    replica.lastRequestAt = Date.now();
    try {
      const body = await readBody(req);
      const headerLength = req.headers["inference-header-content-length"];
      const request = decodeInferRequest(body, headerLength === undefined ? undefined : Number(headerLength));
      const inputs: Record<string, Tensor> = {};
      for (const t of request.inputs) inputs[t.name] = { dtype: t.dtype, shape: t.shape, data: t.data };
      const result = await replica.batcher.run(inputs);
      const outputs = Object.entries(result.outputs).map(([name, t]) => ({ name, ...t }));
      const encoded = encodeInferResponse({ modelName: replica.job.deploymentId, outputs }, () => true);
      send(res, 200, encoded.body, {
        "content-type": "application/octet-stream",
        "inference-header-content-length": encoded.headerLength ?? encoded.body.byteLength,
        "x-kiln-compute-ms": result.computeMs.toFixed(4),
        "x-kiln-queue-ms": result.queueMs.toFixed(4),
        "x-kiln-batch-size": result.batchSize,
        "x-kiln-batch-share": result.batchShare.toFixed(6),
      });
    } catch (error) {
      if (error instanceof ServingError) return sendError(res, error.status, error.message);
      const code = (error as { code?: string }).code;
      // The engine's argument errors are the client's fault; anything else is ours.
      const isClientError = code === "SHAPE_MISMATCH" || code === "INVALID_ARGUMENT" || code === "DTYPE_MISMATCH";
      sendError(res, isClientError ? 400 : 500, (error as Error).message);
    } finally {
      replica.inFlight--;
      replica.lastRequestAt = Date.now();
    }
  });
}
