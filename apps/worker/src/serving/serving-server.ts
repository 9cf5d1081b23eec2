// The worker's serving endpoint, KServe v2 (the gateway has already authenticated and validated).
// Plain node:http: this hop is internal, and every microsecond here is overhead on each request.
// Two ways in, answered by the same code:
// - kiln-mux/2 (what gateways use): `GET /v2/mux` with `Upgrade: kiln-mux/2` turns the connection
//   into a multiplexed stream of request and answer frames (packages/serving mux-frames.ts), so an
//   inference costs no HTTP parsing and one write carries every answer of an event-loop turn. The
//   answer is the client's (the outputs it asked for, JSON or binary, named by the model name and
//   version of the frame), which the gateway sends on as it is. kiln-mux/1 (older gateways) is
//   still answered: every output in binary;
// - POST /v2/replicas/<replicaId>/infer, one HTTP request per inference (older gateways, curl):
//   every output in binary.
// Both are served on the TCP port and, for gateways on the same host, on a Unix socket
// (listenOnSocket; packages/serving local-socket.ts): the same HTTP server takes its connections.
import { chmodSync, unlinkSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import type { Tensor } from "@kiln/engine";
import {
  allBinary,
  type BatchedResult,
  decodeInferRequest,
  decodeRequestFrame,
  encodeClientResponse,
  encodeInferResponse,
  FrameReader,
  FrameWriter,
  MUX_PATH,
  MUX_PROTOCOL,
  MUX_PROTOCOL_2,
  type MuxProtocol,
  type MuxRequestFrame,
  newSocketPath,
  removeStaleSockets,
  ServingError,
} from "@kiln/serving";
import type { HostedReplica, ReplicaHost } from "./replica-host.ts";

const ROUTE = /^\/v2\/replicas\/([A-Za-z0-9_]+)\/infer$/;
const MAX_BODY_BYTES = 256 * 1024 * 1024;

/** One answer, whichever way the request came. */
interface Answer {
  status: number;
  body: Buffer | string;
  /** Binary answers: the JSON header's length; absent for JSON error bodies. */
  headerLength?: number;
  computeMs: number;
  queueMs: number;
  batchSize: number;
  batchShare: number;
}

const errorAnswer = (status: number, message: string): Answer => ({
  status,
  body: JSON.stringify({ error: message }),
  computeMs: 0,
  queueMs: 0,
  batchSize: 0,
  batchShare: 0,
});

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

/** The answer for a request that failed on the worker. */
function failure(error: unknown): Answer {
  if (error instanceof ServingError) return errorAnswer(error.status, error.message);
  const code = (error as { code?: string }).code;
  // The engine's argument errors are the client's fault; anything else is ours.
  const isClientError = code === "SHAPE_MISMATCH" || code === "INVALID_ARGUMENT" || code === "DTYPE_MISMATCH";
  return errorAnswer(isClientError ? 400 : 500, (error as Error).message);
}

/** A replica that answered a request (or failed to) is no longer busy with it. */
function release(replica: HostedReplica): void {
  replica.inFlight--;
  replica.lastRequestAt = Date.now();
}

/** The hosted replica, counted in flight, or undefined when it is not serving here. */
function enter(host: ReplicaHost, replicaId: string): HostedReplica | undefined {
  const replica = host.replicas.get(replicaId);
  if (replica?.status !== "ready") return undefined;
  replica.inFlight++;
  replica.lastRequestAt = Date.now();
  return replica;
}

// 410: the gateway's view of the registry is stale; it retries on another replica.
const notHere = (replicaId: string) => errorAnswer(410, `replica ${replicaId} is not serving here`);

/**
 * Runs one request on a replica that has counted it in flight (released before `done`). With
 * `answerAs` (kiln-mux/2) the answer is the client's, named by that model name and version;
 * without it, every output in binary. `done` is called once; from the frame to the answer there is
 * no promise per request (the batcher calls back).
 */
function runOn(
  replica: HostedReplica,
  bytes: Buffer,
  headerLength: number | undefined,
  answerAs: MuxRequestFrame["model"],
  done: (answer: Answer) => void,
): void {
  let request: ReturnType<typeof decodeInferRequest>;
  const inputs: Record<string, Tensor> = {};
  try {
    request = decodeInferRequest(bytes, headerLength);
    for (const t of request.inputs) inputs[t.name] = { dtype: t.dtype, shape: t.shape, data: t.data };
  } catch (error) {
    release(replica);
    done(failure(error));
    return;
  }
  replica.batcher.runThen(inputs, (error, result) => {
    let answer: Answer;
    if (error !== null || result === undefined) answer = failure(error);
    else {
      try {
        answer = answerFor(replica, request, result, answerAs);
      } catch (thrown) {
        answer = failure(thrown);
      }
    }
    release(replica);
    done(answer);
  });
}

function answerFor(
  replica: HostedReplica,
  request: ReturnType<typeof decodeInferRequest>,
  result: BatchedResult,
  answerAs: MuxRequestFrame["model"],
): Answer {
  const outputs = Object.entries(result.outputs).map(([name, t]) => ({ name, ...t }));
  const encoded = answerAs
    ? encodeClientResponse(request, answerAs, outputs)
    : encodeInferResponse({ modelName: replica.job.deploymentId, outputs }, allBinary);
  return {
    status: 200,
    body: encoded.body,
    // A plain JSON client answer has no header length; an all-binary one always has.
    headerLength: answerAs ? encoded.headerLength : (encoded.headerLength ?? encoded.body.byteLength),
    computeMs: result.computeMs,
    queueMs: result.queueMs,
    batchSize: result.batchSize,
    batchShare: result.batchShare,
  };
}

/** One request over plain HTTP: counted in flight before its body is read. Every output in binary. */
async function inferOverHttp(
  host: ReplicaHost,
  replicaId: string,
  req: IncomingMessage,
  headerLength: number | undefined,
): Promise<Answer> {
  const replica = enter(host, replicaId);
  if (!replica) return notHere(replicaId);
  let bytes: Buffer;
  try {
    bytes = await readBody(req);
  } catch (error) {
    release(replica);
    return failure(error);
  }
  return new Promise((resolve) => runOn(replica, bytes, headerLength, undefined, resolve));
}

/** Serves one upgraded connection: request frames in, answer frames out (in completion order). */
function serveMux(host: ReplicaHost, socket: Socket, head: Buffer, protocol: MuxProtocol): void {
  socket.setNoDelay(true);
  socket.setTimeout(0);
  const writer = new FrameWriter(socket);
  const reader = new FrameReader((payload) => {
    const frame = decodeRequestFrame(payload, protocol);
    const replica = enter(host, frame.replicaId);
    if (!replica) {
      respond(writer, frame.id, notHere(frame.replicaId));
      return;
    }
    runOn(replica, frame.body, frame.headerLength, frame.model, (answer) => respond(writer, frame.id, answer));
  });
  socket.on("data", (chunk: Buffer) => {
    try {
      reader.push(chunk);
    } catch {
      socket.destroy();
    }
  });
  socket.on("error", () => socket.destroy());
  if (head.byteLength > 0) reader.push(head);
}

function respond(writer: FrameWriter, id: number, answer: Answer): void {
  writer.response({
    id,
    status: answer.status,
    headerLength: answer.headerLength,
    computeMs: answer.computeMs,
    queueMs: answer.queueMs,
    batchSize: answer.batchSize,
    batchShare: answer.batchShare,
    body: typeof answer.body === "string" ? Buffer.from(answer.body) : answer.body,
  });
}

export interface ServingServer extends Server {
  /** Closes the multiplexed connections (after the replicas drained; HTTP ones close with the server). */
  closeMuxConnections(): void;
  /**
   * Also takes connections on a new Unix socket in `dir`, readable and writable by this user only
   * (a gateway running as another user falls back to TCP). Resolves with the socket's path; sockets
   * left in `dir` by killed workers are removed first.
   */
  listenOnSocket(dir: string): Promise<string>;
  /** Stops taking connections on the Unix socket and removes its file (resolves once its connections closed). */
  closeSocket(): Promise<void>;
}

/** sockaddr_un's sun_path holds 108 bytes, the last a NUL. */
const MAX_SOCKET_PATH_BYTES = 107;

async function listenOnSocket(server: Server, dir: string): Promise<{ path: string; listener: NetServer }> {
  await removeStaleSockets(dir);
  const path = newSocketPath(dir);
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) throw new Error(`socket path too long: ${path}`);
  // The HTTP server serves these connections exactly as its TCP ones (keep-alive, upgrade, close).
  const listener = createNetServer((socket) => server.emit("connection", socket));
  await new Promise<void>((resolve, reject) => {
    listener.once("error", reject);
    // bind() creates the file with the process's umask: owner-only from the first moment. Worker
    // threads (tests) may not change the umask; the chmod below covers them.
    let umask: number | undefined;
    try {
      umask = process.umask(0o177);
    } catch {}
    try {
      listener.listen(path, () => {
        listener.off("error", reject);
        resolve();
      });
    } finally {
      if (umask !== undefined) process.umask(umask);
    }
  });
  chmodSync(path, 0o600);
  return { path, listener };
}

function removeSocketFile(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Removed already (closing a listening socket removes its file).
  }
}

export function createServingServer(host: ReplicaHost): ServingServer {
  const server = createServer(async (req, res) => {
    const match = req.method === "POST" ? ROUTE.exec(req.url ?? "") : null;
    if (!match) return sendError(res, 404, `no route ${req.method} ${req.url}`);
    const headerLength = req.headers["inference-header-content-length"];
    const answer = await inferOverHttp(
      host,
      match[1] as string,
      req,
      headerLength === undefined ? undefined : Number(headerLength),
    );
    if (answer.status !== 200) {
      return send(res, answer.status, answer.body, { "content-type": "application/json" });
    }
    send(res, 200, answer.body, {
      "content-type": "application/octet-stream",
      "inference-header-content-length": answer.headerLength ?? Buffer.byteLength(answer.body),
      "x-kiln-compute-ms": answer.computeMs.toFixed(4),
      "x-kiln-queue-ms": answer.queueMs.toFixed(4),
      "x-kiln-batch-size": answer.batchSize,
      "x-kiln-batch-share": answer.batchShare.toFixed(6),
    });
  }) as ServingServer;

  const muxSockets = new Set<Socket>();
  server.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const protocol = req.headers.upgrade;
    if (req.url !== MUX_PATH || (protocol !== MUX_PROTOCOL_2 && protocol !== MUX_PROTOCOL)) {
      socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
      return;
    }
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: ${protocol}\r\n\r\n`);
    muxSockets.add(socket);
    socket.on("close", () => muxSockets.delete(socket));
    serveMux(host, socket, head, protocol);
  });
  server.closeMuxConnections = () => {
    for (const socket of muxSockets) {
      socket.end();
      setTimeout(() => socket.destroy(), 1_000).unref();
    }
  };
  let local: { path: string; listener: NetServer } | undefined;
  server.listenOnSocket = async (dir) => {
    local = await listenOnSocket(server, dir);
    return local.path;
  };
  server.closeSocket = async () => {
    if (!local) return;
    const { path, listener } = local;
    local = undefined;
    removeSocketFile(path);
    await new Promise((resolve) => listener.close(resolve));
  };
  return server;
}
