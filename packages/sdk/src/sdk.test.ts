import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { WebhookVerificationError } from "./errors.ts";
import { fromBytes, fromJson, toBytes } from "./tensors.ts";
import { verifyWebhook } from "./webhooks.ts";

describe("tensors", () => {
  it("round-trips typed and plain data through the binary layout", () => {
    expect(Array.from(fromBytes("FP32", toBytes({ datatype: "FP32", shape: [3], data: [1.5, -2, 3] })))).toEqual([
      1.5, -2, 3,
    ]);
    expect(Array.from(fromBytes("INT64", toBytes({ datatype: "INT64", shape: [2], data: [1, 2n ** 40n] })))).toEqual([
      1n,
      2n ** 40n,
    ]);
    expect(fromBytes("BYTES", toBytes({ datatype: "BYTES", shape: [2], data: ["a", "héllo"] }))).toEqual([
      "a",
      "héllo",
    ]);
    expect(
      Array.from(
        fromJson("FP32", [
          [1, 2],
          [3, 4],
        ]),
      ),
    ).toEqual([1, 2, 3, 4]);
  });
});

describe("verifyWebhook", () => {
  const secret = "whsec_test";
  const body = JSON.stringify({
    type: "prediction.succeeded",
    delivery_id: "d",
    prediction: { id: "prd_1", status: "succeeded" },
  });
  const now = 1_800_000_000;
  const sign = (t: number, b = body) => `t=${t},v1=${createHmac("sha256", secret).update(`${t}.${b}`).digest("hex")}`;

  it("accepts a fresh, correctly signed delivery", () => {
    expect(verifyWebhook({ body, signature: sign(now), secret, nowSeconds: now + 10 }).prediction.id).toBe("prd_1");
  });

  it("refuses tampered bodies, wrong secrets, stale timestamps and missing headers", () => {
    expect(() =>
      verifyWebhook({ body: body.replace("prd_1", "prd_2"), signature: sign(now), secret, nowSeconds: now }),
    ).toThrow("webhook signature does not match");
    expect(() => verifyWebhook({ body, signature: sign(now), secret: "whsec_other", nowSeconds: now })).toThrow(
      WebhookVerificationError,
    );
    expect(() => verifyWebhook({ body, signature: sign(now - 301), secret, nowSeconds: now })).toThrow(/tolerance/);
    expect(() => verifyWebhook({ body, signature: undefined, secret })).toThrow("missing Kiln-Signature header");
    expect(() => verifyWebhook({ body, signature: "v1=abc", secret })).toThrow("malformed Kiln-Signature header");
  });
});
