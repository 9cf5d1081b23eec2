import type { MembershipRole } from "@kiln/db";
import { KilnError } from "@kiln/errors";
import type { Context, SessionInfo } from "./context.ts";
import { hasRole } from "./roles.ts";

export type OrgAccess = {
  user: SessionInfo["user"];
  org: { id: string; name: string; slug: string };
  role: MembershipRole;
};

/**
 * The signed-in user's membership in the request's organization, for HTTP routes outside tRPC
 * (uploads, downloads). Same rules as the org procedure: no session is 401, no organization 400,
 * not a member 404 (exactly like a missing organization), too low a role 403.
 */
export async function requireOrgAccess(ctx: Context, minimum: MembershipRole = "member"): Promise<OrgAccess> {
  if (!ctx.session) throw new KilnError("UNAUTHORIZED", "Sign in to continue");
  if (!ctx.requestedOrgId) throw new KilnError("BAD_REQUEST", "No organization selected: create one or switch to one");
  const membership = await ctx.prisma.membership.findUnique({
    where: { orgId_userId: { orgId: ctx.requestedOrgId, userId: ctx.session.user.id } },
    select: { role: true, org: { select: { id: true, name: true, slug: true } } },
  });
  if (!membership) throw new KilnError("NOT_FOUND", `Organization ${ctx.requestedOrgId} not found`);
  if (!hasRole(membership.role, minimum)) {
    throw new KilnError("FORBIDDEN", `This needs the ${minimum} role in ${membership.org.name}`);
  }
  return { user: ctx.session.user, org: membership.org, role: membership.role };
}

/** A KilnError (or anything else) as the JSON error response HTTP routes answer with. */
export function errorResponse(error: unknown): Response {
  if (error instanceof KilnError) {
    return Response.json({ error: { code: error.code, message: error.message } }, { status: error.httpStatus });
  }
  return Response.json(
    { error: { code: "INTERNAL_SERVER_ERROR", message: "Something went wrong on our side; try again in a moment" } },
    { status: 500 },
  );
}
