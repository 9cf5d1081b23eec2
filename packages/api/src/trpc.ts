// The procedure ladder. Each rung narrows the context: public -> authed (ctx.user) -> org (ctx.org,
// ctx.role; membership checked) -> role("admin" | "owner"). The organization always comes from the
// context (header or session), never from a procedure's input, so a query cannot name another tenant.
import type { MembershipRole } from "@kiln/db";
import { isKilnError } from "@kiln/errors";
import { initTRPC, TRPCError } from "@trpc/server";
import superjson from "superjson";
import { z } from "zod";
import { AuditTrail, recordAudit } from "./audit.ts";
import type { Context } from "./context.ts";
import { hasRole } from "./roles.ts";

const t = initTRPC.context<Context>().create({
  // Dates and BigInts (model sizes) cross the wire intact; the client must use superjson too.
  transformer: superjson,
  errorFormatter({ shape, error }) {
    const zodError = error.cause instanceof z.ZodError ? z.flattenError(error.cause) : null;
    // An unexpected failure's own message may name tables or queries: the server logs it (the
    // handler's onError), the client gets a plain sentence.
    const message =
      error.code === "INTERNAL_SERVER_ERROR"
        ? "Something went wrong on our side; try again in a moment"
        : shape.message;
    return { ...shape, message, data: { ...shape.data, zodError } };
  },
});

export const router = t.router;
export const createCallerFactory = t.createCallerFactory;
export const middleware = t.middleware;

/** Domain errors (KilnError) become the tRPC error of the same code and message. */
const mapDomainErrors = t.middleware(async ({ next }) => {
  const result = await next();
  if (!result.ok && isKilnError(result.error.cause)) {
    const cause = result.error.cause;
    throw new TRPCError({ code: cause.code, message: cause.message, cause });
  }
  return result;
});

export const publicProcedure = t.procedure.use(mapDomainErrors);

export const authedProcedure = publicProcedure
  .use(({ ctx, next }) => {
    if (!ctx.session) throw new TRPCError({ code: "UNAUTHORIZED", message: "Sign in to continue" });
    return next({ ctx: { user: ctx.session.user, sessionId: ctx.session.session.id, audit: new AuditTrail() } });
  })
  // Every successful mutation leaves an audit row: who, what, on which target, when, from where.
  .use(async ({ ctx, type, path, next }) => {
    const result = await next();
    if (type === "mutation" && result.ok && ctx.audit.orgId) {
      await recordAudit(ctx.prisma, {
        orgId: ctx.audit.orgId,
        actorType: "user",
        actorId: ctx.user.id,
        action: path,
        targetType: ctx.audit.targetType,
        targetId: ctx.audit.targetId,
        ip: ctx.ip,
        userAgent: ctx.userAgent,
        metadata: ctx.audit.metadata,
      });
    }
    return result;
  });

export type OrgContext = { id: string; name: string; slug: string };

export const orgProcedure = authedProcedure.use(async ({ ctx, next }) => {
  if (!ctx.requestedOrgId) {
    throw new TRPCError({ code: "BAD_REQUEST", message: "No organization selected: create one or switch to one" });
  }
  const membership = await ctx.prisma.membership.findUnique({
    where: { orgId_userId: { orgId: ctx.requestedOrgId, userId: ctx.user.id } },
    select: { role: true, org: { select: { id: true, name: true, slug: true } } },
  });
  // Not a member answers exactly like a missing organization: ids of other tenants reveal nothing.
  if (!membership) {
    throw new TRPCError({ code: "NOT_FOUND", message: `Organization ${ctx.requestedOrgId} not found` });
  }
  ctx.audit.orgId = membership.org.id;
  return next({ ctx: { org: membership.org as OrgContext, role: membership.role } });
});

/** An org procedure that also needs at least `minimum` (owner > admin > member). */
export function roleProcedure(minimum: Exclude<MembershipRole, "member">) {
  return orgProcedure.use(({ ctx, next }) => {
    if (!hasRole(ctx.role, minimum)) {
      throw new TRPCError({
        code: "FORBIDDEN",
        message: `This needs the ${minimum} role in ${ctx.org.name}; you are ${ctx.role === "admin" ? "an" : "a"} ${ctx.role}`,
      });
    }
    return next();
  });
}

export const adminProcedure = roleProcedure("admin");
export const ownerProcedure = roleProcedure("owner");
