// The gateway -> worker hop over the worker's Unix socket when both are on one host: used when the
// host identities match, TCP otherwise or when the socket cannot be reached (no request lost), and a
// replica killed with requests in flight gives the same answers over the socket as over TCP.
import { existsSync, mkdtempSync, rmSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hostIdentity, LoadQueue, muxTransportOf, ReplicaRegistry } from "@kiln/serving";
import type { RunningServing } from "@kiln/worker/serving";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  logger,
  REDIS_URL,
  requestReplica,
  type ServingStack,
  startServingStack,
} from "../../../../test/serving-fixture.ts";
import { ROOT, type Started, sleep, startGroup, waitUntil } from "../../../../test/support.ts";
import { buildGateway } from "../build-gateway.ts";

let stack: ServingStack;
let registry: ReplicaRegistry;
let loads: LoadQueue;
/** A second gateway that believes it runs on another host. */
let elsewhere: FastifyInstance;
let elsewhereUrl: string;
const socketDir = mkdtempSync(join(tmpdir(), "kiln-gateway-socket-"));
const spawned: Started[] = [];

beforeAll(async () => {
  stack = await startServingStack();
  registry = new ReplicaRegistry(stack.redis, stack.keyPrefix, 1_500);
  loads = new LoadQueue(stack.redis.duplicate({ maxRetriesPerRequest: null }), stack.keyPrefix);
  elsewhere = buildGateway(
    { DATABASE_URL: stack.db.url, REDIS_URL, LOG_LEVEL: "silent", REDIS_KEY_PREFIX: stack.keyPrefix },
    {
      logger,
      runPredictionWorkers: false,
      serving: { coldStartTimeoutMs: 20_000, replicaTtlMs: 1_500, localSockets: { hostId: "another-host/0" } },
    },
  );
  elsewhereUrl = await elsewhere.listen({ host: "127.0.0.1", port: 0 });
});
afterAll(async () => {
  for (const s of spawned) {
    if (s.child.exitCode === null && s.child.signalCode === null && s.child.pid) process.kill(-s.child.pid, "SIGKILL");
  }
  await elsewhere?.close();
  await loads?.close();
  await stack?.close();
  rmSync(socketDir, { recursive: true, force: true });
});

const body = JSON.stringify({ inputs: [{ name: "x", shape: [1, 4], datatype: "FP32", data: [1, 2, 3, 4] }] });
async function infer(gatewayUrl: string, model = "dense"): Promise<{ status: number; retryAfter: string | null }> {
  const res = await fetch(`${gatewayUrl}/v2/models/${model}/infer`, {
    method: "POST",
    headers: { authorization: `Bearer ${stack.orgA.key}`, "content-type": "application/json" },
    body,
  });
  await res.arrayBuffer();
  return { status: res.status, retryAfter: res.headers.get("retry-after") };
}

/** Asks for replica `ordinal` of a deployment and waits until `count` replicas are ready. */
async function loadReplica(deploymentId: string, ordinal: number, count = 1): Promise<void> {
  await requestReplica(stack, loads, deploymentId, ordinal);
  await waitUntil(
    `${count} ready replicas`,
    async () => (await registry.list(deploymentId)).filter((r) => r.status === "ready").length === count,
    60_000,
  );
}

describe("the gateway -> worker hop on one host", () => {
  let first: RunningServing;

  it("goes over the worker's Unix socket, published with the host's identity", async () => {
    first = await stack.startWorker();
    await loadReplica(stack.deploymentId, 1);
    const [record] = await registry.list(stack.deploymentId);
    expect(record).toMatchObject({ url: first.url, socketPath: first.socketPath, hostId: hostIdentity() });
    expect((await infer(stack.gatewayUrl)).status).toBe(200);
    expect(muxTransportOf(first.url)).toBe("unix");
  });

  it("removes the socket file when the worker stops", async () => {
    const path = first.socketPath as string;
    expect(existsSync(path)).toBe(true);
    await first.stop();
    expect(existsSync(path)).toBe(false);
  });

  it("goes over TCP to a worker published from another host", async () => {
    const worker = await stack.startWorker();
    await loadReplica(stack.deploymentId, 1);
    expect((await infer(elsewhereUrl)).status).toBe(200);
    expect(muxTransportOf(worker.url)).toBe("tcp");
    await worker.stop();
  });

  it("falls back to TCP, losing no request, when the socket is gone", async () => {
    const worker = await stack.startWorker();
    await loadReplica(stack.deploymentId, 1);
    unlinkSync(worker.socketPath as string);
    // The gateway's cached replica (on the stopped first worker) fails first: retried on this one.
    const answers = await Promise.all(Array.from({ length: 20 }, () => infer(stack.gatewayUrl)));
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
    expect(muxTransportOf(worker.url)).toBe("tcp");
    await worker.stop();
  });

  /** Two worker processes, one replica each; kills them in turn with requests in flight. */
  async function killUnderRequests(useSocket: boolean) {
    const model = `dense-${useSocket ? "unix" : "tcp"}`;
    const deploymentId = await stack.addDeployment(stack.orgA.id, model);
    const spawn = (name: string) => {
      const started = startGroup(process.execPath, ["--import", "tsx", join(ROOT, "apps/worker/src/main.ts")], {
        cwd: ROOT,
        env: {
          ...process.env,
          ...stack.processEnv,
          WORKER_ID: `${name}-${model}`,
          WORKER_HEARTBEAT_MS: "300",
          SERVING_UNIX_SOCKET: String(useSocket),
          SERVING_SOCKET_DIR: socketDir,
          LOG_LEVEL: "warn",
          NODE_ENV: "test",
        },
      });
      spawned.push(started);
      return started;
    };
    const doomed = spawn("doomed");
    const survivor = spawn("survivor");
    await loadReplica(deploymentId, 1);
    await loadReplica(deploymentId, 2, 2);
    const records = await registry.list(deploymentId);
    const urlOf = (worker: string) => records.find((r) => r.workerId === `${worker}-${model}`)?.url as string;
    // Open the gateway's connection to both replicas.
    await waitUntil(
      "connections to both workers",
      async () => {
        await Promise.all(Array.from({ length: 8 }, () => infer(stack.gatewayUrl, model)));
        return muxTransportOf(urlOf("doomed")) !== undefined && muxTransportOf(urlOf("survivor")) !== undefined;
      },
      10_000,
    );
    const transports = [muxTransportOf(urlOf("doomed")), muxTransportOf(urlOf("survivor"))];

    /** Stops a worker, sends requests, kills the worker; the answers, and how many came after the kill. */
    const killWith = async (victim: Started, n: number) => {
      process.kill(-(victim.child.pid as number), "SIGSTOP");
      let killedAt = Number.POSITIVE_INFINITY;
      const late: number[] = [];
      const answers = Promise.all(
        Array.from({ length: n }, async () => {
          const answer = await infer(stack.gatewayUrl, model);
          if (performance.now() > killedAt) late.push(answer.status);
          return answer;
        }),
      );
      await sleep(500);
      killedAt = performance.now();
      process.kill(-(victim.child.pid as number), "SIGKILL");
      const started = performance.now();
      const all = await answers;
      return { all, late: late.length, ms: performance.now() - started };
    };
    // The doomed worker's requests are retried on the survivor; then the survivor's fail fast.
    const retried = await killWith(doomed, 16);
    await doomed.exited;
    const failed = await killWith(survivor, 4);
    await survivor.exited;
    return { transports, retried, failed };
  }

  it("answers requests in flight on a killed replica the same over the socket as over TCP", async () => {
    const outcomes = [];
    for (const useSocket of [true, false]) {
      const { transports, retried, failed } = await killUnderRequests(useSocket);
      expect(transports).toEqual(useSocket ? ["unix", "unix"] : ["tcp", "tcp"]);
      // Some requests were waiting on the stopped worker when it was killed.
      expect(retried.late).toBeGreaterThan(0);
      expect(failed.late).toBe(4);
      // Nothing waits for the request timeout (60 s).
      expect(Math.max(retried.ms, failed.ms)).toBeLessThan(5_000);
      outcomes.push({ retried: retried.all, failed: failed.all });
    }
    const [overSocket, overTcp] = outcomes;
    expect(overSocket?.retried.every((a) => a.status === 200)).toBe(true);
    expect(overSocket?.failed).toEqual(Array.from({ length: 4 }, () => ({ status: 503, retryAfter: "1" })));
    expect(overSocket).toEqual(overTcp);
  }, 180_000);
});
