// Serving overhead: the gateway + a worker process serving a tiny CPU model, under load from
// another process (autocannon), against calling the engine in-process and against a bare Fastify
// route, in one run.
//   DATABASE_URL=postgresql://... REDIS_URL=redis://... npx tsx bench/gateway.ts [--duration 10] [--rate 1000]
// Writes bench/results/gateway-<date>.md and prints it.
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { loadEngine, tensor } from "@kiln/engine";
import { quotaKeys } from "@kiln/metering";
import Fastify from "fastify";
import { startServingStack } from "../test/serving-fixture.ts";
import { ROOT, waitUntil } from "../test/support.ts";

const { values: args } = parseArgs({
  options: {
    duration: { type: "string", default: "10" },
    rate: { type: "string", default: "1000" },
    connections: { type: "string", default: "16" },
  },
});
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

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;

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
  const { readFileSync } = await import("node:fs");
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
  const bareUrl = await new Promise<string>((resolve) => bare.stdout.once("data", (d) => resolve(String(d).trim())));
  void Fastify;

  // 3. A worker process, warmed up through the gateway (the first request cold-starts its replica).
  const worker = spawn(process.execPath, ["--import", "tsx", join(ROOT, "apps/worker/src/main.ts")], {
    cwd: ROOT,
    env: {
      ...process.env,
      DATABASE_URL: stack.db.url,
      REDIS_KEY_PREFIX: stack.keyPrefix,
      ARTIFACT_DIR: stack.artifactDir,
      LOG_LEVEL: "warn",
      WORKER_HEARTBEAT_MS: "1000",
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  const inferUrl = `${stack.gatewayUrl}/v2/models/dense/infer`;
  const body = JSON.stringify({ inputs: [{ name: "x", shape: [1, 4], datatype: "FP32", data: [1, 2, 3, 4] }] });
  const headers = { authorization: `Bearer ${stack.orgA.key}`, "content-type": "application/json" };
  await waitUntil(
    "a ready replica",
    async () => (await fetch(inferUrl, { method: "POST", headers, body })).status === 200,
    120_000,
  );
  for (let i = 0; i < 500; i++) await (await fetch(inferUrl, { method: "POST", headers, body })).arrayBuffer();

  // The Enterprise plan allows 1,000 requests/s; the max-throughput run goes past it, so the
  // harness keeps the bucket full. The Lua admission still runs on every request.
  const bucket = quotaKeys(stack.keyPrefix, stack.orgA.id, new Date()).bucket;
  const refill = setInterval(() => void stack.redis.hset(bucket, "tokens", 1_000_000), 50);

  const bareLoad = await autocannon(`${bareUrl}/echo`, { body: "{}", headers: { "content-type": "application/json" } });
  const gatewayMax = await autocannon(inferUrl, { body, headers });
  const gatewayAtRate = await autocannon(inferUrl, { body, headers, rate: RATE });
  clearInterval(refill);

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
  const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT }).toString().trim();
  const report = `# Gateway overhead, ${date}

Command: \`DATABASE_URL=... REDIS_URL=... npx tsx bench/gateway.ts --duration ${DURATION} --rate ${RATE} --connections ${CONNECTIONS}\` (commit ${commit})

Machine: ${cpus()[0]?.model ?? "?"}, ${availableParallelism()} cores; load average at the end ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}
(shared with other jobs: absolute numbers are noisy; the run compares the three paths under the same conditions).

Model: dense \`y = relu(x @ W + b)\`, x float32 [1,4] (the tiny CPU model from packages/engine's tests).
Deployment: max batch 16, max queue delay 0 ms. Gateway, worker and autocannon are three processes on loopback;
gateway -> worker is KServe v2 binary over kept-alive HTTP/1.1. ${CONNECTIONS} connections, ${DURATION} s per load run.

| Path | Requests | Throughput (req/s) | p50 (ms) | p90 (ms) | p99 (ms) | non-2xx |
| --- | ---: | ---: | ---: | ---: | ---: | ---: |
| Engine in-process (\`ctx.run\`, sequential) | 5000 | ${engineRps.toFixed(0)} | ${ms(engineP50)} | ${ms(percentile(engineTimes, 0.9))} | ${ms(engineP99)} | 0 |
| Bare Fastify route (max) | ${bareLoad.requests} | ${bareLoad.rps.toFixed(0)} | ${bareLoad.p50} | ${bareLoad.p90} | ${bareLoad.p99} | ${bareLoad.non2xx} |
| Gateway + worker (max) | ${gatewayMax.requests} | ${gatewayMax.rps.toFixed(0)} | ${gatewayMax.p50} | ${gatewayMax.p90} | ${gatewayMax.p99} | ${gatewayMax.non2xx} |
| Gateway + worker at ${RATE} req/s | ${gatewayAtRate.requests} | ${gatewayAtRate.rps.toFixed(0)} | ${gatewayAtRate.p50} | ${gatewayAtRate.p90} | ${gatewayAtRate.p99} | ${gatewayAtRate.non2xx} |

- Overhead over the engine at ${RATE} req/s: p50 ${(gatewayAtRate.p50 - engineP50).toFixed(3)} ms (goal <= 1 ms), p99 ${(gatewayAtRate.p99 - engineP99).toFixed(3)} ms (goal <= 5 ms).
- Gateway throughput / bare Fastify: ${(gatewayMax.rps / bareLoad.rps).toFixed(2)} (goal >= 0.5).
- Batch sizes over the whole run (kiln_inference_batch_size): ${batchCount} requests, ${batchLine("1")} in batches of 1, ${batchLine("4") - batchLine("2")} in batches of 3-4, ${batchCount - batchLine("8")} in batches above 8.
- autocannon reports latency in whole milliseconds; the engine row is measured with performance.now().
`;
  mkdirSync(join(ROOT, "bench/results"), { recursive: true });
  writeFileSync(join(ROOT, `bench/results/gateway-${date}.md`), report);
  console.log(report);
  process.exit(0);
}

await main();
