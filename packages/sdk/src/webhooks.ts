// Verifies Kiln webhook deliveries: `Kiln-Signature: t=<unix seconds>,v1=<hex>` where v1 is
// HMAC-SHA256(secret, "<t>.<raw body>"). Checks the MAC in constant time and the timestamp's age.
import { createHmac, timingSafeEqual } from "node:crypto";
import { WebhookVerificationError } from "./errors.ts";

export const SIGNATURE_HEADER = "kiln-signature";

export interface WebhookEvent {
  type: string;
  delivery_id: string;
  prediction: { id: string; status: string; outputs?: unknown[]; error?: string; [key: string]: unknown };
}

export function verifyWebhook(options: {
  /** The raw request body, exactly as received (not re-serialized JSON). */
  body: string | Uint8Array;
  signature: string | string[] | undefined | null;
  /** Your organization's webhook secret (whsec_...). */
  secret: string;
  /** Oldest acceptable delivery, in seconds (replay protection). Default 300. */
  toleranceSeconds?: number;
  nowSeconds?: number;
}): WebhookEvent {
  const header = Array.isArray(options.signature) ? options.signature[0] : options.signature;
  if (!header) throw new WebhookVerificationError("missing Kiln-Signature header");
  const parts = new Map(header.split(",").map((p) => p.trim().split("=", 2) as [string, string]));
  const timestamp = Number(parts.get("t"));
  const mac = parts.get("v1");
  if (!Number.isInteger(timestamp) || !mac) throw new WebhookVerificationError("malformed Kiln-Signature header");
  const now = options.nowSeconds ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - timestamp) > (options.toleranceSeconds ?? 300)) {
    throw new WebhookVerificationError("webhook timestamp is outside the tolerance (replayed or clock skew)");
  }
  const body = typeof options.body === "string" ? options.body : new TextDecoder().decode(options.body);
  const expected = createHmac("sha256", options.secret).update(`${timestamp}.${body}`).digest();
  const given = Buffer.from(mac, "hex");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new WebhookVerificationError("webhook signature does not match");
  }
  return JSON.parse(body) as WebhookEvent;
}
