// Serving overhead: the gateway + a worker process serving a tiny CPU model, under load from
// another process (autocannon), against calling the engine in-process and against a bare Fastify
// route, in one run.
//   DATABASE_URL=postgresql://... REDIS_URL=redis://... npx tsx bench/gateway.ts [--duration 10] [--rate 1000]
//     [--connections 16] [--runs 3] [--profile DIR] [--tcp]
// Max throughput: autocannon (same settings for the bare route and the gateway). Latency at a fixed
// rate: an open-loop probe in its own process timing each request with hrtime (autocannon reports
// whole milliseconds, too coarse for a 1 ms goal), run against the bare route and the gateway alike.
// --runs repeats the load phases and reports the median of each number (and every run).
// --profile writes CPU profiles (node --cpu-prof) of the worker process into DIR; run the bench
// itself under `node --cpu-prof` for the gateway's.
// Writes bench/results/gateway-<date>.md and prints it.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { loadEngine, tensor } from "@kiln/engine";
import { quotaKeys } from "@kiln/metering";
import * as serving from "@kiln/serving";
import Fastify from "fastify";
import { startServingStack } from "../test/serving-fixture.ts";
import { ROOT, waitUntil } from "../test/support.ts";

const { values: args } = parseArgs({
  options: {
    duration: { type: "string", default: "10" },
    rate: { type: "string", default: "1000" },
    connections: { type: "string", default: "16" },
    runs: { type: "string", default: "1" },
    profile: { type: "string" },
    out: { type: "string" },
    tcp: { type: "boolean", default: false },
    help: { type: "boolean", short: "h" },
  },
});
if (args.help) {
  console.log(`Usage: DATABASE_URL=postgresql://... REDIS_URL=redis://... npx tsx bench/gateway.ts [options]
  --duration S     seconds per load phase (default 10)
  --rate R         fixed rate of the latency phase, requests/s (default 1000)
  --connections C  autocannon connections and the probe's sockets (default 16)
  --runs N         repeat the load phases N times, report medians (default 1)
  --profile DIR    write the worker process's CPU profile into DIR (node --cpu-prof)
  --out FILE       write the report there instead of bench/results/gateway-<date>.md
  --tcp            gateway -> worker over loopback TCP (the worker gets SERVING_UNIX_SOCKET=false);
                   by default it goes over the worker's Unix socket, as on any single host`);
  process.exit(0);
}
const RUNS = Math.max(1, Number(args.runs));
const DURATION = Number(args.duration);
const RATE = Number(args.rate);
const CONNECTIONS = Number(args.connections);

type Load = { requests: number; rps: number; p50: number; p90: number; p99: number; non2xx: number; errors: number };

/** autocannon in its own process, so the load generator does not share the server's event loop. */
function autocannon(
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
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, cli, { stdio: ["ignore", "pipe", "ignore"] });
    children.add(child);
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`autocannon exited ${code}`));
      const r = JSON.parse(out);
      resolve({
        requests: r.requests.total,
        rps: r.requests.average,
        p50: r.latency.p50,
        p90: r.latency.p90,
        p99: r.latency.p99,
        non2xx: r.non2xx,
        errors: r.errors,
      });
    });
  });
}

/**
 * Open-loop load at a fixed rate from its own process: every millisecond it sends the requests the
 * schedule is due (over at most `connections` kept-alive sockets) and times each one with hrtime.
 */
const PROBE = `
import { Agent, request } from "node:http";
const [url, rate, seconds, connections, body, headersJson] = process.argv.slice(1);
const target = new URL(url);
const headers = { ...JSON.parse(headersJson), "content-length": Buffer.byteLength(body) };
const agent = new Agent({ keepAlive: true, maxSockets: Number(connections) });
const latencies = [];
let sent = 0, done = 0, non2xx = 0, errors = 0;
const total = Number(rate) * Number(seconds);
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
    const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * Number(rate)));
    while (sent < due) fire();
    if (sent >= total) clearInterval(timer);
  }, 1);
}
function finish() {
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const p = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  process.stdout.write(JSON.stringify({ requests: done, rps: done / elapsed, p50: p(0.5), p90: p(0.9), p99: p(0.99), non2xx, errors }));
  process.exit(0);
}
`;

function probe(url: string, options: { body: string; headers: Record<string, string>; rate: number }): Promise<Load> {
  const cli = [
    "--input-type=module",
    "-e",
    PROBE,
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
      code === 0 ? resolve(JSON.parse(out) as Load) : reject(new Error(`probe exited ${code}`)),
    );
  });
}

/** The median (the mean of the two middle values for an even count). */
function middle(values: number[]): number {
  const v = [...values].sort((a, b) => a - b);
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
}

/** The median of each field over several runs. */
function medianLoad(runs: Load[]): Load {
  const med = (f: keyof Load) => middle(runs.map((r) => r[f]));
  return {
    requests: med("requests"),
    rps: med("rps"),
    p50: med("p50"),
    p90: med("p90"),
    p99: med("p99"),
    non2xx: runs.reduce((n, r) => n + r.non2xx, 0),
    errors: runs.reduce((n, r) => n + r.errors, 0),
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

type CpuShare = {
  gateway: number;
  worker: number;
  redis: number;
  bare: number;
  /** The same at max throughput (autocannon), where requests share event-loop turns and writes. */
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
process.on("exit", () => {
  for (const child of children) child.kill("SIGTERM");
});

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
  void Fastify;

  // 3. A worker process, warmed up through the gateway (the first request cold-starts its replica).
  const profileArgs = args.profile ? ["--cpu-prof", "--cpu-prof-dir", args.profile] : [];
  const worker = spawn(process.execPath, [...profileArgs, "--import", "tsx", join(ROOT, "apps/worker/src/main.ts")], {
    cwd: ROOT,
    env: {
      ...process.env,
      DATABASE_URL: stack.db.url,
      REDIS_KEY_PREFIX: stack.keyPrefix,
      ARTIFACT_DIR: stack.artifactDir,
      LOG_LEVEL: "warn",
      WORKER_HEARTBEAT_MS: "1000",
      ...(args.tcp ? { SERVING_UNIX_SOCKET: "false" } : {}),
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  children.add(worker);
  const inferUrl = `${stack.gatewayUrl}/v2/models/dense/infer`;
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
  const transport = transportOf ? (transportOf(replica?.url ?? "") ?? "none") : "tcp";
  console.error(`gateway -> worker over ${transport === "unix" ? "a Unix socket" : `loopback ${transport}`}`);

  // The Enterprise plan allows 1,000 requests/s; the max-throughput run goes past it, so the
  // harness keeps the bucket full. The Lua admission still runs on every request.
  const bucket = quotaKeys(stack.keyPrefix, stack.orgA.id, new Date()).bucket;
  const refill = setInterval(() => void stack.redis.hset(bucket, "tokens", 1_000_000), 50);

  const loadBefore = loadavg();
  const bareBody = "{}";
  const bareHeaders = { "content-type": "application/json" };
  const runs: { bareMax: Load; gatewayMax: Load; bareAtRate: Load; gatewayAtRate: Load }[] = [];
  const cpu: CpuShare[] = [];
  for (let run = 0; run < RUNS; run++) {
    // Bare and gateway alternate within a run, so load drift on a shared machine hits both alike.
    const bareMax = await autocannon(`${bareUrl}/echo`, { body: bareBody, headers: bareHeaders });
    const gwMax0 = process.cpuUsage();
    const wkMax0 = processCpuSeconds(worker.pid);
    const rdMax0 = await redisCpuSeconds(stack.redis);
    const pgMax0 = postgresCpuSeconds();
    const gatewayMax = await autocannon(inferUrl, { body, headers });
    const gwMax = process.cpuUsage(gwMax0);
    const wkMax = processCpuSeconds(worker.pid) - wkMax0;
    const rdMax = (await redisCpuSeconds(stack.redis)) - rdMax0;
    const pgMax = postgresCpuSeconds() - pgMax0;
    const bareCpu0 = processCpuSeconds(bare.pid);
    const bareAtRate = await probe(`${bareUrl}/echo`, { body: bareBody, headers: bareHeaders, rate: RATE });
    const bareCpu = processCpuSeconds(bare.pid) - bareCpu0;
    // CPU each process spends per request at the fixed rate: what the machine's load cannot inflate much.
    const gw0 = process.cpuUsage();
    const wk0 = processCpuSeconds(worker.pid);
    const rd0 = await redisCpuSeconds(stack.redis);
    const pg0 = postgresCpuSeconds();
    const gatewayAtRate = await probe(inferUrl, { body, headers, rate: RATE });
    const gw = process.cpuUsage(gw0);
    const perRequestMs = (seconds: number, n: number) => (seconds * 1000) / Math.max(1, n);
    cpu.push({
      gatewayMax: perRequestMs((gwMax.user + gwMax.system) / 1e6, gatewayMax.requests),
      workerMax: perRequestMs(wkMax, gatewayMax.requests),
      redisMax: perRequestMs(rdMax, gatewayMax.requests),
      postgresMax: perRequestMs(pgMax, gatewayMax.requests),
      postgres: perRequestMs(postgresCpuSeconds() - pg0, gatewayAtRate.requests),
      gateway: perRequestMs((gw.user + gw.system) / 1e6, gatewayAtRate.requests),
      worker: perRequestMs(processCpuSeconds(worker.pid) - wk0, gatewayAtRate.requests),
      redis: perRequestMs((await redisCpuSeconds(stack.redis)) - rd0, gatewayAtRate.requests),
      bare: perRequestMs(bareCpu, bareAtRate.requests),
    });
    runs.push({ bareMax, gatewayMax, bareAtRate, gatewayAtRate });
    console.error(
      `run ${run + 1}/${RUNS}: bare ${bareMax.rps.toFixed(0)} req/s, gateway ${gatewayMax.rps.toFixed(0)} req/s; ` +
        `at ${RATE} req/s p50/p99 bare ${bareAtRate.p50.toFixed(3)}/${bareAtRate.p99.toFixed(3)} ms, ` +
        `gateway ${gatewayAtRate.p50.toFixed(3)}/${gatewayAtRate.p99.toFixed(3)} ms; ` +
        `CPU/req gateway ${cpu.at(-1)?.gatewayMax.toFixed(3)} (max) ${cpu.at(-1)?.gateway.toFixed(3)} (at rate), ` +
        `worker ${cpu.at(-1)?.workerMax.toFixed(3)} ${cpu.at(-1)?.worker.toFixed(3)} ms; load ${loadavg()[0]?.toFixed(2)}`,
    );
  }
  const bareLoad = medianLoad(runs.map((r) => r.bareMax));
  const gatewayMax = medianLoad(runs.map((r) => r.gatewayMax));
  const bareAtRate = medianLoad(runs.map((r) => r.bareAtRate));
  const gatewayAtRate = medianLoad(runs.map((r) => r.gatewayAtRate));
  clearInterval(refill);
  const medCpu = (f: keyof CpuShare) => middle(cpu.map((c) => c[f]));

  const metrics = await (await fetch(`${stack.gatewayUrl}/metrics`)).text();
  const batchLine = (le: string) =>
    Number(
      new RegExp(`kiln_inference_batch_size_bucket\\{le="${le}",deployment="[^"]+"\\} (\\d+)`).exec(metrics)?.[1] ?? 0,
    );
  const batchCount = Number(/kiln_inference_batch_size_count\{deployment="[^"]+"\} (\d+)/.exec(metrics)?.[1] ?? 0);

  worker.kill("SIGTERM");
  bare.kill("SIGTERM");
  await stack.close();

  const ms = (v: number) => v.toFixed(3);
  const engineP50 = percentile(engineTimes, 0.5);
  const engineP99 = percentile(engineTimes, 0.99);
  const date = new Date().toISOString().slice(0, 10);
  let commit = "unknown";
  try {
    commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, stdio: ["ignore", "pipe", "ignore"] })
      .toString()
      .trim();
  } catch {}
  const load3 = (l: number[]) => l.map((v) => v.toFixed(2)).join(" ");
  const row = (name: string, l: Load, digits: number) =>
    `| ${name} | ${l.requests} | ${l.rps.toFixed(0)} | ${l.p50.toFixed(digits)} | ${l.p90.toFixed(digits)} | ${l.p99.toFixed(digits)} | ${l.non2xx + l.errors} |`;
  const perRun = runs
    .map(
      (r, i) =>
        `| ${i + 1} | ${r.bareMax.rps.toFixed(0)} | ${r.gatewayMax.rps.toFixed(0)} | ${(r.gatewayMax.rps / r.bareMax.rps).toFixed(2)} | ` +
        `${r.bareAtRate.p50.toFixed(3)} / ${r.bareAtRate.p99.toFixed(3)} | ${r.gatewayAtRate.p50.toFixed(3)} / ${r.gatewayAtRate.p99.toFixed(3)} | ` +
        `${cpu[i]?.gatewayMax.toFixed(3)} / ${cpu[i]?.workerMax.toFixed(3)} | ${cpu[i]?.gateway.toFixed(3)} / ${cpu[i]?.worker.toFixed(3)} |`,
    )
    .join("\n");
  const report = `# Gateway overhead, ${date}

Command: \`DATABASE_URL=... REDIS_URL=... npx tsx bench/gateway.ts --duration ${DURATION} --rate ${RATE} --connections ${CONNECTIONS} --runs ${RUNS}${args.tcp ? " --tcp" : ""}\` (commit ${commit})

Machine: ${cpus()[0]?.model ?? "?"}, ${availableParallelism()} cores; load average before the load runs ${load3(loadBefore)}, after ${load3(loadavg())}
(shared with other jobs: absolute numbers are noisy; bare route and gateway alternate within each run).

Model: dense \`y = relu(x @ W + b)\`, x float32 [1,4] (the tiny CPU model from packages/engine's tests).
Deployment: max batch 16, max queue delay 0 ms. Load generator, gateway (with Redis), worker and bare route are
separate processes on loopback; gateway -> worker is KServe v2 (the client's JSON body as it came when small, else binary) in kiln-mux/2 frames over one multiplexed connection per worker (here over ${transport === "unix" ? "the worker's Unix socket" : `loopback ${transport}`}); the worker answers with the client's answer, which the gateway sends on as bytes.
Max throughput: autocannon, ${CONNECTIONS} connections, ${DURATION} s, same settings for both targets.
At ${RATE} req/s: open-loop probe (own process, node:http keep-alive, up to ${CONNECTIONS} sockets, hrtime per request), ${DURATION} s.
${RUNS} run(s); the table shows the median of each number over the runs.

| Path | Requests | Throughput (req/s) | p50 (ms) | p90 (ms) | p99 (ms) | errors + non-2xx |
| --- | ---: | ---: | ---: | ---: | ---: | ---: |
| Engine in-process (\`ctx.run\`, sequential) | 5000 | ${engineRps.toFixed(0)} | ${ms(engineP50)} | ${ms(percentile(engineTimes, 0.9))} | ${ms(engineP99)} | 0 |
${row("Bare Fastify route (max, autocannon)", bareLoad, 0)}
${row("Gateway + worker (max, autocannon)", gatewayMax, 0)}
${row(`Bare Fastify route at ${RATE} req/s (probe)`, bareAtRate, 3)}
${row(`Gateway + worker at ${RATE} req/s (probe)`, gatewayAtRate, 3)}

- Overhead over the engine at ${RATE} req/s: p50 ${(gatewayAtRate.p50 - engineP50).toFixed(3)} ms (goal <= 1 ms), p99 ${(gatewayAtRate.p99 - engineP99).toFixed(3)} ms (goal <= 5 ms).
- The same over the bare route at ${RATE} req/s (what the gateway adds beyond one HTTP exchange on this machine): p50 ${(gatewayAtRate.p50 - bareAtRate.p50).toFixed(3)} ms, p99 ${(gatewayAtRate.p99 - bareAtRate.p99).toFixed(3)} ms.
- Gateway throughput / bare Fastify: ${(gatewayMax.rps / bareLoad.rps).toFixed(2)} (goal >= 0.5).
- CPU per request at ${RATE} req/s (median over runs; /proc and INFO cpu, 10 ms tick resolution over ${DURATION} s): gateway process ${medCpu("gateway").toFixed(3)} ms, worker process ${medCpu("worker").toFixed(3)} ms, Redis ${medCpu("redis").toFixed(3)} ms (shared with other users of this Redis), PostgreSQL ${medCpu("postgres").toFixed(3)} ms (the usage rollups; shared likewise); bare Fastify route ${medCpu("bare").toFixed(3)} ms. At ${RATE} req/s the served path needs about ${(((medCpu("gateway") + medCpu("worker") + medCpu("redis")) * RATE) / 1000).toFixed(2)} cores besides the load generator.
- CPU per request at max throughput (median over runs, same sources): gateway process ${medCpu("gatewayMax").toFixed(3)} ms, worker process ${medCpu("workerMax").toFixed(3)} ms, Redis ${medCpu("redisMax").toFixed(3)} ms, PostgreSQL ${medCpu("postgresMax").toFixed(3)} ms.
- Batch sizes over the whole run (kiln_inference_batch_size): ${batchCount} requests, ${batchLine("1")} in batches of 1, ${batchLine("4") - batchLine("2")} in batches of 3-4, ${batchCount - batchLine("8")} in batches above 8.
- autocannon reports latency in whole milliseconds; the probe and the engine row use hrtime / performance.now().

Per run:

| Run | Bare max (req/s) | Gateway max (req/s) | Ratio | Bare at ${RATE}/s p50 / p99 (ms) | Gateway at ${RATE}/s p50 / p99 (ms) | CPU/req at max, gateway / worker (ms) | CPU/req at ${RATE}/s, gateway / worker (ms) |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${perRun}
`;
  mkdirSync(join(ROOT, "bench/results"), { recursive: true });
  writeFileSync(args.out ?? join(ROOT, `bench/results/gateway-${date}.md`), report);
  console.log(report);
  process.exit(0);
}

await main();
