import { resolve } from "node:path";
import type { ApiDeps } from "@kiln/api";
import { getSession } from "@kiln/auth";
import { createStripeClient, isBillingConfigured } from "@kiln/billing";
import { createBuildQueues } from "@kiln/builds";
import { type Config, loadConfig } from "@kiln/config";
import { createPrismaClient } from "@kiln/db";
import { createStorage } from "@kiln/storage";
import { Redis } from "ioredis";

// `next start` runs in apps/web; relative paths in the environment (KILN_DATA_DIR=.kiln) mean the
// repository root, as they do for the gateway and the worker.
const REPO_ROOT = resolve(process.cwd(), "../..");

type Services = { config: Config; deps: ApiDeps };

// One set of connections per server process, created on first use and kept across requests (and
// across hot reloads in development, hence globalThis).
const holder = globalThis as typeof globalThis & { kilnWebServices?: Services };

/** The config and the API's dependencies, validated and connected once per process. */
export function services(): Services {
  if (holder.kilnWebServices) return holder.kilnWebServices;
  const config = loadConfig(process.env, REPO_ROOT);
  const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: 2 });
  const deps: ApiDeps = {
    prisma: createPrismaClient(config.DATABASE_URL),
    redis,
    redisKeyPrefix: config.REDIS_KEY_PREFIX,
    getSession,
    storage: createStorage(config),
    buildQueues: createBuildQueues({ redisUrl: config.REDIS_URL, redisKeyPrefix: config.REDIS_KEY_PREFIX }),
    publicUrl: config.WEB_PUBLIC_URL ?? `http://${config.HOST}:${config.WEB_PORT}`,
    // Without a Stripe key the dashboard still shows plans and usage; paid plans are unavailable.
    ...(isBillingConfigured(config) ? { billing: { stripe: createStripeClient(config), config } } : {}),
  };
  holder.kilnWebServices = { config, deps };
  return holder.kilnWebServices;
}
