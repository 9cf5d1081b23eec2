// The gateway as production runs it (main.ts) with GATEWAY_PROCESSES=2: two processes share the
// port and both serve, /metrics answers for the host whichever process gets the scrape, a killed
// process is replaced without the host's counters going down, and SIGTERM to the primary drains
// everything. Real HTTP, Postgres, Redis and a worker; nothing mocked.
import { readFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gatewayProcessEnv, type ServingStack, startServingStack } from "../../../test/serving-fixture.ts";
import {
  descendantsOf,
  freePort,
  isAlive,
  listProcesses,
  ROOT,
  type Started,
  startGroup,
  waitUntil,
} from "../../../test/support.ts";
import { cgroupCpuLimit, gatewayProcesses } from "./cluster.ts";

let stack: ServingStack;
let gateway: Started;
let base: string;

/** One request on a connection of its own (Connection: close), so the primary hands each to the next process. */
function call(
  path: string,
  options: { method?: string; body?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; text: string; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      `${base}${path}`,
      { method: options.method ?? "GET", agent: false, headers: { connection: "close", ...options.headers } },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d) => (text += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text, headers: res.headers }));
      },
    );
    req.on("error", reject);
    req.end(options.body);
  });
}

const body = JSON.stringify({ inputs: [{ name: "x", shape: [1, 4], datatype: "FP32", data: [1, 2, 3, 4] }] });
const infer = () =>
  call("/v2/models/dense/infer", {
    method: "POST",
    body,
    headers: { authorization: `Bearer ${stack.orgA.key}`, "content-type": "application/json" },
  });
const successTotal = (metrics: string) =>
  Number(/^kiln_inference_request_success_total\{deployment="[^"]+"\} (\d+)$/m.exec(metrics)?.[1] ?? 0);
/** The primary's node children: its gateway processes (tsx's esbuild helpers are not node). */
const gatewayPids = () => {
  const primary = gateway.child.pid as number;
  return listProcesses()
    .filter((p) => p.ppid === primary)
    .map((p) => p.pid)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "node";
      } catch {
        return false;
      }
    });
};

beforeAll(async () => {
  stack = await startServingStack();
  await stack.startWorker();
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  gateway = startGroup(process.execPath, ["--import", "tsx", join(ROOT, "apps/gateway/src/main.ts")], {
    cwd: ROOT,
    env: {
      ...gatewayProcessEnv(stack, port, 2),
      // Round-robin hand-out of connections (Node's default on Linux, stated so the test does not
      // depend on the platform's default).
      NODE_CLUSTER_SCHED_POLICY: "rr",
      WORKER_HEARTBEAT_MS: "500",
      LOG_LEVEL: "warn",
      NODE_ENV: "test",
    },
  });
  await waitUntil(
    "the clustered gateway to be ready",
    async () => (await call("/v2/health/ready").catch(() => ({ status: 0 }))).status === 200,
    60_000,
  );
}, 120_000);

afterAll(async () => {
  if (gateway?.child.pid && gateway.child.exitCode === null && gateway.child.signalCode === null) {
    process.kill(-gateway.child.pid, "SIGKILL");
  }
  await stack?.close();
});

describe("GATEWAY_PROCESSES", () => {
  it("defaults to one process, takes auto (one per core) and a whole number", () => {
    expect(gatewayProcesses({})).toBe(1);
    expect(gatewayProcesses({ GATEWAY_PROCESSES: "" })).toBe(1);
    expect(gatewayProcesses({ GATEWAY_PROCESSES: "auto" })).toBeGreaterThanOrEqual(1);
    expect(gatewayProcesses({ GATEWAY_PROCESSES: "auto" })).toBeLessThanOrEqual(availableParallelism());
    expect(gatewayProcesses({ GATEWAY_PROCESSES: "3" })).toBe(3);
    expect(() => gatewayProcesses({ GATEWAY_PROCESSES: "0" })).toThrow(/GATEWAY_PROCESSES/);
    expect(() => gatewayProcesses({ GATEWAY_PROCESSES: "two" })).toThrow(/GATEWAY_PROCESSES/);
  });

  it("reads a cgroup CPU limit (v2, then v1), none when unlimited", () => {
    const files = (map: Record<string, string>) => (path: string) => {
      if (!(path in map)) throw new Error(`ENOENT ${path}`);
      return map[path] as string;
    };
    expect(cgroupCpuLimit(files({ "/sys/fs/cgroup/cpu.max": "200000 100000\n" }))).toBe(2);
    expect(cgroupCpuLimit(files({ "/sys/fs/cgroup/cpu.max": "150000 100000\n" }))).toBe(1.5);
    expect(cgroupCpuLimit(files({ "/sys/fs/cgroup/cpu.max": "max 100000\n" }))).toBeUndefined();
    expect(
      cgroupCpuLimit(
        files({
          "/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "300000\n",
          "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
        }),
      ),
    ).toBe(3);
    expect(
      cgroupCpuLimit(
        files({ "/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n", "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n" }),
      ),
    ).toBeUndefined();
    expect(cgroupCpuLimit(files({}))).toBeUndefined();
  });
});

describe("a gateway of two processes", () => {
  it("runs a primary and two serving processes, each answering health checks", async () => {
    expect(gatewayPids()).toHaveLength(2);
    for (let i = 0; i < 4; i++) {
      expect((await call("/v2/health/live")).status).toBe(200);
      expect((await call("/v2/health/ready")).status).toBe(200);
    }
  });

  it("serves from both processes, and /metrics counts every request whichever process answers it", async () => {
    // The first request cold-starts the replica on the worker.
    await waitUntil("a ready replica", async () => (await infer()).status === 200, 60_000);
    const before = successTotal((await call("/metrics")).text);
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) statuses.push((await infer()).status);
    expect(statuses.every((s) => s === 200)).toBe(true);
    // Each request came on a new connection, handed out in turn: each process answered about half.
    // A process answering /metrics for itself alone would show about 20 of the 40.
    const scrapes = await Promise.all([0, 1, 2, 3].map(() => call("/metrics")));
    for (const scrape of scrapes) {
      expect(scrape.status).toBe(200);
      expect(scrape.headers["content-type"]).toMatch(/^text\/plain/);
      expect(successTotal(scrape.text) - before).toBe(40);
    }
    // One set of series: each appears once, the histograms with their buckets.
    const text = scrapes[0]?.text ?? "";
    expect(text.match(/^# TYPE kiln_inference_request_success_total counter$/gm)).toHaveLength(1);
    expect(text.match(/^kiln_inference_request_duration_seconds_count\{deployment="[^"]+"\} \d+$/gm)).toHaveLength(1);
    expect(text).toMatch(/^kiln_inference_request_duration_seconds_bucket\{le="\+Inf",deployment="[^"]+"\} \d+$/m);
    // The ready-replica gauge is the highest any process saw (1 replica), not the sum.
    expect(text).toMatch(/^kiln_ready_replicas\{deployment="[^"]+"\} 1$/m);
  });

  it("replaces a killed process, and the host's counters do not go down", async () => {
    const before = successTotal((await call("/metrics")).text);
    const [victim, survivor] = gatewayPids();
    process.kill(victim as number, "SIGKILL");
    await waitUntil(
      "a replacement process",
      async () => {
        const pids = gatewayPids();
        return pids.length === 2 && !pids.includes(victim as number) && pids.includes(survivor as number);
      },
      30_000,
    );
    await waitUntil("the replacement to serve", async () => (await call("/v2/health/ready")).status === 200, 30_000);
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push((await infer()).status);
    expect(statuses.every((s) => s === 200)).toBe(true);
    const after = successTotal((await call("/metrics")).text);
    expect(after).toBeGreaterThanOrEqual(before + 20);
  });

  it("drains every process and exits on SIGTERM to the primary", async () => {
    const serving = gatewayPids();
    const all = [...descendantsOf(gateway.child.pid as number)];
    const primary = gateway.child.pid as number;
    process.kill(primary, "SIGTERM");
    const code = await gateway.exited;
    expect(code).toBe(0);
    // The primary exits only after its gateway processes have (and it has reaped them).
    expect(serving).toHaveLength(2);
    for (const pid of serving) expect(isAlive(pid)).toBe(false);
    // Helpers under them (tsx's esbuild service) leave when their parent does, a moment later.
    await waitUntil("no process of the gateway left", async () => all.every((pid) => !isAlive(pid)), 10_000);
    await expect(call("/v2/health/live")).rejects.toThrow();
  });
});
