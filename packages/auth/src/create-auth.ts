import { ID_PREFIXES, newId, type PrismaClient } from "@kiln/db";
import { betterAuth } from "better-auth";
import { prismaAdapter } from "better-auth/adapters/prisma";
import { APIError, createAuthMiddleware } from "better-auth/api";
import type { Redis } from "ioredis";
import { hashPassword, verifyPassword } from "./password-hash.ts";
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, passwordProblems } from "./password-policy.ts";
import { redisRateLimitStorage } from "./redis-rate-limit.ts";

export type CreateAuthOptions = {
  prisma: PrismaClient;
  redis: Redis;
  redisKeyPrefix: string;
  /** The dashboard's public address; cookies are Secure when it is https. */
  baseURL: string;
  secret: string;
  /** Sign-in attempts per client address per minute. */
  signInLimitPerMinute?: number;
  /** Other origins the dashboard is reached at (e.g. localhost beside 127.0.0.1); baseURL's is always trusted. */
  trustedOrigins?: string[];
};

const MODEL_PREFIXES = {
  user: ID_PREFIXES.user,
  session: ID_PREFIXES.session,
  account: ID_PREFIXES.account,
  verification: ID_PREFIXES.verification,
} as const;

/**
 * Email + password accounts on better-auth: users, sessions and accounts in Postgres through its
 * Prisma adapter, passwords hashed with argon2id, sessions in httpOnly SameSite=Lax cookies, and
 * sign-in attempts rate-limited per client address in Redis (shared by every web process).
 */
export function createAuth(options: CreateAuthOptions) {
  return betterAuth({
    appName: "Kiln",
    baseURL: options.baseURL,
    basePath: "/api/auth",
    secret: options.secret,
    trustedOrigins: options.trustedOrigins ?? [],
    database: prismaAdapter(options.prisma, { provider: "postgresql" }),
    emailAndPassword: {
      enabled: true,
      autoSignIn: true,
      minPasswordLength: MIN_PASSWORD_LENGTH,
      maxPasswordLength: MAX_PASSWORD_LENGTH,
      password: { hash: hashPassword, verify: verifyPassword },
    },
    session: {
      expiresIn: 30 * 24 * 3600,
      updateAge: 24 * 3600,
      additionalFields: {
        // The organization the dashboard acts on; written by the API's orgs.switch, never by the client.
        activeOrganizationId: { type: "string", required: false, input: false },
      },
    },
    rateLimit: {
      enabled: true,
      window: 60,
      max: 100,
      customRules: {
        "/sign-in/email": { window: 60, max: options.signInLimitPerMinute ?? 10 },
        "/sign-up/email": { window: 60, max: 10 },
        // The dashboard reads the session often; reading it is cheap and reveals nothing.
        "/get-session": false,
      },
      customStorage: redisRateLimitStorage(options.redis, options.redisKeyPrefix),
    },
    advanced: {
      // Kiln's prefixed ids (usr_…, ses_…), like every other table.
      database: {
        generateId: ({ model }) =>
          newId(MODEL_PREFIXES[model as keyof typeof MODEL_PREFIXES] ?? ID_PREFIXES.verification),
      },
      defaultCookieAttributes: { httpOnly: true, sameSite: "lax" },
      // better-auth turns its origin (CSRF) check off when NODE_ENV=test; keep it on so tests see what users get.
      disableOriginCheck: false,
    },
    hooks: {
      before: createAuthMiddleware(async (ctx) => {
        if (ctx.path !== "/sign-up/email") return;
        const problems = passwordProblems(String(ctx.body?.password ?? ""));
        if (problems.length > 0) {
          throw new APIError("BAD_REQUEST", {
            message: `Choose a stronger password: ${problems.join(" ")}`,
            code: "WEAK_PASSWORD",
          });
        }
      }),
    },
  });
}

export type Auth = ReturnType<typeof createAuth>;

/** The session of a request (from its cookie), shaped as the API's context wants it. */
export async function sessionFromHeaders(auth: Auth, headers: Headers) {
  const result = await auth.api.getSession({ headers });
  if (!result) return null;
  const session = result.session as typeof result.session & { activeOrganizationId?: string | null };
  return {
    user: { id: result.user.id, email: result.user.email, name: result.user.name },
    session: { id: session.id, activeOrganizationId: session.activeOrganizationId ?? null },
  };
}
