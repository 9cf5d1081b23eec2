// The gateway -> worker client against stand-in workers: one that speaks kiln-mux/2 (over TCP or a
// Unix socket), older ones (HTTP only, or kiln-mux/1 only), one that never answers, and none at all.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { type AddressInfo, createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { decodeRequestFrame, FrameReader, FrameWriter, MUX_PATH, MUX_PROTOCOL, MUX_PROTOCOL_2 } from "./mux-frames.ts";
import {
  type AnswerCallback,
  type ForwardedAnswer,
  forwardToReplica,
  muxTransportOf,
  ReplicaUnreachableError,
  sendToReplica,
} from "./replica-client.ts";

const servers: (Server | NetServer)[] = [];
const sockets = new Set<Socket>();
afterEach(async () => {
  // Upgraded connections are not the HTTP server's any more: close them by hand.
  for (const s of sockets) s.destroy();
  sockets.clear();
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});
const socketDir = mkdtempSync(join(tmpdir(), "kiln-replica-client-"));
afterAll(() => rmSync(socketDir, { recursive: true, force: true }));

/** Also serves `server` on a Unix socket, as a worker does for gateways on its host; returns its path. */
async function listenOnSocket(server: Server): Promise<string> {
  const path = join(socketDir, `${randomBytes(4).toString("hex")}.sock`);
  const listener = createNetServer((socket) => server.emit("connection", socket));
  servers.push(listener);
  await new Promise<void>((resolve) => listener.listen(path, resolve));
  return path;
}

/** Counts a server's connections by transport (a Unix socket has no remote address). */
function countConnections(server: Server): { tcp: number; unix: number } {
  const counts = { tcp: 0, unix: 0 };
  server.on("connection", (socket: Socket) => {
    if (socket.remoteAddress === undefined) counts.unix++;
    else counts.tcp++;
  });
  return counts;
}

async function listen(server: Server): Promise<string> {
  servers.push(server);
  server.on("connection", (socket: Socket) => sockets.add(socket));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const model = { name: "dense", version: "3" };
const request = (body: string, headerLength?: number) => ({ body: Buffer.from(body), headerLength, model });

/**
 * Echoes each request body back after the model name and version it was sent for (200, or 410 for
 * replica "gone").
 */
function muxWorker(options: { answer?: boolean } = {}): Server {
  const server = createServer((_req, res) => res.writeHead(404).end());
  server.on("upgrade", (req: IncomingMessage, socket: Socket) => {
    expect(req.url).toBe(MUX_PATH);
    expect(req.headers.upgrade).toBe(MUX_PROTOCOL_2);
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: ${MUX_PROTOCOL_2}\r\n\r\n`);
    const writer = new FrameWriter(socket);
    const reader = new FrameReader((payload) => {
      const frame = decodeRequestFrame(payload, MUX_PROTOCOL_2);
      if (options.answer === false) return;
      // Answer out of order: later requests first.
      setTimeout(
        () =>
          writer.response({
            id: frame.id,
            status: frame.replicaId === "gone" ? 410 : 200,
            headerLength: frame.headerLength,
            computeMs: 0.5,
            queueMs: 0.25,
            batchSize: 2,
            batchShare: 0.5,
            body: Buffer.from(`${frame.model?.name}@${frame.model?.version}:${frame.body}`),
          }),
        Number(frame.body.toString()) % 3,
      );
    });
    socket.on("data", (chunk: Buffer) => reader.push(chunk));
  });
  return server;
}

describe("forwardToReplica", () => {
  it("multiplexes concurrent requests over one connection and matches each answer to its request", async () => {
    let connections = 0;
    const server = muxWorker();
    server.on("connection", () => connections++);
    const url = await listen(server);
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) => forwardToReplica(url, "rep_a", request(String(i), i), 5_000)),
    );
    answers.forEach((a, i) => {
      expect(a.status).toBe(200);
      expect(a.isClientAnswer).toBe(true);
      expect(a.body.toString()).toBe(`dense@3:${i}`);
      expect(a.headerLength).toBe(i);
      expect([a.computeMs, a.queueMs, a.batchSize, a.batchShare]).toEqual([0.5, 0.25, 2, 0.5]);
    });
    expect((await forwardToReplica(url, "gone", request("1"), 5_000)).status).toBe(410);
    expect(connections).toBe(1);
  });

  it("calls a worker without the upgrade over plain HTTP", async () => {
    const url = await listen(
      // What an older worker does with the upgrade request: no upgrade handler, so Node hands it to
      // the request handler, which has no such route.
      createServer((req, res) => {
        if (req.url !== "/v2/replicas/rep_b/infer") return res.writeHead(404).end('{"error":"no route"}');
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
          res.writeHead(200, {
            "inference-header-content-length": 3,
            "x-kiln-compute-ms": "1.5",
            "x-kiln-queue-ms": "0.5",
            "x-kiln-batch-size": 4,
            "x-kiln-batch-share": "0.25",
          });
          res.end(Buffer.concat(chunks));
        });
      }),
    );
    for (let i = 0; i < 3; i++) {
      const answer = await forwardToReplica(url, "rep_b", request("abcdef", 3), 5_000);
      expect(answer).toMatchObject({
        status: 200,
        isClientAnswer: false,
        headerLength: 3,
        computeMs: 1.5,
        queueMs: 0.5,
        batchSize: 4,
      });
      expect(answer.body.toString()).toBe("abcdef");
    }
  });

  it("calls a worker that speaks only kiln-mux/1 over plain HTTP", async () => {
    let upgrades = 0;
    // What the previous worker does: refuses any upgrade but kiln-mux/1, serves the HTTP route.
    const server = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        res.writeHead(200, { "inference-header-content-length": 2 });
        res.end("{}binary");
      });
    });
    server.on("upgrade", (req: IncomingMessage, socket: Socket) => {
      upgrades++;
      if (req.headers.upgrade !== MUX_PROTOCOL) {
        socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
        return;
      }
      throw new Error("a kiln-mux/2 gateway asked for kiln-mux/1");
    });
    const url = await listen(server);
    for (let i = 0; i < 3; i++) {
      const answer = await forwardToReplica(url, "rep_f", request("{}"), 5_000);
      expect(answer).toMatchObject({ status: 200, isClientAnswer: false, headerLength: 2 });
      expect(answer.body.toString()).toBe("{}binary");
    }
    expect(upgrades).toBe(1);
  });

  it("fails with ReplicaUnreachableError when the worker is gone, drops the connection or does not answer", async () => {
    const closed = createServer();
    const closedUrl = await listen(closed);
    closed.close();
    await expect(forwardToReplica(closedUrl, "rep_c", request("1"), 5_000)).rejects.toBeInstanceOf(
      ReplicaUnreachableError,
    );

    const silent = muxWorker({ answer: false });
    const silentUrl = await listen(silent);
    await expect(forwardToReplica(silentUrl, "rep_d", request("1"), 300)).rejects.toThrow(
      /did not answer within 300 ms/,
    );

    const dropping = muxWorker({ answer: false });
    dropping.on("upgrade", (_req, socket: Socket) => socket.on("data", () => setTimeout(() => socket.destroy(), 20)));
    const droppingUrl = await listen(dropping);
    await expect(forwardToReplica(droppingUrl, "rep_e", request("1"), 5_000)).rejects.toBeInstanceOf(
      ReplicaUnreachableError,
    );
  });
});

describe("sendToReplica", () => {
  /** Sends and collects the callback's one call; `sync` records whether it came before sendToReplica returned. */
  function send(url: string, replicaId: string, body: string, timeoutMs = 5_000, after?: AnswerCallback) {
    let returned = false;
    let calls = 0;
    const outcome = new Promise<{ error: Error | null; answer?: ForwardedAnswer; sync: boolean }>((resolve) =>
      sendToReplica(url, replicaId, request(body), timeoutMs, (error, answer) => {
        calls++;
        resolve({ error, answer, sync: !returned });
        after?.(error, answer);
      }),
    );
    returned = true;
    return { outcome, calls: () => calls };
  }

  it("calls back once per request, never before it returns, with the answering replica named", async () => {
    const url = await listen(muxWorker());
    // The first call opens the connection; the later ones go out on the open connection.
    const first = send(url, "rep_a", "1");
    expect((await first.outcome).answer?.replicaId).toBe("rep_a");
    const sent = ["rep_a", "rep_b", "gone"].map((id, i) => send(url, id, String(i)));
    const results = await Promise.all(sent.map((s) => s.outcome));
    expect(results.map((r) => [r.error, r.sync, r.answer?.replicaId, r.answer?.status])).toEqual([
      [null, false, "rep_a", 200],
      [null, false, "rep_b", 200],
      [null, false, "gone", 410],
    ]);
    expect(results[1]?.answer?.body.toString()).toBe("dense@3:1");
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect([first, ...sent].map((s) => s.calls())).toEqual([1, 1, 1, 1]);
  });

  it("keeps the connection reading when a callback throws", async () => {
    let connections = 0;
    const server = muxWorker();
    server.on("connection", () => connections++);
    const url = await listen(server);
    await send(url, "rep_a", "0").outcome;
    // The callback's exception surfaces on its own (as an uncaught error), not as a broken connection.
    const thrown = new Promise<unknown>((resolve) => process.once("uncaughtException", resolve));
    const bad = send(url, "rep_a", "1", 5_000, () => {
      throw new Error("callback bug");
    });
    const good = send(url, "rep_a", "2");
    expect((await bad.outcome).answer?.status).toBe(200);
    expect((await good.outcome).answer?.body.toString()).toBe("dense@3:2");
    expect(((await thrown) as Error).message).toBe("callback bug");
    expect((await send(url, "rep_a", "3").outcome).answer?.status).toBe(200);
    expect(connections).toBe(1);
  });

  it("reports an unreachable worker through the callback, not before it returns", async () => {
    const closed = createServer();
    const closedUrl = await listen(closed);
    closed.close();
    const { outcome } = send(closedUrl, "rep_c", "1");
    const result = await outcome;
    expect(result.error).toBeInstanceOf(ReplicaUnreachableError);
    expect(result.sync).toBe(false);
  });
});

describe("forwardToReplica with a Unix socket", () => {
  const many = (endpoint: Parameters<typeof forwardToReplica>[0], n: number) =>
    Promise.all(Array.from({ length: n }, (_, i) => forwardToReplica(endpoint, "rep_a", request(String(i)), 5_000)));

  it("multiplexes over the worker's socket when it is given one", async () => {
    const server = muxWorker();
    const counts = countConnections(server);
    const url = await listen(server);
    const socketPath = await listenOnSocket(server);
    const answers = await many({ url, socketPath }, 20);
    expect(answers.map((a) => a.body.toString())).toEqual(answers.map((_, i) => `dense@3:${i}`));
    expect(muxTransportOf(url)).toBe("unix");
    expect(counts).toEqual({ tcp: 0, unix: 1 });
  });

  it("falls back to TCP, losing no request, when the socket is missing or refuses", async () => {
    // No file at the path (ENOENT), and a file nobody listens on (ECONNREFUSED).
    const stale = join(socketDir, "stale.sock");
    writeFileSync(stale, "");
    for (const socketPath of [join(socketDir, "missing.sock"), stale]) {
      const server = muxWorker();
      const counts = countConnections(server);
      const url = await listen(server);
      const answers = await many({ url, socketPath }, 20);
      expect(answers.map((a) => [a.status, a.body.toString()])).toEqual(answers.map((_, i) => [200, `dense@3:${i}`]));
      expect(muxTransportOf(url)).toBe("tcp");
      expect(counts).toEqual({ tcp: 1, unix: 0 });
    }
  });

  it("fails requests in flight with ReplicaUnreachableError when the worker drops the connection, as over TCP", async () => {
    for (const useSocket of [true, false]) {
      const dropping = muxWorker({ answer: false });
      dropping.on("upgrade", (_req, socket: Socket) => socket.on("data", () => setTimeout(() => socket.destroy(), 20)));
      const url = await listen(dropping);
      const socketPath = useSocket ? await listenOnSocket(dropping) : undefined;
      const outcomes = await Promise.allSettled(
        [1, 2, 3].map((i) => forwardToReplica({ url, socketPath }, "rep_a", request(String(i)), 5_000)),
      );
      for (const outcome of outcomes) {
        expect(outcome.status).toBe("rejected");
        expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(ReplicaUnreachableError);
      }
    }
  });

  it("reports a worker that accepts on its socket but does not answer as unreachable, as over TCP", async () => {
    // A hung worker: the kernel accepts the connection, nothing answers the upgrade. Its port would
    // answer (it does not here: the TCP server is a different, healthy one) but is not tried.
    const url = await listen(muxWorker());
    const hung = createNetServer((socket) => sockets.add(socket));
    servers.push(hung);
    const socketPath = join(socketDir, "hung.sock");
    await new Promise<void>((resolve) => hung.listen(socketPath, resolve));
    const started = performance.now();
    await expect(forwardToReplica({ url, socketPath }, "rep_a", request("1"), 5_000)).rejects.toThrow(
      ReplicaUnreachableError,
    );
    // The handshake timeout (10 s), once.
    expect(performance.now() - started).toBeLessThan(15_000);
  }, 20_000);

  it("reports a worker that is gone (socket and port) as unreachable", async () => {
    const server = muxWorker();
    const url = await listen(server);
    const socketPath = await listenOnSocket(server);
    // Closing both listeners removes the socket file and frees the port.
    await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
    await expect(forwardToReplica({ url, socketPath }, "rep_a", request("1"), 5_000)).rejects.toBeInstanceOf(
      ReplicaUnreachableError,
    );
  });
});
