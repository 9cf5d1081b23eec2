// Gateway -> worker hop: KServe v2 requests multiplexed over one persistent connection per worker
// (kiln-mux/2, see mux-frames.ts, entered by an HTTP/1.1 Upgrade on the worker's serving port, or
// on its Unix socket when the router passes one: see local-socket.ts); the worker answers with the
// client's answer already encoded. A worker that does not speak it (an older version) is called
// with one HTTP/1.1 request per inference over kept-alive TCP connections, and answers every
// output in binary for the gateway to encode.
import { Agent, request } from "node:http";
import type { Socket } from "node:net";
import { callApart, type Done, promised } from "../callbacks.ts";
import type { EncodedBody } from "../protocol/infer-codec.ts";
import { decodeResponseFrame, FrameReader, FrameWriter, MUX_PATH, MUX_PROTOCOL_2 } from "./mux-frames.ts";

/** What a replica is sent: the KServe v2 request, and the model as the client's answer names it. */
export interface ReplicaRequest extends EncodedBody {
  model: { name: string; version: string };
}

export interface ForwardedAnswer {
  status: number;
  /** The replica that answered. */
  replicaId: string;
  /**
   * A 200 answer's body: the client's answer (the outputs it asked for, JSON or binary as it asked)
   * when `isClientAnswer`, else every output in binary (a worker called over plain HTTP). Other
   * statuses: {"error": "..."}.
   */
  body: Buffer;
  isClientAnswer: boolean;
  headerLength?: number;
  computeMs: number;
  queueMs: number;
  batchSize: number;
  /** This request's rows over the batch's rows. */
  batchShare: number;
}

/**
 * Where a worker is reached: its serving URL, and the Unix socket to try first (same host only;
 * the router decides). Connections are per URL: a socket that cannot be reached falls back to it.
 */
export interface ReplicaEndpoint {
  url: string;
  socketPath?: string;
}

/** The worker could not be reached or dropped the connection: the replica is gone, not the request's fault. */
export class ReplicaUnreachableError extends Error {}

/**
 * Called once with the replica's answer or the reason there is none (a ReplicaUnreachableError when
 * the replica could not be reached). The callback form of forwardToReplica: the gateway's request
 * path uses it so that an inference costs no promise of its own on this hop.
 */
export type AnswerCallback = Done<ForwardedAnswer, Error>;

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

type Pending = {
  done: AnswerCallback;
  deadline: number;
  replicaId: string;
  timeoutMs: number;
};

/** How long a worker that refused the upgrade is called over plain HTTP before the upgrade is tried again. */
const MUX_RETRY_MS = 10_000;
const HANDSHAKE_TIMEOUT_MS = 10_000;
const UNREACHABLE = new Set(["ECONNREFUSED", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN"]);

/** An upgraded kiln-mux/2 connection, or null when the worker answered the upgrade without upgrading. */
type Upgraded = { socket: Socket; head: Buffer } | null;

/** The `GET /v2/mux` + `Upgrade: kiln-mux/2` handshake over TCP or a Unix socket; rejects with the socket's error. */
function upgrade(where: { host: string; port: string } | { socketPath: string }, label: string): Promise<Upgraded> {
  return new Promise<Upgraded>((resolve, reject) => {
    const req = request({
      ...where,
      path: MUX_PATH,
      method: "GET",
      agent: false,
      headers: { connection: "Upgrade", upgrade: MUX_PROTOCOL_2 },
    });
    req.on("upgrade", (res, socket, head) => {
      if (res.headers.upgrade !== MUX_PROTOCOL_2) {
        socket.destroy();
        resolve(null);
        return;
      }
      resolve({ socket, head });
    });
    req.on("response", (res) => {
      // No upgrade: a worker without the multiplexed hop; it is called over HTTP for a while.
      res.resume();
      resolve(null);
    });
    req.on("error", reject);
    req.setTimeout(HANDSHAKE_TIMEOUT_MS, () =>
      req.destroy(
        Object.assign(new Error(`no answer from ${label} within ${HANDSHAKE_TIMEOUT_MS} ms`), { code: "ETIMEDOUT" }),
      ),
    );
    req.end();
  });
}

/** One multiplexed connection to a worker. Requests sent before it opens wait for it. */
class MuxConnection {
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #socket: Socket | undefined;
  #writer: FrameWriter | undefined;
  #closed = false;
  #sweep: NodeJS.Timeout | undefined;
  /** How the connection reached the worker, once open. */
  transport: "unix" | "tcp" | undefined;
  /** Resolves true once upgraded, false when the worker answered the upgrade with a plain response. */
  readonly opened: Promise<boolean>;

  constructor(
    private readonly baseUrl: string,
    socketPath: string | undefined,
    private readonly onClose: (conn: MuxConnection, unsupported: boolean) => void,
  ) {
    this.opened = this.#open(socketPath);
    this.opened.then(
      (ok) => {
        if (!ok) this.#close(undefined, true);
      },
      (error: Error) => this.#close(error, false),
    );
  }

  /**
   * The worker's Unix socket first when there is one; a failure there (no such file, nobody
   * listening, no permission) tries TCP, which decides whether the worker is gone: refused or
   * unreachable is a ReplicaUnreachableError, anything else (the connection dropped during the
   * handshake: a worker without an upgrade handler closes it) means plain HTTP for a while. A
   * worker that accepted on its socket but did not answer within the handshake timeout is
   * unreachable at once, as over TCP (trying TCP too would double the wait).
   */
  async #open(socketPath: string | undefined): Promise<boolean> {
    if (socketPath !== undefined) {
      try {
        const upgraded = await upgrade({ socketPath }, socketPath);
        if (upgraded) this.#attach(upgraded.socket, upgraded.head, "unix");
        return upgraded !== null;
      } catch (error) {
        const { code, message } = error as Error & { code?: string };
        if (code === "ETIMEDOUT") throw new ReplicaUnreachableError(message);
        // Gone, stale or not ours: TCP reaches the same worker.
      }
    }
    let upgraded: Upgraded;
    try {
      upgraded = await upgrade(targetOf(this.baseUrl), this.baseUrl);
    } catch (error) {
      const { code, message } = error as Error & { code?: string };
      if (UNREACHABLE.has(code ?? "")) throw new ReplicaUnreachableError(message);
      return false;
    }
    if (upgraded) this.#attach(upgraded.socket, upgraded.head, "tcp");
    return upgraded !== null;
  }

  #attach(socket: Socket, head: Buffer, transport: "unix" | "tcp"): void {
    this.transport = transport;
    this.#socket = socket;
    this.#writer = new FrameWriter(socket);
    // Both are no-ops on a Unix socket.
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    socket.setTimeout(0);
    // Idle, it does not keep the process alive (the requests waiting on it are held by their callers).
    socket.unref();
    const reader = new FrameReader((payload) => {
      const frame = decodeResponseFrame(payload);
      const pending = this.#pending.get(frame.id);
      if (!pending) return; // timed out already
      this.#pending.delete(frame.id);
      callApart(pending.done, null, {
        status: frame.status,
        replicaId: pending.replicaId,
        body: frame.body,
        isClientAnswer: true,
        headerLength: frame.headerLength,
        computeMs: frame.computeMs,
        queueMs: frame.queueMs,
        batchSize: frame.batchSize,
        batchShare: frame.batchShare,
      });
    });
    socket.on("data", (chunk: Buffer) => {
      try {
        reader.push(chunk);
      } catch (error) {
        socket.destroy(error as Error);
      }
    });
    socket.on("error", (error) => this.#close(error, false));
    socket.on("close", () => this.#close(new Error("connection closed"), false));
    if (head.byteLength > 0) reader.push(head);
    // One sweep a second for requests past their deadline (cheaper than a timer per request).
    this.#sweep = setInterval(() => {
      const now = performance.now();
      for (const [id, p] of this.#pending) {
        if (p.deadline > now) continue;
        this.#pending.delete(id);
        callApart(
          p.done,
          new ReplicaUnreachableError(`replica ${p.replicaId} did not answer within ${p.timeoutMs} ms`),
        );
      }
    }, 1_000);
    this.#sweep.unref();
  }

  #close(error: Error | undefined, unsupported: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweep);
    this.#socket?.destroy();
    this.onClose(this, unsupported);
    const message = error?.message ?? "connection closed";
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) callApart(p.done, new ReplicaUnreachableError(message));
  }

  get isOpen(): boolean {
    return this.#writer !== undefined && !this.#closed;
  }

  /** Sends on an open connection; `done` is called once, never before this returns. */
  send(replicaId: string, request: ReplicaRequest, timeoutMs: number, done: AnswerCallback): void {
    if (this.#closed || !this.#writer) {
      const error = new ReplicaUnreachableError(`connection to ${this.baseUrl} is closed`);
      queueMicrotask(() => done(error));
      return;
    }
    const id = this.#nextId;
    this.#nextId = this.#nextId >= 0xffff_fffe ? 1 : this.#nextId + 1;
    this.#pending.set(id, { done, deadline: performance.now() + timeoutMs, replicaId, timeoutMs });
    this.#writer.request({
      id,
      replicaId,
      headerLength: request.headerLength,
      model: request.model,
      body: request.body,
    });
  }
}

const connections = new Map<string, MuxConnection>();
/** Workers that answered the upgrade without upgrading, until when (performance.now()). */
const plainHttpUntil = new Map<string, number>();

/** How the open kiln-mux/2 connection to a worker reaches it (for tests and diagnostics); undefined: none open. */
export function muxTransportOf(baseUrl: string): "unix" | "tcp" | undefined {
  const conn = connections.get(baseUrl);
  return conn?.isOpen ? conn.transport : undefined;
}

function connectionFor(baseUrl: string, socketPath: string | undefined): MuxConnection {
  let conn = connections.get(baseUrl);
  if (!conn) {
    conn = new MuxConnection(baseUrl, socketPath, (closed, unsupported) => {
      if (connections.get(baseUrl) === closed) connections.delete(baseUrl);
      if (unsupported) plainHttpUntil.set(baseUrl, performance.now() + MUX_RETRY_MS);
    });
    connections.set(baseUrl, conn);
  }
  return conn;
}

export function forwardToReplica(
  endpoint: string | ReplicaEndpoint,
  replicaId: string,
  request: ReplicaRequest,
  timeoutMs: number,
): Promise<ForwardedAnswer> {
  return promised((done: AnswerCallback) => sendToReplica(endpoint, replicaId, request, timeoutMs, done));
}

/**
 * forwardToReplica with a callback: on an open kiln-mux/2 connection the request is framed at once
 * and `done` runs when its answer frame arrives, with no promise in between. `done` is called
 * once, never before this returns.
 */
export function sendToReplica(
  endpoint: string | ReplicaEndpoint,
  replicaId: string,
  request: ReplicaRequest,
  timeoutMs: number,
  done: AnswerCallback,
): void {
  const baseUrl = typeof endpoint === "string" ? endpoint : endpoint.url;
  const plainUntil = plainHttpUntil.get(baseUrl);
  if (plainUntil !== undefined) {
    if (performance.now() < plainUntil) {
      settle(forwardOverHttp(baseUrl, replicaId, request, timeoutMs), done);
      return;
    }
    plainHttpUntil.delete(baseUrl);
  }
  const conn = connectionFor(baseUrl, typeof endpoint === "string" ? undefined : endpoint.socketPath);
  if (conn.isOpen) {
    conn.send(replicaId, request, timeoutMs, done);
    return;
  }
  conn.opened.then(
    (upgraded) => {
      if (upgraded) conn.send(replicaId, request, timeoutMs, done);
      else settle(forwardOverHttp(baseUrl, replicaId, request, timeoutMs), done);
    },
    (error: Error) => done(error),
  );
}

function settle(answer: Promise<ForwardedAnswer>, done: AnswerCallback): void {
  answer.then(
    (a) => done(null, a),
    (error: Error) => done(error),
  );
}

/** One HTTP/1.1 request per inference (workers that do not speak kiln-mux/1). */
export function forwardOverHttp(
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
            replicaId,
            body: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks),
            isClientAnswer: false,
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
