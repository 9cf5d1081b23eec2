// No accepted prediction is lost when the gateway that accepted it dies: jobs live in BullMQ and
// rows in Postgres, so another gateway finishes them; a row whose job was never enqueued (a crash
// between the two writes) is found by the sweep.

import { newId } from "@kiln/db";
import { buildGateway } from "@kiln/gateway";
import { createFsStorage } from "@kiln/storage";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { logger, REDIS_URL, type ServingStack, startServingStack, WEBHOOK_SIGNING_KEY } from "./serving-fixture.ts";
import { waitUntil } from "./support.ts";

let stack: ServingStack;

beforeAll(async () => {
  stack = await startServingStack();
  await stack.startWorker();
});
afterAll(async () => {
  await stack?.close();
});

function gateway(runPredictionWorkers: boolean) {
  return buildGateway(
    { DATABASE_URL: stack.db.url, REDIS_URL, LOG_LEVEL: "silent", REDIS_KEY_PREFIX: stack.keyPrefix },
    {
      logger,
      serving: { coldStartTimeoutMs: 20_000, replicaTtlMs: 1_500 },
      storage: createFsStorage(stack.artifactDir),
      predictions: { webhookSigningKey: WEBHOOK_SIGNING_KEY, retentionMs: 3_600_000, webhookTimeoutMs: 5_000 },
      runPredictionWorkers,
    },
  );
}

describe("async predictions survive the gateway", () => {
  it("finishes predictions accepted by a gateway that died before running them", async () => {
    // The fixture's gateway processes predictions too; stop it so only the doomed one is up.
    await stack.gateway.close();
    const doomed = gateway(false);
    const url = await doomed.listen({ host: "127.0.0.1", port: 0 });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${url}/v1/predictions`, {
        method: "POST",
        headers: { authorization: `Bearer ${stack.orgA.key}`, "content-type": "application/json" },
        body: JSON.stringify({
          model: "dense",
          inputs: [{ name: "x", shape: [1, 4], datatype: "FP32", data: [1, 2, 3, i] }],
        }),
      });
      expect(res.status).toBe(202);
      ids.push(((await res.json()) as { id: string }).id);
    }
    await doomed.close();
    expect(await stack.prisma.prediction.count({ where: { id: { in: ids }, status: "queued" } })).toBe(5);

    const successor = gateway(true);
    await successor.listen({ host: "127.0.0.1", port: 0 });
    try {
      await waitUntil(
        "the successor finished every prediction",
        async () => (await stack.prisma.prediction.count({ where: { id: { in: ids }, status: "succeeded" } })) === 5,
        60_000,
      );

      // A row written without its job (the process died between the two writes) is re-enqueued by the sweep.
      const accepted = await stack.prisma.prediction.findUniqueOrThrow({ where: { id: ids[0] } });
      const orphan = newId("prd");
      await stack.prisma.prediction.create({
        data: {
          id: orphan,
          orgId: stack.orgA.id,
          deploymentId: stack.deploymentId,
          inputsRef: accepted.inputsRef,
          createdAt: new Date(Date.now() - 60_000),
          expiresAt: new Date(Date.now() + 3_600_000),
        },
      });
      await waitUntil(
        "the sweep ran the orphaned prediction",
        async () => (await stack.prisma.prediction.findUniqueOrThrow({ where: { id: orphan } })).status === "succeeded",
        60_000,
      );
    } finally {
      await successor.close();
    }
  });
});
