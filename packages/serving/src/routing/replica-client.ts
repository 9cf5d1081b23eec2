// Gateway -> worker hop: KServe v2 binary over kept-alive HTTP/1.1 connections.
import { Agent, request } from "node:http";
import type { EncodedBody } from "../protocol/infer-codec.ts";

export interface ForwardedAnswer {
  status: number;
  body: Buffer;
  headerLength?: number;
  computeMs: number;
  queueMs: number;
  batchSize: number;
  /** This request's rows over the batch's rows. */
  batchShare: number;
}

/** The worker could not be reached or dropped the connection: the replica is gone, not the request's fault. */
export class ReplicaUnreachableError extends Error {}

const agent = new Agent({ keepAlive: true, maxSockets: 256, keepAliveMsecs: 10_000 });

// Worker base URLs are few and long-lived: parse each once.
const targets = new Map<string, { host: string; port: string }>();
function targetOf(baseUrl: string): { host: string; port: string } {
  let target = targets.get(baseUrl);
  if (!target) {
    const url = new URL(baseUrl);
    target = { host: url.hostname, port: url.port };
    if (targets.size > 1_000) targets.clear();
    targets.set(baseUrl, target);
  }
  return target;
}

export function forwardToReplica(
  baseUrl: string,
  replicaId: string,
  encoded: EncodedBody,
  timeoutMs: number,
): Promise<ForwardedAnswer> {
  const target = targetOf(baseUrl);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        host: target.host,
        port: target.port,
        path: `/v2/replicas/${replicaId}/infer`,
        method: "POST",
        headers: {
          "content-type": "application/octet-stream",
          "content-length": encoded.body.byteLength,
          ...(encoded.headerLength === undefined ? {} : { "inference-header-content-length": encoded.headerLength }),
        },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", (error) => reject(new ReplicaUnreachableError(error.message)));
        res.on("end", () => {
          const h = res.headers;
          resolve({
            status: res.statusCode ?? 500,
            body: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks),
            headerLength: h["inference-header-content-length"]
              ? Number(h["inference-header-content-length"])
              : undefined,
            computeMs: Number(h["x-kiln-compute-ms"] ?? 0),
            queueMs: Number(h["x-kiln-queue-ms"] ?? 0),
            batchSize: Number(h["x-kiln-batch-size"] ?? 1),
            batchShare: Number(h["x-kiln-batch-share"] ?? 1),
          });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`replica ${replicaId} did not answer within ${timeoutMs} ms`)));
    req.on("error", (error) => reject(new ReplicaUnreachableError(error.message)));
    req.end(encoded.body);
  });
}
