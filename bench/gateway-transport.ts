// The gateway -> worker hop alone: kiln-mux/2 round trips from this process (the gateway's client,
// sendToReplica) to an echoing stand-in worker in another process, over loopback TCP and over the
// worker's Unix socket, alternating. No HTTP clients, no engine, no Redis: what is left is the
// transport, the frame code and the wake-ups, so the difference between the two is the kernel's.
//   npx tsx bench/gateway-transport.ts [--duration 5] [--rate 1000] [--inflight 16] [--rounds 4]
// At a fixed rate: one request per 1 ms timer tick, latency per round trip (performance.now()).
// At max: `--inflight` requests kept in flight. CPU per round trip from process.cpuUsage() (this
// side) and /proc/<pid>/stat (the worker), user and system apart, 10 ms ticks.
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage } from "node:http";
import { type AddressInfo, createServer as createNetServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { parseArgs } from "node:util";
import {
  decodeRequestFrame,
  FrameReader,
  FrameWriter,
  MUX_PROTOCOL_2,
  muxTransportOf,
  newSocketPath,
  type ReplicaEndpoint,
  sendToReplica,
} from "@kiln/serving";

const { values: args } = parseArgs({
  options: {
    duration: { type: "string", default: "5" },
    rate: { type: "string", default: "1000" },
    inflight: { type: "string", default: "16" },
    rounds: { type: "string", default: "4" },
    serve: { type: "boolean", default: false },
  },
});

/** The stand-in worker: two HTTP servers that echo kiln-mux/2 frames, the first also on a Unix socket. */
async function serve(): Promise<void> {
  const echo = () => {
    const server = createServer((_req, res) => res.writeHead(404).end());
    server.on("upgrade", (_req: IncomingMessage, socket: Socket) => {
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: ${MUX_PROTOCOL_2}\r\n\r\n`);
      socket.setNoDelay(true);
      const writer = new FrameWriter(socket);
      const reader = new FrameReader((payload) => {
        const frame = decodeRequestFrame(payload, MUX_PROTOCOL_2);
        writer.response({
          id: frame.id,
          status: 200,
          headerLength: frame.headerLength,
          computeMs: 0,
          queueMs: 0,
          batchSize: 1,
          batchShare: 1,
          body: frame.body,
        });
      });
      socket.on("data", (chunk: Buffer) => reader.push(chunk));
    });
    return server;
  };
  const withSocket = echo();
  const tcpOnly = echo();
  const socketPath = newSocketPath(tmpdir());
  const listener = createNetServer((socket) => withSocket.emit("connection", socket));
  await new Promise<void>((resolve) => listener.listen(socketPath, resolve));
  await new Promise<void>((resolve) => withSocket.listen(0, "127.0.0.1", resolve));
  await new Promise<void>((resolve) => tcpOnly.listen(0, "127.0.0.1", resolve));
  const port = (s: typeof withSocket) => (s.address() as AddressInfo).port;
  process.stdout.write(
    `${JSON.stringify({ viaSocket: `http://127.0.0.1:${port(withSocket)}`, socketPath, tcp: `http://127.0.0.1:${port(tcpOnly)}` })}\n`,
  );
  process.on("SIGTERM", () => {
    listener.close();
    process.exit(0);
  });
}

/** utime and stime of a process, in seconds. */
function cpuOf(pid: number): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 };
}

const body = Buffer.from(
  JSON.stringify({ inputs: [{ name: "x", shape: [1, 4], datatype: "FP32", data: [1, 2, 3, 4] }] }),
);
const request = { body, headerLength: undefined, model: { name: "dense", version: "1" } };

function once(endpoint: string | ReplicaEndpoint): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) =>
    sendToReplica(endpoint, "rep_bench", request, 10_000, (error) =>
      error ? reject(error) : resolve(performance.now() - started),
    ),
  );
}

type Phase = { n: number; p50: number; p99: number; user: number; system: number; wUser: number; wSystem: number };

async function phase(endpoint: string | ReplicaEndpoint, worker: ChildProcess, atRate: boolean): Promise<Phase> {
  const seconds = Number(args.duration);
  const latencies: number[] = [];
  const c0 = process.cpuUsage();
  const w0 = cpuOf(worker.pid as number);
  const started = performance.now();
  if (atRate) {
    const total = Number(args.rate) * seconds;
    let sent = 0;
    const pending: Promise<void>[] = [];
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * Number(args.rate)));
        while (sent < due) {
          sent++;
          pending.push(once(endpoint).then((ms) => void latencies.push(ms)));
        }
        if (sent >= total) {
          clearInterval(timer);
          resolve();
        }
      }, 1);
    });
    await Promise.all(pending);
  } else {
    const until = started + seconds * 1000;
    const loop = async () => {
      while (performance.now() < until) latencies.push(await once(endpoint));
    };
    await Promise.all(Array.from({ length: Number(args.inflight) }, loop));
  }
  const c = process.cpuUsage(c0);
  const w = cpuOf(worker.pid as number);
  latencies.sort((a, b) => a - b);
  const n = latencies.length;
  const per = (s: number) => (s * 1000) / n;
  return {
    n,
    p50: latencies[Math.floor(n * 0.5)] ?? 0,
    p99: latencies[Math.floor(n * 0.99)] ?? 0,
    user: per(c.user / 1e6),
    system: per(c.system / 1e6),
    wUser: per(w.user - w0.user),
    wSystem: per(w.system - w0.system),
  };
}

async function main(): Promise<void> {
  const worker = spawn(process.execPath, ["--import", "tsx", new URL(import.meta.url).pathname, "--serve"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  process.on("exit", () => worker.kill("SIGTERM"));
  const where = JSON.parse(
    await new Promise<string>((resolve) => worker.stdout?.once("data", (d) => resolve(String(d)))),
  ) as { viaSocket: string; socketPath: string; tcp: string };
  const endpoints = { unix: { url: where.viaSocket, socketPath: where.socketPath }, tcp: where.tcp };
  for (const endpoint of Object.values(endpoints)) for (let i = 0; i < 2_000; i++) await once(endpoint);
  console.log(`transports: ${muxTransportOf(where.viaSocket)} and ${muxTransportOf(where.tcp)}`);
  console.log(
    "| Round | Transport | Phase | Round trips | p50 (ms) | p99 (ms) | Client CPU/rt user / sys (µs) | Worker CPU/rt user / sys (µs) |",
  );
  console.log("| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |");
  const us = (ms: number) => (ms * 1000).toFixed(1);
  for (let round = 1; round <= Number(args.rounds); round++) {
    const order = round % 2 === 1 ? (["tcp", "unix"] as const) : (["unix", "tcp"] as const);
    for (const atRate of [true, false]) {
      for (const transport of order) {
        const r = await phase(endpoints[transport], worker, atRate);
        console.log(
          `| ${round} | ${transport} | ${atRate ? `${args.rate}/s` : `max (${args.inflight} in flight)`} | ${r.n} | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} | ${us(r.user)} / ${us(r.system)} | ${us(r.wUser)} / ${us(r.wSystem)} |`,
        );
      }
    }
  }
  worker.kill("SIGTERM");
  process.exit(0);
}

if (args.serve) await serve();
else await main();
