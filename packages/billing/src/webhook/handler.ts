import type Stripe from "stripe";
import type { BillingConfig } from "../deps.ts";
import type { SyncOutcome, Tx } from "../subscription-sync.ts";

/** What a webhook event handler gets: the transaction that also records the event as processed. */
export type EventContext<E extends Stripe.Event = Stripe.Event> = {
  tx: Tx;
  stripe: Stripe;
  config: BillingConfig;
  event: E;
  /** The event's creation time: the order in which Stripe's changes happened. */
  eventAt: Date;
};

export type EventHandler<E extends Stripe.Event = Stripe.Event> = (context: EventContext<E>) => Promise<SyncOutcome>;
