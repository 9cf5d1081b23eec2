import type { PrismaClient } from "@kiln/db";
import type { Redis } from "ioredis";
import type { ApiServices } from "./services.ts";

/** The signed-in user as the session store reports it (see @kiln/auth getSession). */
export type SessionInfo = {
  user: { id: string; email: string; name: string };
  session: { id: string; activeOrganizationId: string | null };
};

/** What the API needs from its host process; the web app builds it once at start-up. */
export type ApiDeps = {
  prisma: PrismaClient;
  redis: Redis;
  redisKeyPrefix: string;
  /** Resolves the request's cookies to a session (better-auth in production). */
  getSession: (headers: Headers) => Promise<SessionInfo | null>;
} & ApiServices;

/** The header by which a client picks one of its organizations per request (tabs, scripts). */
export const ORG_HEADER = "x-kiln-org-id";

export type Context = ApiDeps & {
  headers: Headers;
  session: SessionInfo | null;
  /** The organization this request acts on: the header, else the session's active one. Unchecked here. */
  requestedOrgId: string | null;
  ip: string | null;
  userAgent: string | null;
};

/** The client address: the first hop of X-Forwarded-For (set by our proxy), else X-Real-IP. */
export function clientIp(headers: Headers): string | null {
  const forwarded = headers.get("x-forwarded-for")?.split(",")[0]?.trim();
  return forwarded || headers.get("x-real-ip") || null;
}

export async function createContext(deps: ApiDeps, request: { headers: Headers }): Promise<Context> {
  const { headers } = request;
  const session = await deps.getSession(headers);
  return {
    ...deps,
    headers,
    session,
    requestedOrgId: headers.get(ORG_HEADER) || session?.session.activeOrganizationId || null,
    ip: clientIp(headers),
    userAgent: headers.get("user-agent"),
  };
}
