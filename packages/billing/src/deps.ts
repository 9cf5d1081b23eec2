import type { Config } from "@kiln/config";
import type { PrismaClient } from "@kiln/db";
import type { Redis } from "ioredis";
import type Stripe from "stripe";

/** The settings billing reads; a subset of packages/config's Config so tests can build one by hand. */
export type BillingConfig = Pick<
  Config,
  | "STRIPE_PRICE_PRO"
  | "STRIPE_PRICE_PRO_REQUESTS"
  | "STRIPE_PRICE_PRO_COMPUTE_SECONDS"
  | "STRIPE_PRICE_ENTERPRISE"
  | "STRIPE_PRICE_ENTERPRISE_REQUESTS"
  | "STRIPE_PRICE_ENTERPRISE_COMPUTE_SECONDS"
  | "STRIPE_METER_REQUESTS"
  | "STRIPE_METER_COMPUTE_SECONDS"
  | "STRIPE_WEBHOOK_SECRET"
  | "BILLING_GRACE_DAYS"
>;

/** What billing's domain functions need; one of each per process. */
export type BillingDeps = {
  prisma: PrismaClient;
  redis: Redis;
  /** Prefix of every Redis key (REDIS_KEY_PREFIX). */
  redisKeyPrefix: string;
  stripe: Stripe;
  config: BillingConfig;
  /** The clock; tests move it to cross grace periods and billing periods. */
  now?: () => Date;
};

export const nowOf = (deps: { now?: () => Date }): Date => deps.now?.() ?? new Date();

/** What a host process (the web app) hands to the API when billing is configured. */
export type BillingServices = { stripe: Stripe; config: BillingConfig };
