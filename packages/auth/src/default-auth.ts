import { loadConfig } from "@kiln/config";
import { createPrismaClient } from "@kiln/db";
import { Redis } from "ioredis";
import { type Auth, createAuth, sessionFromHeaders } from "./create-auth.ts";

// Outside production a fixed secret keeps sessions valid across restarts; config refuses to start
// production without AUTH_SECRET.
const DEVELOPMENT_SECRET = "kiln-development-secret-do-not-use-in-production";

// One instance per server process, made on first use (not at import, so `next build` needs no
// database), and kept across hot reloads in development.
const holder = globalThis as typeof globalThis & { kilnAuth?: Auth };

/** The process's better-auth instance, configured from the environment. */
export function getAuth(): Auth {
  if (holder.kilnAuth) return holder.kilnAuth;
  // Only connection settings are read here, none of the paths that depend on the working directory.
  const config = loadConfig();
  const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: 2 });
  holder.kilnAuth = createAuth({
    prisma: createPrismaClient(config.DATABASE_URL, { maxConnections: 5 }),
    redis,
    redisKeyPrefix: config.REDIS_KEY_PREFIX,
    baseURL: config.WEB_PUBLIC_URL ?? `http://${config.HOST}:${config.WEB_PORT}`,
    trustedOrigins: localOrigins(config.HOST, config.WEB_PORT),
    secret: config.AUTH_SECRET ?? DEVELOPMENT_SECRET,
    signInLimitPerMinute: config.AUTH_SIGN_IN_LIMIT_PER_MINUTE,
  });
  return holder.kilnAuth;
}

/**
 * What a Next.js route handler mounts at app/api/auth/[...all]/route.ts:
 * `export const { GET, POST } = toNextJsHandler(auth)`.
 */
export const auth = { handler: (request: Request) => getAuth().handler(request) };

/** The signed-in user and session of a request, or null. */
export function getSession(headers: Headers) {
  return sessionFromHeaders(getAuth(), headers);
}

/**
 * On a local install people open the dashboard as localhost or 127.0.0.1 interchangeably; better-auth
 * refuses requests from an origin it does not trust, so trust both spellings of a loopback address.
 */
function localOrigins(host: string, port: number): string[] {
  const loopback = ["127.0.0.1", "localhost", "0.0.0.0", "::1"];
  if (!loopback.includes(host)) return [];
  return [`http://localhost:${port}`, `http://127.0.0.1:${port}`];
}
