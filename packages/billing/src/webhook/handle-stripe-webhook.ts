import type Stripe from "stripe";
import type { BillingDeps } from "../deps.ts";
import { refreshSpendLimits } from "../spend-cap.ts";
import type { SyncOutcome } from "../subscription-sync.ts";
import type { EventHandler } from "./handler.ts";
import { EVENT_HANDLERS, isHandledEventType } from "./handlers/index.ts";

export type WebhookResponse = { status: number; body: Record<string, unknown> };

/**
 * The Stripe webhook, transport-free: the raw request body (the signature covers its exact bytes, so
 * it must not be parsed and re-serialized first) and the Stripe-Signature header in, a status and a
 * JSON body out. A bad signature is 400. An event is handled at most once: its id is recorded in the
 * same transaction as its effects, so a replay finds the record and stops, and a failure records
 * nothing and answers 500 so that Stripe retries.
 */
export async function handleStripeWebhook(
  deps: BillingDeps,
  rawBody: string | Buffer,
  signature: string | null,
): Promise<WebhookResponse> {
  const secret = deps.config.STRIPE_WEBHOOK_SECRET;
  if (!secret) return { status: 500, body: { error: "STRIPE_WEBHOOK_SECRET is not set" } };
  if (!signature) return { status: 400, body: { error: "Missing Stripe-Signature header" } };
  let event: Stripe.Event;
  try {
    event = deps.stripe.webhooks.constructEvent(rawBody, signature, secret);
  } catch (error) {
    return { status: 400, body: { error: `Invalid webhook signature: ${(error as Error).message}` } };
  }
  if (!isHandledEventType(event.type)) return { status: 200, body: { received: true, ignored: event.type } };
  const handler = EVENT_HANDLERS[event.type] as EventHandler;

  let outcome: { duplicate: true } | ({ duplicate: false } & SyncOutcome);
  try {
    outcome = await deps.prisma.$transaction(
      async (tx) => {
        const { count } = await tx.stripeEvent.createMany({
          data: [{ id: event.id, type: event.type }],
          skipDuplicates: true,
        });
        if (count === 0) return { duplicate: true as const };
        const result = await handler({
          tx,
          stripe: deps.stripe,
          config: deps.config,
          event,
          eventAt: new Date(event.created * 1000),
        });
        return { duplicate: false as const, ...result };
      },
      { timeout: 30_000 },
    );
  } catch (error) {
    // Nothing was recorded: Stripe retries the event later.
    return { status: 500, body: { error: `Handling ${event.type} ${event.id} failed: ${(error as Error).message}` } };
  }
  if (outcome.duplicate) return { status: 200, body: { received: true, duplicate: true } };
  // The plan may have changed: the gateway's spend projection must use the new price from now on.
  if (outcome.applied && outcome.orgId) await refreshSpendLimits(deps, outcome.orgId);
  return {
    status: 200,
    body: { received: true, applied: outcome.applied, ...(outcome.reason ? { reason: outcome.reason } : {}) },
  };
}
