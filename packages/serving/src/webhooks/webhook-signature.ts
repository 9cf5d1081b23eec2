// Webhook signatures: HMAC-SHA256 over "<timestamp>.<body>" with the organization's webhook
// secret, sent as `Kiln-Signature: t=<unix seconds>,v1=<hex>`. The timestamp inside the MAC lets
// receivers reject replays of an old delivery.
import { createHmac } from "node:crypto";

export const SIGNATURE_HEADER = "kiln-signature";

/** The secret an organization verifies its webhooks with, derived so it needs no storage. */
export function webhookSecretFor(signingKey: string, orgId: string): string {
  return `whsec_${createHmac("sha256", signingKey).update(`webhook:${orgId}`).digest("hex")}`;
}

export function signWebhook(secret: string, body: string, timestampSeconds: number): string {
  const mac = createHmac("sha256", secret).update(`${timestampSeconds}.${body}`).digest("hex");
  return `t=${timestampSeconds},v1=${mac}`;
}
