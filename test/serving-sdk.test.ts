// End to end through @kiln/sdk: inference (JSON and binary), async predictions with Prefer: wait,
// signed webhooks with retries, and 429 retries that honour Retry-After.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { quotaKeys } from "@kiln/metering";
import { KilnApiError, KilnClient, verifyWebhook, WebhookVerificationError } from "@kiln/sdk";
import { webhookSecretFor } from "@kiln/serving";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { denseReference } from "../packages/engine/src/testing/models.ts";
import { type ServingStack, startServingStack, WEBHOOK_SIGNING_KEY } from "./serving-fixture.ts";

let stack: ServingStack;
let kiln: KilnClient;
const X = Float32Array.from([1, 2, 3, 4, -1, 0.5, 2, -3]);
const expected = Array.from(denseReference(X, 2));

beforeAll(async () => {
  stack = await startServingStack();
  await stack.startWorker();
  kiln = new KilnClient({ baseUrl: stack.gatewayUrl, apiKey: stack.orgA.key });
});
afterAll(async () => {
  await stack?.close();
});

function expectDense(data: ArrayLike<number>) {
  expect(data.length).toBe(6);
  for (let i = 0; i < 6; i++) expect(data[i]).toBeCloseTo(expected[i] as number, 5);
}

describe("@kiln/sdk against a real gateway and worker", () => {
  it("infers with JSON and with binary tensors", async () => {
    const json = await kiln.infer("dense", { inputs: { x: { datatype: "FP32", shape: [2, 4], data: Array.from(X) } } });
    expect(json.outputs.y?.shape).toEqual([2, 3]);
    expectDense(json.outputs.y?.data as Float32Array);
    const binary = await kiln.infer("dense", {
      inputs: { x: { datatype: "FP32", shape: [2, 4], data: X } },
      binary: true,
      version: "1",
    });
    expect(binary.outputs.y?.data).toBeInstanceOf(Float32Array);
    expectDense(binary.outputs.y?.data as Float32Array);
    expect(binary.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("raises typed errors", async () => {
    const error = await kiln
      .infer("dense", { inputs: { x: { datatype: "FP32", shape: [1, 3], data: [1, 2, 3] } } })
      .catch((e) => e);
    expect(error).toBeInstanceOf(KilnApiError);
    expect(error).toMatchObject({
      status: 400,
      message: "input 'x': dim 1 is 3 but the model expects 4 (shape [batch,4])",
    });
  });

  it("runs an async prediction, waiting for it with Prefer: wait", async () => {
    const prediction = await kiln.predictions.create({
      model: "dense",
      inputs: { x: { datatype: "FP32", shape: [2, 4], data: Array.from(X) } },
      wait: 20,
    });
    expect(prediction.status).toBe("succeeded");
    expect(prediction.id).toMatch(/^prd_/);
    expectDense(prediction.outputs?.[0]?.data as number[]);
    const again = await kiln.predictions.get(prediction.id);
    expect(again).toEqual(prediction);
    // Cancelling a finished prediction changes nothing.
    expect((await kiln.predictions.cancel(prediction.id)).status).toBe("succeeded");
    // Another organization cannot see it.
    const other = new KilnClient({ baseUrl: stack.gatewayUrl, apiKey: stack.orgB.key });
    expect(await other.predictions.get(prediction.id).catch((e) => e.status)).toBe(404);
  });

  it("delivers signed webhooks, retrying after a failed delivery, verifiable by the SDK", async () => {
    const deliveries: { body: string; signature: string }[] = [];
    const receiver: Server = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => {
        body += c;
      });
      req.on("end", () => {
        deliveries.push({ body, signature: String(req.headers["kiln-signature"]) });
        // The first delivery fails: Kiln must retry it.
        res.writeHead(deliveries.length === 1 ? 500 : 204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    try {
      const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
      const created = await kiln.predictions.create({
        model: "dense",
        inputs: { x: { datatype: "FP32", shape: [2, 4], data: Array.from(X) } },
        webhook: url,
      });
      expect(["queued", "running", "succeeded"]).toContain(created.status);
      for (let i = 0; i < 200 && deliveries.length < 2; i++) await new Promise((r) => setTimeout(r, 50));
      expect(deliveries.length).toBe(2);
      const secret = webhookSecretFor(WEBHOOK_SIGNING_KEY, stack.orgA.id);
      const last = deliveries[1] as { body: string; signature: string };
      const event = verifyWebhook({ body: last.body, signature: last.signature, secret });
      expect(event).toMatchObject({
        type: "prediction.succeeded",
        prediction: { id: created.id, status: "succeeded" },
      });
      expectDense((event.prediction.outputs as { data: number[] }[])[0]?.data ?? []);
      expect(() =>
        verifyWebhook({ body: last.body.replace("succeeded", "failed"), signature: last.signature, secret }),
      ).toThrow(WebhookVerificationError);
      expect(() => verifyWebhook({ body: last.body, signature: last.signature, secret: "whsec_wrong" })).toThrow(
        "webhook signature does not match",
      );
      expect(() =>
        verifyWebhook({
          body: last.body,
          signature: last.signature,
          secret,
          nowSeconds: Math.floor(Date.now() / 1000) + 3600,
        }),
      ).toThrow(/tolerance/);
    } finally {
      await new Promise((resolve) => receiver.close(resolve));
    }
  });

  it("retries a 429, waiting what Retry-After says", async () => {
    const free = await stack.addOrg("free");
    await stack.addDeployment(free.id, "dense");
    const seen: { status: number; retryAfter: string | null; at: number }[] = [];
    const recordingFetch: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      seen.push({ status: res.status, retryAfter: res.headers.get("retry-after"), at: Date.now() });
      return res;
    };
    const client = new KilnClient({ baseUrl: stack.gatewayUrl, apiKey: free.key, fetch: recordingFetch });
    const [seconds, micros] = await stack.redis.time();
    const nowMs = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    // 4.5 tokens short at 5 tokens/s: 900 ms to the next token, so the gateway answers 429 with
    // Retry-After: 1 even if this request is slow to arrive, and a second later there is a token.
    await stack.redis.hset(quotaKeys(stack.keyPrefix, free.id, new Date()).bucket, "tokens", -3.5, "at", nowMs);
    const result = await client.infer("dense", { inputs: { x: { datatype: "FP32", shape: [2, 4], data: X } } });
    expectDense(result.outputs.y?.data as Float32Array);
    expect(seen.map((s) => [s.status, s.retryAfter])).toEqual([
      [429, "1"],
      [200, null],
    ]);
    // The client waited what the server asked before trying again.
    expect((seen[1]?.at ?? 0) - (seen[0]?.at ?? 0)).toBeGreaterThanOrEqual(1_000);
    const noRetry = new KilnClient({ baseUrl: stack.gatewayUrl, apiKey: free.key, maxRetries: 0 });
    await stack.redis.hset(quotaKeys(stack.keyPrefix, free.id, new Date()).bucket, "tokens", -100, "at", nowMs);
    const error = await noRetry
      .infer("dense", { inputs: { x: { datatype: "FP32", shape: [2, 4], data: X } } })
      .catch((e) => e);
    expect(error).toMatchObject({ status: 429 });
    expect(error.retryAfterSeconds).toBeGreaterThan(0);
  });
});
