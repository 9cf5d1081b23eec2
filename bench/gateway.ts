// Serving overhead: the gateway + a worker process serving a tiny CPU model, under load from
// another process (wrk, or autocannon), against calling the engine in-process and against a bare
// Fastify route, in one run.
//   DATABASE_URL=postgresql://... REDIS_URL=redis://... npx tsx bench/gateway.ts [--duration 10] [--rate 1000]
//     [--connections 16] [--threads 2] [--load wrk|autocannon] [--probe net|http] [--runs 3] [--profile DIR] [--tcp]
//     [--gateway-processes N | --in-process]
// The gateway runs as production runs it: apps/gateway/src/main.ts in a process of its own, with
// GATEWAY_PROCESSES from --gateway-processes (else from the environment, else main.ts's default: 1;
// auto: one per core); its CPU is its primary's plus every process under it. --in-process runs it in the bench's
// own process instead, as the reports before 2026-12-07m did.
// Max throughput: wrk (C, one event loop per thread; the default when it is on PATH) or autocannon
// (Node.js, which itself takes most of a core at full speed on a machine the servers share), with
// the same settings for the bare route and the gateway; the report names the one used and the CPU
// it took. Latency at a fixed rate: an open-loop probe in its own process timing each request with
// hrtime from the 1 ms tick that sends it (autocannon reports whole milliseconds, too coarse for a
// 1 ms goal, and wrk 4 has no fixed-rate mode), run against the bare route and the gateway alike.
// The probe writes a prebuilt request on raw sockets and parses only what it needs (--probe net);
// --probe http is the node:http probe of the reports before 2026-12-07l, at about twice the CPU.
// --runs repeats the load phases and reports the median of each number (and every run).
// --profile writes CPU profiles (node --cpu-prof) of the worker and gateway processes into DIR
// (with --in-process, run the bench itself under `node --cpu-prof` for the gateway's).
// Writes bench/results/gateway-<date>.md and prints it.
import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import {
  accessSync,
  constants,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { availableParallelism, cpus, loadavg, tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { parseArgs } from "node:util";
import { loadEngine, tensor } from "@kiln/engine";
import { quotaKeys } from "@kiln/metering";
import * as serving from "@kiln/serving";
import { gatewayProcesses } from "../apps/gateway/src/cluster.ts";
import { gatewayProcessEnv, startServingStack } from "../test/serving-fixture.ts";
import { descendantsOf, freePort, ROOT, waitUntil } from "../test/support.ts";
import { median } from "./lib/stats.ts";

const { values: args } = parseArgs({
  options: {
    duration: { type: "string", default: "10" },
    rate: { type: "string", default: "1000" },
    connections: { type: "string", default: "16" },
    threads: { type: "string", default: "2" },
    load: { type: "string" },
    probe: { type: "string", default: "net" },
    runs: { type: "string", default: "1" },
    profile: { type: "string" },
    out: { type: "string" },
    tcp: { type: "boolean", default: false },
    "gateway-processes": { type: "string" },
    "in-process": { type: "boolean", default: false },
    help: { type: "boolean", short: "h" },
  },
});
if (args.help) {
  console.log(`Usage: DATABASE_URL=postgresql://... REDIS_URL=redis://... npx tsx bench/gateway.ts [options]
  --duration S     seconds per load phase (default 10)
  --rate R         fixed rate of the latency phase, requests/s (default 1000)
  --connections C  the max-throughput load's connections and the probe's sockets (default 16)
  --threads T      wrk threads (default 2, one per core of a 2-core machine)
  --load L         max-throughput load generator: wrk (default when wrk is on PATH) or autocannon
  --probe P        fixed-rate probe: net (raw sockets, the default) or http (node:http, as before 12-07l)
  --runs N         repeat the load phases N times, report medians (default 1)
  --profile DIR    write the worker's and gateway's CPU profiles into DIR (node --cpu-prof)
  --out FILE       write the report there instead of bench/results/gateway-<date>.md
  --tcp            gateway -> worker over loopback TCP (the worker gets SERVING_UNIX_SOCKET=false);
                   by default it goes over the worker's Unix socket, as on any single host
  --gateway-processes N  the gateway's GATEWAY_PROCESSES, a number or auto (default: the environment's, else 1)
  --in-process     run the gateway in the bench's process (buildGateway), as before 2026-12-07m`);
  process.exit(0);
}
const RUNS = Math.max(1, Number(args.runs));
const DURATION = Number(args.duration);
const RATE = Number(args.rate);
const CONNECTIONS = Number(args.connections);
const THREADS = Number(args.threads);
const IN_PROCESS = args["in-process"] === true;
if (IN_PROCESS && args["gateway-processes"] !== undefined) {
  console.error("--in-process and --gateway-processes exclude each other");
  process.exit(2);
}
/** GATEWAY_PROCESSES as main.ts will read it (validated the same way). */
const GATEWAY_PROCESSES = IN_PROCESS
  ? 1
  : gatewayProcesses({ GATEWAY_PROCESSES: args["gateway-processes"] ?? process.env.GATEWAY_PROCESSES });

/** Whether an executable of this name is on PATH. */
function onPath(name: string): boolean {
  return (process.env.PATH ?? "").split(delimiter).some((dir) => {
    try {
      accessSync(join(dir || ".", name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}
if (args.load !== undefined && args.load !== "wrk" && args.load !== "autocannon") {
  console.error(`--load must be wrk or autocannon, not ${args.load}`);
  process.exit(2);
}
if (args.probe !== "net" && args.probe !== "http") {
  console.error(`--probe must be net or http, not ${args.probe}`);
  process.exit(2);
}
const PROBE_KIND = args.probe;
const WRK_FOUND = onPath("wrk");
if (args.load === "wrk" && !WRK_FOUND) {
  console.error("--load wrk: wrk not found on PATH (apt-get install wrk)");
  process.exit(2);
}
const LOAD: "wrk" | "autocannon" =
  (args.load as "wrk" | "autocannon" | undefined) ?? (WRK_FOUND ? "wrk" : "autocannon");
const loadNote =
  LOAD === "autocannon" && args.load === undefined
    ? "wrk not found on PATH (apt-get install wrk): using autocannon"
    : "";
if (loadNote) console.error(loadNote);

type Load = {
  requests: number;
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  non2xx: number;
  errors: number;
  /** CPU seconds (user + system, all threads) the load generator's process used, when known. */
  loaderCpu?: number;
  /** The probe's: the p99 of how late (ms) its tick sent a request after its place in the schedule. */
  lagP99?: number;
};

/**
 * Runs a load generator under bash so that its CPU time (bash's `times`, children's line) comes back
 * on stderr after it exits; resolves with its stdout and those CPU seconds. In a process group of
 * its own, which the exit handler below kills whole.
 */
function timedChild(
  file: string,
  cli: string[],
): Promise<{ out: string; err: string; cpu: number; code: number | null }> {
  const script = '"$@"; rc=$?; times >&2; exit $rc';
  return new Promise((resolve) => {
    const child = spawn("bash", ["-c", script, "bash", file, ...cli], {
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    groups.add(child);
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("exit", (code) => {
      groups.delete(child);
      // The last line of `times` is the children's user and system time, e.g. "0m9.120s 0m2.050s".
      const last = err.trim().split("\n").at(-1) ?? "";
      const seconds = [...last.matchAll(/(\d+)m([\d.]+)s/g)].reduce((t, m) => t + Number(m[1]) * 60 + Number(m[2]), 0);
      resolve({ out, err, cpu: seconds, code });
    });
  });
}

/** The max-throughput load with the chosen generator. */
function maxLoad(url: string, options: { body: string; headers: Record<string, string> }): Promise<Load> {
  return LOAD === "wrk" ? wrk(url, options) : autocannon(url, options);
}

/** A Lua long-bracket string literal holding s exactly (a level of = signs that s does not close). */
function luaString(s: string): string {
  let level = "";
  while (s.includes(`]${level}]`)) level += "=";
  // A newline right after the opening bracket would be dropped; the bodies here have none.
  return `[${level}[${s}]${level}]`;
}

/**
 * wrk (C, one event loop per thread) in its own process: POSTs with a Lua script written to a
 * temporary file, whose done() prints one JSON line with the counts and the latency percentiles.
 * wrk's "status" errors are answers with a status of 400 or more.
 */
async function wrk(url: string, options: { body: string; headers: Record<string, string> }): Promise<Load> {
  const dir = mkdtempSync(join(tmpdir(), "kiln-wrk-"));
  const script = join(dir, "post.lua");
  const lines = ['wrk.method = "POST"', `wrk.body = ${luaString(options.body)}`];
  for (const [k, v] of Object.entries(options.headers)) lines.push(`wrk.headers[ ${luaString(k)} ] = ${luaString(v)}`);
  lines.push(
    "function done(summary, latency, requests)",
    "  local e = summary.errors",
    '  io.write(string.format(\'\\n{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d,"p50":%.4f,"p90":%.4f,"p99":%.4f}\\n\',',
    "    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout, e.status,",
    "    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000))",
    "end",
  );
  writeFileSync(script, `${lines.join("\n")}\n`);
  try {
    const cli = ["-t", String(THREADS), "-c", String(CONNECTIONS), "-d", `${DURATION}s`, "-s", script, url];
    const { out, err, cpu, code } = await timedChild("wrk", cli);
    const line = out
      .split("\n")
      .reverse()
      .find((l) => l.startsWith("{"));
    // wrk runs without the script (GETs) when the script fails to load, so no JSON line is an error.
    if (code !== 0 || !line) throw new Error(`wrk exited ${code} without its summary: ${out}${err}`);
    const r = JSON.parse(line);
    return {
      requests: r.requests,
      rps: r.requests / (r.duration_us / 1e6),
      p50: r.p50,
      p90: r.p90,
      p99: r.p99,
      non2xx: r.status,
      errors: r.connect + r.read + r.write + r.timeout,
      loaderCpu: cpu,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** autocannon in its own process, so the load generator does not share the server's event loop. */
async function autocannon(
  url: string,
  options: { body?: string; headers?: Record<string, string>; rate?: number },
): Promise<Load> {
  const cli = [
    join(ROOT, "node_modules/autocannon/autocannon.js"),
    "--json",
    "-c",
    String(CONNECTIONS),
    "-d",
    String(DURATION),
    "-m",
    "POST",
  ];
  for (const [k, v] of Object.entries(options.headers ?? {})) cli.push("-H", `${k}=${v}`);
  if (options.body) cli.push("-b", options.body);
  if (options.rate) cli.push("-R", String(options.rate));
  cli.push(url);
  const { out, err, cpu, code } = await timedChild(process.execPath, cli);
  if (code !== 0) throw new Error(`autocannon exited ${code}: ${err}`);
  const r = JSON.parse(out);
  return {
    requests: r.requests.total,
    rps: r.requests.average,
    p50: r.latency.p50,
    p90: r.latency.p90,
    p99: r.latency.p99,
    non2xx: r.non2xx,
    errors: r.errors,
    loaderCpu: cpu,
  };
}

/**
 * Open-loop load at a fixed rate from its own process: every millisecond it sends the requests the
 * schedule is due (over at most `connections` kept-alive sockets) and times each one with hrtime.
 * This one goes through node:http (an Agent, its parser, a request and a response object per
 * request); `--probe http`. Besides the latencies it reports its own CPU seconds and the p99 of how
 * late the 1 ms tick sent requests after their place in the schedule.
 */
const PROBE_HTTP = `
import { Agent, request } from "node:http";
const [url, rate, seconds, connections, body, headersJson] = process.argv.slice(1);
const target = new URL(url);
const headers = { ...JSON.parse(headersJson), "content-length": Buffer.byteLength(body) };
const agent = new Agent({ keepAlive: true, maxSockets: Number(connections) });
const latencies = [];
let sent = 0, done = 0, non2xx = 0, errors = 0;
const total = Number(rate) * Number(seconds);
const lags = new Float64Array(total);
function fire() {
  sent++;
  const t0 = process.hrtime.bigint();
  const req = request({ agent, host: target.hostname, port: target.port, path: target.pathname, method: "POST", headers }, (res) => {
    res.on("data", () => {});
    res.on("end", () => {
      latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      if (res.statusCode < 200 || res.statusCode >= 300) non2xx++;
      if (++done === total) finish();
    });
  });
  req.on("error", () => { errors++; if (++done === total) finish(); });
  req.end(body);
}
// Warm the sockets first (not timed).
let warm = 0;
for (let i = 0; i < Number(connections) * 4; i++) {
  const req = request({ agent, host: target.hostname, port: target.port, path: target.pathname, method: "POST", headers }, (res) => {
    res.resume();
    res.on("end", () => { if (++warm === Number(connections) * 4) start(); });
  });
  req.end(body);
}
let started;
function start() {
  started = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    const due = Math.min(total, Math.floor(((now - started) / 1000) * Number(rate)));
    while (sent < due) { lags[sent] = now - started - (sent * 1000) / Number(rate); fire(); }
    if (sent >= total) clearInterval(timer);
  }, 1);
}
function finish() {
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  lags.sort();
  const p = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  const cpu = process.cpuUsage();
  process.stdout.write(JSON.stringify({ requests: done, rps: done / elapsed, p50: p(0.5), p90: p(0.9), p99: p(0.99), non2xx, errors,
    probeCpu: (cpu.user + cpu.system) / 1e6, lagP99: lags[Math.floor(0.99 * total)] }));
  process.exit(0);
}
`;

/**
 * The same open-loop schedule, timing and output as PROBE_HTTP, at less CPU per request: raw
 * keep-alive sockets (node:net), one request buffer built once and written as is, and a response
 * parser that only finds the status, the end of the head and the body's length (Content-Length or
 * chunked). A request due while every socket is busy waits for the next free one, its time running
 * from the tick that sent it, as in the Agent's queue. A socket that closes is replaced; a request
 * in flight on it counts as an error. The default (`--probe net`).
 */
const PROBE_NET = String.raw`
import { connect } from "node:net";
const [url, rate, seconds, connections, body, headersJson] = process.argv.slice(1);
const target = new URL(url);
const fields = { host: target.host, ...JSON.parse(headersJson), "content-length": Buffer.byteLength(body) };
let head = "POST " + target.pathname + " HTTP/1.1\r\n";
for (const [k, v] of Object.entries(fields)) head += k + ": " + v + "\r\n";
const request = Buffer.concat([Buffer.from(head + "\r\n"), Buffer.from(body)]);
const total = Number(rate) * Number(seconds);
const sentAt = new Float64Array(total);
const latencies = new Float64Array(total);
const lags = new Float64Array(total);
const idle = [];
const waiting = [];
let waitingHead = 0;
let sent = 0, done = 0, timed = 0, non2xx = 0, errors = 0, warm = 0, started = 0;
const WARM = 4; // untimed requests per socket before the run

function open(warmCount) {
  const c = { socket: connect({ host: target.hostname, port: Number(target.port), noDelay: true }), buf: null, index: -1, warm: warmCount };
  c.socket.on("connect", () => (c.warm > 0 ? c.socket.write(request) : next(c)));
  c.socket.on("data", (d) => {
    c.buf = c.buf === null ? d : Buffer.concat([c.buf, d]);
    parse(c);
  });
  c.socket.on("error", () => {});
  c.socket.on("close", () => {
    const i = idle.indexOf(c);
    if (i >= 0) idle.splice(i, 1);
    if (c.index >= 0) {
      errors++;
      c.index = -1;
      if (++done === total) return finish();
    }
    open(0);
  });
}
function chunkedEnd(buf, at) {
  for (;;) {
    const eol = buf.indexOf("\r\n", at);
    if (eol < 0) return -1;
    const size = parseInt(buf.toString("latin1", at, eol), 16);
    at = eol + 2 + size + 2;
    if (at > buf.length) return -1;
    if (size === 0) return at;
  }
}
function parse(c) {
  while (c.buf !== null) {
    const end = c.buf.indexOf("\r\n\r\n");
    if (end < 0) return;
    const h = c.buf.toString("latin1", 0, end);
    const length = /\r\ncontent-length: *(\d+)/i.exec(h);
    let bodyEnd = end + 4;
    if (length) bodyEnd += Number(length[1]);
    else if (/\r\ntransfer-encoding: *chunked/i.test(h)) bodyEnd = chunkedEnd(c.buf, end + 4);
    if (bodyEnd < 0 || bodyEnd > c.buf.length) return;
    c.buf = bodyEnd === c.buf.length ? null : c.buf.subarray(bodyEnd);
    answered(c, Number(h.slice(9, 12)));
  }
}
function answered(c, status) {
  if (c.warm > 0) {
    if (--c.warm > 0) return void c.socket.write(request);
    next(c);
    if (++warm === Number(connections)) start();
    return;
  }
  if (c.index < 0) return;
  latencies[timed++] = performance.now() - sentAt[c.index];
  c.index = -1;
  if (status < 200 || status >= 300) non2xx++;
  if (++done === total) return finish();
  next(c);
}
function next(c) {
  if (waitingHead < waiting.length) send(c, waiting[waitingHead++]);
  else idle.push(c);
}
function send(c, index) {
  c.index = index;
  c.socket.write(request);
}
for (let i = 0; i < Number(connections); i++) open(WARM);
function start() {
  started = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    const due = Math.min(total, Math.floor(((now - started) / 1000) * Number(rate)));
    while (sent < due) {
      const index = sent++;
      sentAt[index] = now;
      lags[index] = now - started - (index * 1000) / Number(rate);
      const c = idle.pop();
      if (c) send(c, index);
      else waiting.push(index);
    }
    if (sent >= total) clearInterval(timer);
  }, 1);
}
function finish() {
  const elapsed = (performance.now() - started) / 1000;
  const l = latencies.subarray(0, timed).sort();
  lags.sort();
  const p = (q) => l[Math.min(l.length - 1, Math.floor(q * l.length))] ?? 0;
  const cpu = process.cpuUsage();
  process.stdout.write(JSON.stringify({ requests: done, rps: done / elapsed, p50: p(0.5), p90: p(0.9), p99: p(0.99), non2xx, errors,
    probeCpu: (cpu.user + cpu.system) / 1e6, lagP99: lags[Math.floor(0.99 * total)] }));
  process.exit(0);
}
`;

function probe(url: string, options: { body: string; headers: Record<string, string>; rate: number }): Promise<Load> {
  const cli = [
    "--input-type=module",
    "-e",
    PROBE_KIND === "http" ? PROBE_HTTP : PROBE_NET,
    url,
    String(options.rate),
    String(DURATION),
    String(CONNECTIONS),
    options.body,
    JSON.stringify(options.headers),
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, cli, { stdio: ["ignore", "pipe", "inherit"] });
    children.add(child);
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.on("exit", (code) =>
      code === 0
        ? resolve({ ...(JSON.parse(out) as Load), loaderCpu: JSON.parse(out).probeCpu })
        : reject(new Error(`probe exited ${code}`)),
    );
  });
}

/** The median of each field over several runs. */
function medianLoad(runs: Load[]): Load {
  const med = (f: "requests" | "rps" | "p50" | "p90" | "p99") => median(runs.map((r) => r[f]));
  return {
    requests: med("requests"),
    rps: med("rps"),
    p50: med("p50"),
    p90: med("p90"),
    p99: med("p99"),
    non2xx: runs.reduce((n, r) => n + r.non2xx, 0),
    errors: runs.reduce((n, r) => n + r.errors, 0),
    loaderCpu: median(runs.map((r) => r.loaderCpu ?? 0)),
    lagP99: median(runs.map((r) => r.lagP99 ?? 0)),
  };
}

/** CPU seconds (user + system, all threads) a process has used so far, from /proc. */
function processCpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // utime and stime are fields 14 and 15 of stat (1-based), 12 and 13 after "pid (comm) ".
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/**
 * CPU seconds of the machine's PostgreSQL processes so far (the aggregator's rollups land there);
 * other users of this server add to it, and backends that exited meanwhile are not counted.
 */
function postgresCpuSeconds(): number {
  let seconds = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, "utf8").trim() === "postgres")
        seconds += processCpuSeconds(Number(entry));
    } catch {}
  }
  return seconds;
}

/** Redis's own CPU seconds so far (INFO cpu); other users of this Redis add to it. */
async function redisCpuSeconds(redis: { info(section: string): Promise<string> }): Promise<number> {
  const info = await redis.info("cpu");
  const read = (name: string) => Number(new RegExp(`${name}:([0-9.]+)`).exec(info)?.[1] ?? 0);
  return read("used_cpu_user") + read("used_cpu_sys");
}

/**
 * How late 1 ms sleeps wake on this machine with nothing else of the bench running (a child
 * process blocking in Atomics.wait, no event loop): a scheduling stall here lands on some request's
 * latency in every path alike, so it is the floor under the p99s below.
 */
function sleepLateness(seconds: number): Promise<{ sleeps: number; over1: number; over5: number; maxMs: number }> {
  const script = `
    const cell = new Int32Array(new SharedArrayBuffer(4));
    const n = ${Math.round(seconds * 1000)};
    let over1 = 0, over5 = 0, max = 0;
    for (let i = 0; i < n; i++) {
      const at = performance.now();
      Atomics.wait(cell, 0, 0, 1);
      const late = performance.now() - at - 1;
      if (late > 1) over1++;
      if (late > 5) over5++;
      if (late > max) max = late;
    }
    process.stdout.write(JSON.stringify({ sleeps: n, over1, over5, maxMs: max }));`;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ["-e", script], (error, stdout) =>
      error ? reject(error) : resolve(JSON.parse(stdout)),
    );
  });
}

/** A per-deployment histogram's cumulative count up to `le` in a /metrics text (0 when absent). */
function histogramBucket(metrics: string, name: string, le: number | "+Inf"): number {
  const bound = String(le).replace(/[+.]/g, "\\$&");
  const line = new RegExp(`${name}_bucket\\{le="${bound}",deployment="[^"]+"\\} (\\d+)`).exec(metrics);
  return Number(line?.[1] ?? 0);
}

/** The gateway's own latency histogram (arrival to answer written, kiln_inference_request_duration_seconds). */
async function gatewayLatencyCounts(
  gatewayUrl: string,
): Promise<{ total: number; upTo1: number; upTo2_5: number; upTo5: number }> {
  const metrics = await (await fetch(`${gatewayUrl}/metrics`)).text();
  const bucket = (le: number | "+Inf") => histogramBucket(metrics, "kiln_inference_request_duration_seconds", le);
  return { total: bucket("+Inf"), upTo1: bucket(0.001), upTo2_5: bucket(0.0025), upTo5: bucket(0.005) };
}

type CpuShare = {
  gateway: number;
  worker: number;
  redis: number;
  bare: number;
  bareMax: number;
  /** The same at max throughput (wrk or autocannon), where requests share event-loop turns and writes. */
  gatewayMax: number;
  workerMax: number;
  redisMax: number;
  postgres: number;
  postgresMax: number;
};

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;

/** Processes this run started; killed on any exit, so a failed run leaves none loading the machine. */
const children = new Set<ChildProcess>();
/** The same for children that lead a process group of their own (the load generators under bash). */
const groups = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of children) child.kill("SIGTERM");
  for (const child of groups) {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, "SIGTERM");
    } catch {}
  }
});
// Ctrl-C reaches only this process's group: exit through the handler above.
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => process.exit(130));

async function main() {
  const stack = await startServingStack();
  // Dispatch at once when the replica is idle; batches still form while it is busy.
  await stack.prisma.deployment.update({
    where: { id: stack.deploymentId },
    data: { maxQueueDelayMs: 0, maxBatchSize: 16 },
  });

  // 1. The engine in-process: the floor every served request pays.
  const build = await stack.prisma.build.findFirstOrThrow({
    where: { deployments: { some: { id: stack.deploymentId } } },
  });
  const engine = loadEngine(readFileSync(join(stack.artifactDir, build.engineStorageKey ?? "")));
  const ctx = engine.createContext();
  const x = tensor("float32", [1, 4], [1, 2, 3, 4]);
  for (let i = 0; i < 500; i++) await ctx.run({ x });
  const engineTimes: number[] = [];
  const engineStart = performance.now();
  for (let i = 0; i < 5_000; i++) {
    const t = performance.now();
    await ctx.run({ x });
    engineTimes.push(performance.now() - t);
  }
  const engineRps = 5_000 / ((performance.now() - engineStart) / 1000);
  engineTimes.sort((a, b) => a - b);

  // 2. A bare Fastify route in its own process (the same framework, nothing behind it).
  const bare = spawn(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      `import Fastify from "fastify"; const app = Fastify(); app.post("/echo", async () => ({ ok: true })); const url = await app.listen({ port: 0, host: "127.0.0.1" }); console.log(url);`,
    ],
    { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] },
  );
  children.add(bare);
  const bareUrl = await new Promise<string>((resolve) => bare.stdout.once("data", (d) => resolve(String(d).trim())));

  // 3. The gateway as production runs it (main.ts, GATEWAY_PROCESSES), in place of the fixture's
  // in-process one (closed here, so that it costs the bench's process nothing); --in-process keeps that.
  const profileArgs = args.profile ? ["--cpu-prof", "--cpu-prof-dir", args.profile] : [];
  let gatewayUrl = stack.gatewayUrl;
  let gatewayProcess: ChildProcess | undefined;
  if (!IN_PROCESS) {
    await stack.gateway.close();
    const port = await freePort();
    gatewayUrl = `http://127.0.0.1:${port}`;
    gatewayProcess = spawn(
      process.execPath,
      [...profileArgs, "--import", "tsx", join(ROOT, "apps/gateway/src/main.ts")],
      {
        cwd: ROOT,
        env: {
          ...gatewayProcessEnv(stack, port, GATEWAY_PROCESSES),
          LOG_LEVEL: "warn",
          WORKER_HEARTBEAT_MS: "1000",
          ...(args.tcp ? { SERVING_UNIX_SOCKET: "false" } : {}),
        },
        stdio: ["ignore", "inherit", "inherit"],
      },
    );
    children.add(gatewayProcess);
    await waitUntil(
      "the gateway to be ready",
      async () => (await fetch(`${gatewayUrl}/v2/health/ready`).catch(() => undefined))?.status === 200,
      60_000,
    );
  }
  /** The gateway's CPU seconds so far: its process tree's, or (in-process) the bench's own. */
  const gatewayCpuSeconds = (): number => {
    if (!gatewayProcess?.pid) {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1e6;
    }
    return [gatewayProcess.pid, ...descendantsOf(gatewayProcess.pid)].reduce((t, pid) => t + processCpuSeconds(pid), 0);
  };

  // 4. A worker process, warmed up through the gateway (the first request cold-starts its replica).
  const worker = spawn(process.execPath, [...profileArgs, "--import", "tsx", join(ROOT, "apps/worker/src/main.ts")], {
    cwd: ROOT,
    env: {
      ...process.env,
      ...stack.processEnv,
      LOG_LEVEL: "warn",
      WORKER_HEARTBEAT_MS: "1000",
      ...(args.tcp ? { SERVING_UNIX_SOCKET: "false" } : {}),
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  children.add(worker);
  const inferUrl = `${gatewayUrl}/v2/models/dense/infer`;
  const body = JSON.stringify({ inputs: [{ name: "x", shape: [1, 4], datatype: "FP32", data: [1, 2, 3, 4] }] });
  const headers = { authorization: `Bearer ${stack.orgA.key}`, "content-type": "application/json" };
  await waitUntil(
    "a ready replica",
    async () => (await fetch(inferUrl, { method: "POST", headers, body })).status === 200,
    120_000,
  );
  for (let i = 0; i < 500; i++) await (await fetch(inferUrl, { method: "POST", headers, body })).arrayBuffer();
  // How the gateway reaches the worker (commits before the Unix socket have no muxTransportOf: TCP).
  const [replica] = await new serving.ReplicaRegistry(stack.redis, stack.keyPrefix, 3_000).list(stack.deploymentId);
  const transportOf = (serving as { muxTransportOf?: (url: string) => string | undefined }).muxTransportOf;
  // A gateway in its own process(es) uses the socket when the replica publishes one for this host
  // (and SERVING_UNIX_SOCKET is not false: --tcp), as its ReplicaRouter decides.
  const transport = !IN_PROCESS
    ? replica?.socketPath !== undefined && serving.isSameHost(replica, serving.hostIdentity()) && !args.tcp
      ? "unix"
      : "tcp"
    : transportOf
      ? (transportOf(replica?.url ?? "") ?? "none")
      : "tcp";
  console.error(`gateway -> worker over ${transport === "unix" ? "a Unix socket" : `loopback ${transport}`}`);

  // The Enterprise plan allows 1,000 requests/s; the max-throughput run goes past it, so the
  // harness keeps the bucket full. The Lua admission still runs on every request.
  const bucket = quotaKeys(stack.keyPrefix, stack.orgA.id, new Date()).bucket;
  const refill = setInterval(() => void stack.redis.hset(bucket, "tokens", 1_000_000), 50);

  const loadBefore = loadavg();
  const stalls = await sleepLateness(5);
  const bareBody = "{}";
  const bareHeaders = { "content-type": "application/json" };
  const runs: { bareMax: Load; gatewayMax: Load; bareAtRate: Load; gatewayAtRate: Load }[] = [];
  /** Per run: the shares of the at-rate phase's requests the gateway itself (arrival to answer) took over 1, 2.5 and 5 ms. */
  const gatewaySlow: { over1: number; over2_5: number; over5: number }[] = [];
  const cpu: CpuShare[] = [];
  /** The load generator's CPU over its run, in cores (CPU seconds per second). */
  const cores = (l: Load) => ((l.loaderCpu ?? 0) / DURATION).toFixed(2);
  for (let run = 0; run < RUNS; run++) {
    // Bare and gateway alternate within a run, so load drift on a shared machine hits both alike.
    const bareMax0 = processCpuSeconds(bare.pid);
    const bareMax = await maxLoad(`${bareUrl}/echo`, { body: bareBody, headers: bareHeaders });
    const bareMaxCpu = processCpuSeconds(bare.pid) - bareMax0;
    const gwMax0 = gatewayCpuSeconds();
    const wkMax0 = processCpuSeconds(worker.pid);
    const rdMax0 = await redisCpuSeconds(stack.redis);
    const pgMax0 = postgresCpuSeconds();
    const gatewayMax = await maxLoad(inferUrl, { body, headers });
    const gwMax = gatewayCpuSeconds() - gwMax0;
    const wkMax = processCpuSeconds(worker.pid) - wkMax0;
    const rdMax = (await redisCpuSeconds(stack.redis)) - rdMax0;
    const pgMax = postgresCpuSeconds() - pgMax0;
    const bareCpu0 = processCpuSeconds(bare.pid);
    const bareAtRate = await probe(`${bareUrl}/echo`, { body: bareBody, headers: bareHeaders, rate: RATE });
    const bareCpu = processCpuSeconds(bare.pid) - bareCpu0;
    // Read before the CPU snapshots, so that rendering /metrics is not charged to the requests.
    const seen0 = await gatewayLatencyCounts(gatewayUrl);
    // CPU each process spends per request at the fixed rate: what the machine's load cannot inflate much.
    const gw0 = gatewayCpuSeconds();
    const wk0 = processCpuSeconds(worker.pid);
    const rd0 = await redisCpuSeconds(stack.redis);
    const pg0 = postgresCpuSeconds();
    const gatewayAtRate = await probe(inferUrl, { body, headers, rate: RATE });
    const gw = gatewayCpuSeconds() - gw0;
    const seen = await gatewayLatencyCounts(gatewayUrl);
    const answeredAtRate = Math.max(1, seen.total - seen0.total);
    const over = (upTo: number, upTo0: number) => (answeredAtRate - (upTo - upTo0)) / answeredAtRate;
    gatewaySlow.push({
      over1: over(seen.upTo1, seen0.upTo1),
      over2_5: over(seen.upTo2_5, seen0.upTo2_5),
      over5: over(seen.upTo5, seen0.upTo5),
    });
    const perRequestMs = (seconds: number, n: number) => (seconds * 1000) / Math.max(1, n);
    cpu.push({
      gatewayMax: perRequestMs(gwMax, gatewayMax.requests),
      workerMax: perRequestMs(wkMax, gatewayMax.requests),
      redisMax: perRequestMs(rdMax, gatewayMax.requests),
      postgresMax: perRequestMs(pgMax, gatewayMax.requests),
      postgres: perRequestMs(postgresCpuSeconds() - pg0, gatewayAtRate.requests),
      gateway: perRequestMs(gw, gatewayAtRate.requests),
      worker: perRequestMs(processCpuSeconds(worker.pid) - wk0, gatewayAtRate.requests),
      redis: perRequestMs((await redisCpuSeconds(stack.redis)) - rd0, gatewayAtRate.requests),
      bare: perRequestMs(bareCpu, bareAtRate.requests),
      bareMax: perRequestMs(bareMaxCpu, bareMax.requests),
    });
    runs.push({ bareMax, gatewayMax, bareAtRate, gatewayAtRate });
    console.error(
      `run ${run + 1}/${RUNS}: bare ${bareMax.rps.toFixed(0)} req/s, gateway ${gatewayMax.rps.toFixed(0)} req/s; ` +
        `at ${RATE} req/s p50/p99 bare ${bareAtRate.p50.toFixed(3)}/${bareAtRate.p99.toFixed(3)} ms, ` +
        `gateway ${gatewayAtRate.p50.toFixed(3)}/${gatewayAtRate.p99.toFixed(3)} ms; ` +
        `${LOAD} used ${cores(bareMax)} / ${cores(gatewayMax)} cores (bare / gateway); ` +
        `probe CPU/req ${(((bareAtRate.loaderCpu ?? 0) / bareAtRate.requests) * 1000).toFixed(3)} / ${(((gatewayAtRate.loaderCpu ?? 0) / gatewayAtRate.requests) * 1000).toFixed(3)} ms; ` +
        `CPU/req gateway ${cpu.at(-1)?.gatewayMax.toFixed(3)} (max) ${cpu.at(-1)?.gateway.toFixed(3)} (at rate), ` +
        `worker ${cpu.at(-1)?.workerMax.toFixed(3)} ${cpu.at(-1)?.worker.toFixed(3)} ms, ` +
        `bare ${cpu.at(-1)?.bareMax.toFixed(3)} (max) ms; load ${loadavg()[0]?.toFixed(2)}; gateway processes ${GATEWAY_PROCESSES}`,
    );
  }
  const bareLoad = medianLoad(runs.map((r) => r.bareMax));
  const gatewayMax = medianLoad(runs.map((r) => r.gatewayMax));
  const bareAtRate = medianLoad(runs.map((r) => r.bareAtRate));
  const gatewayAtRate = medianLoad(runs.map((r) => r.gatewayAtRate));
  clearInterval(refill);
  const medCpu = (f: keyof CpuShare) => median(cpu.map((c) => c[f]));

  const metrics = await (await fetch(`${gatewayUrl}/metrics`)).text();
  const batchLine = (le: number) => histogramBucket(metrics, "kiln_inference_batch_size", le);
  const successCount = Number(
    /kiln_inference_request_success_total\{deployment="[^"]+"\} (\d+)/.exec(metrics)?.[1] ?? 0,
  );
  const failureCount = [...metrics.matchAll(/kiln_inference_request_failure_total\{[^}]*\} (\d+)/g)].reduce(
    (n, m) => n + Number(m[1]),
    0,
  );
  const sentCount = runs.reduce((n, r) => n + r.gatewayMax.requests + r.gatewayAtRate.requests, 0);
  const batchCount = Number(/kiln_inference_batch_size_count\{deployment="[^"]+"\} (\d+)/.exec(metrics)?.[1] ?? 0);

  worker.kill("SIGTERM");
  bare.kill("SIGTERM");
  if (gatewayProcess) {
    const exited = new Promise((resolve) => gatewayProcess?.once("exit", resolve));
    gatewayProcess.kill("SIGTERM");
    await exited;
  }
  await stack.close();

  const ms = (v: number) => v.toFixed(3);
  const pct = (share: number) => `${(share * 100).toFixed(2)}%`;
  const engineP50 = percentile(engineTimes, 0.5);
  const engineP99 = percentile(engineTimes, 0.99);
  const date = new Date().toISOString().slice(0, 10);
  let commit = "unknown";
  try {
    commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, stdio: ["ignore", "pipe", "ignore"] })
      .toString()
      .trim();
  } catch {}
  const maxDigits = LOAD === "wrk" ? 3 : 0;
  const perReq = (l: Load) => (((l.loaderCpu ?? 0) * 1000) / Math.max(1, l.requests)).toFixed(3);
  const load3 = (l: number[]) => l.map((v) => v.toFixed(2)).join(" ");
  const row = (name: string, l: Load, digits: number) =>
    `| ${name} | ${l.requests} | ${l.rps.toFixed(0)} | ${l.p50.toFixed(digits)} | ${l.p90.toFixed(digits)} | ${l.p99.toFixed(digits)} | ${l.non2xx + l.errors} |`;
  const perRun = runs
    .map(
      (r, i) =>
        `| ${i + 1} | ${r.bareMax.rps.toFixed(0)} | ${r.gatewayMax.rps.toFixed(0)} | ${(r.gatewayMax.rps / r.bareMax.rps).toFixed(2)} | ` +
        `${cores(r.bareMax)} / ${cores(r.gatewayMax)} | ` +
        `${r.bareAtRate.p50.toFixed(3)} / ${r.bareAtRate.p99.toFixed(3)} | ${r.gatewayAtRate.p50.toFixed(3)} / ${r.gatewayAtRate.p99.toFixed(3)} | ` +
        `${cpu[i]?.gatewayMax.toFixed(3)} / ${cpu[i]?.workerMax.toFixed(3)} | ${cpu[i]?.gateway.toFixed(3)} / ${cpu[i]?.worker.toFixed(3)} |`,
    )
    .join("\n");
  const report = `# Gateway overhead, ${date}

Command: \`DATABASE_URL=... REDIS_URL=... npx tsx bench/gateway.ts --duration ${DURATION} --rate ${RATE} --connections ${CONNECTIONS}${LOAD === "wrk" ? ` --threads ${THREADS}` : ""} --load ${LOAD} --probe ${PROBE_KIND} --runs ${RUNS}${args.tcp ? " --tcp" : ""}${IN_PROCESS ? " --in-process" : ` --gateway-processes ${GATEWAY_PROCESSES}`}\` (commit ${commit})

Machine: ${cpus()[0]?.model ?? "?"}, ${availableParallelism()} cores; load average before the load runs ${load3(loadBefore)}, after ${load3(loadavg())}
(shared with other jobs: absolute numbers are noisy; bare route and gateway alternate within each run).

Model: dense \`y = relu(x @ W + b)\`, x float32 [1,4] (the tiny CPU model from packages/engine's tests).
Deployment: max batch 16, max queue delay 0 ms. Load generator, gateway (with Redis), worker and bare route are
separate processes on loopback; gateway -> worker is KServe v2 (the client's JSON body as it came when small, else binary) in kiln-mux/2 frames over one multiplexed connection per worker (here over ${transport === "unix" ? "the worker's Unix socket" : `loopback ${transport}`}); the worker answers with the client's answer, which the gateway sends on as bytes.
Gateway: ${IN_PROCESS ? "in the bench's process (buildGateway; its CPU is the bench process's)" : GATEWAY_PROCESSES === 1 ? "apps/gateway/src/main.ts in its own process, GATEWAY_PROCESSES=1 (one process, no primary)" : `apps/gateway/src/main.ts in its own process, GATEWAY_PROCESSES=${GATEWAY_PROCESSES} (a primary and ${GATEWAY_PROCESSES} processes sharing the port; its CPU is all of theirs; /metrics summed over them)`}.
Max throughput: ${LOAD === "wrk" ? `wrk, ${THREADS} threads, ${CONNECTIONS} connections` : `autocannon, ${CONNECTIONS} connections`}, ${DURATION} s, same settings for both targets.${loadNote ? ` (${loadNote}.)` : ""}
At ${RATE} req/s: open-loop probe (own process, ${PROBE_KIND === "net" ? "raw keep-alive sockets (node:net), a prebuilt request, minimal response parsing" : "node:http keep-alive"}, up to ${CONNECTIONS} sockets, hrtime per request from the 1 ms tick that sends it), ${DURATION} s.
${RUNS} run(s); the table shows the median of each number over the runs.

| Path | Requests | Throughput (req/s) | p50 (ms) | p90 (ms) | p99 (ms) | errors + non-2xx |
| --- | ---: | ---: | ---: | ---: | ---: | ---: |
| Engine in-process (\`ctx.run\`, sequential) | 5000 | ${engineRps.toFixed(0)} | ${ms(engineP50)} | ${ms(percentile(engineTimes, 0.9))} | ${ms(engineP99)} | 0 |
${row(`Bare Fastify route (max, ${LOAD})`, bareLoad, maxDigits)}
${row(`Gateway + worker (max, ${LOAD})`, gatewayMax, maxDigits)}
${row(`Bare Fastify route at ${RATE} req/s (probe)`, bareAtRate, 3)}
${row(`Gateway + worker at ${RATE} req/s (probe)`, gatewayAtRate, 3)}

- Overhead over the engine at ${RATE} req/s: p50 ${(gatewayAtRate.p50 - engineP50).toFixed(3)} ms (goal <= 1 ms), p99 ${(gatewayAtRate.p99 - engineP99).toFixed(3)} ms (goal <= 5 ms).
- Where the p99 tail arises, at ${RATE} req/s: the gateway's own clock (kiln_inference_request_duration_seconds, from a request's arrival to its answer being written, the worker hop included) had ${pct(median(gatewaySlow.map((s) => s.over1)))} of requests over 1 ms, ${pct(median(gatewaySlow.map((s) => s.over2_5)))} over 2.5 ms and ${pct(median(gatewaySlow.map((s) => s.over5)))} over 5 ms (medians over runs). The machine alone, before the load runs: of ${stalls.sleeps} sleeps of 1 ms, ${stalls.over1} woke more than 1 ms late and ${stalls.over5} more than 5 ms late (at most ${stalls.maxMs.toFixed(1)} ms).
- The same over the bare route at ${RATE} req/s (what the gateway adds beyond one HTTP exchange on this machine): p50 ${(gatewayAtRate.p50 - bareAtRate.p50).toFixed(3)} ms, p99 ${(gatewayAtRate.p99 - bareAtRate.p99).toFixed(3)} ms.
- Gateway throughput / bare Fastify: ${(gatewayMax.rps / bareLoad.rps).toFixed(2)} (goal >= 0.5).
- CPU per request at ${RATE} req/s (median over runs; /proc and INFO cpu, 10 ms tick resolution over ${DURATION} s): gateway process ${medCpu("gateway").toFixed(3)} ms, worker process ${medCpu("worker").toFixed(3)} ms, Redis ${medCpu("redis").toFixed(3)} ms (shared with other users of this Redis), PostgreSQL ${medCpu("postgres").toFixed(3)} ms (the usage rollups; shared likewise); bare Fastify route ${medCpu("bare").toFixed(3)} ms. At ${RATE} req/s the served path needs about ${(((medCpu("gateway") + medCpu("worker") + medCpu("redis")) * RATE) / 1000).toFixed(2)} cores besides the load generator.
- CPU per request at max throughput (median over runs, same sources): gateway process ${medCpu("gatewayMax").toFixed(3)} ms, worker process ${medCpu("workerMax").toFixed(3)} ms, Redis ${medCpu("redisMax").toFixed(3)} ms, PostgreSQL ${medCpu("postgresMax").toFixed(3)} ms; bare Fastify route ${medCpu("bareMax").toFixed(3)} ms.
- The gateway's own count over the whole run: ${successCount} requests answered by the model, ${failureCount} failed (kiln_inference_request_failure_total); the load phases above completed ${sentCount} (the rest: warm-up, and requests in flight when a load phase stopped).
- Batch sizes over the whole run (kiln_inference_batch_size): ${batchCount} requests, ${batchLine(1)} in batches of 1, ${batchLine(4) - batchLine(2)} in batches of 3-4, ${batchCount - batchLine(8)} in batches above 8.
- The probe (${PROBE_KIND}) itself used ${perReq(bareAtRate)} ms of CPU per request against the bare route and ${perReq(gatewayAtRate)} ms against the gateway (its process.cpuUsage() over the whole probe, warm-up and start-up included); its 1 ms tick sent requests up to ${(bareAtRate.lagP99 ?? 0).toFixed(3)} / ${(gatewayAtRate.lagP99 ?? 0).toFixed(3)} ms after their place in the schedule (p99, bare / gateway; not in the latencies).
- The load generator (${LOAD}) itself used ${cores(bareLoad)} cores against the bare route and ${cores(gatewayMax)} against the gateway (median CPU seconds per second of its run, from bash's \`times\`), out of ${availableParallelism()}.
- ${LOAD === "wrk" ? "wrk reports latency from a histogram in microseconds (it counts answers of 400 and up as non-2xx)" : "autocannon reports latency in whole milliseconds"}; the probe and the engine row use hrtime / performance.now().

Per run:

| Run | Bare max (req/s) | Gateway max (req/s) | Ratio | ${LOAD} cores, bare / gateway | Bare at ${RATE}/s p50 / p99 (ms) | Gateway at ${RATE}/s p50 / p99 (ms) | CPU/req at max, gateway / worker (ms) | CPU/req at ${RATE}/s, gateway / worker (ms) |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${perRun}
`;
  mkdirSync(join(ROOT, "bench/results"), { recursive: true });
  writeFileSync(args.out ?? join(ROOT, `bench/results/gateway-${date}.md`), report);
  console.log(report);
  process.exit(0);
}

await main();
