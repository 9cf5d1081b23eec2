import { MembershipRole, newId, type PrismaClient } from "@kiln/db";
import { KilnError, notFound } from "@kiln/errors";
import { z } from "zod";
import { hasRole } from "../roles.ts";
import { adminProcedure, authedProcedure, orgProcedure, router } from "../trpc.ts";

const INVITATION_LIFETIME_MS = 7 * 24 * 3600 * 1000;

export const ZCreateOrg = z.object({
  name: z.string().trim().min(2, "Name must be at least 2 characters").max(80, "Name must be at most 80 characters"),
});
export const ZSwitchOrg = z.object({ orgId: z.string().min(1) });
export const ZInvite = z.object({
  email: z.email("Enter a valid email address").transform((e) => e.toLowerCase()),
  role: z.enum(MembershipRole).default("member"),
});
export const ZInvitationId = z.object({ invitationId: z.string().min(1) });
export const ZChangeRole = z.object({ userId: z.string().min(1), role: z.enum(MembershipRole) });
export const ZRemoveMember = z.object({ userId: z.string().min(1) });

function slugify(name: string): string {
  const base = name
    .toLowerCase()
    .normalize("NFKD")
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 40);
  return base || "org";
}

async function uniqueSlug(prisma: PrismaClient, name: string): Promise<string> {
  const base = slugify(name);
  if (!(await prisma.organization.findUnique({ where: { slug: base }, select: { id: true } }))) return base;
  return `${base}-${newId("org").slice(-6).toLowerCase()}`;
}

/** The organization with its creator as owner; two creations racing for a slug retry with a suffix. */
async function createOrganization(prisma: PrismaClient, name: string, ownerId: string) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await prisma.organization.create({
        data: {
          id: newId("org"),
          name,
          slug: await uniqueSlug(prisma, name),
          memberships: { create: { id: newId("mem"), userId: ownerId, role: "owner" } },
        },
        select: { id: true, name: true, slug: true, createdAt: true },
      });
    } catch (error) {
      if ((error as { code?: string }).code !== "P2002" || attempt >= 3) throw error;
    }
  }
}

async function setActiveOrg(prisma: PrismaClient, sessionId: string, orgId: string) {
  await prisma.session.updateMany({ where: { id: sessionId }, data: { activeOrganizationId: orgId } });
}

/** Owners are never left without one: the last owner can be neither demoted nor removed. */
async function assertNotLastOwner(prisma: PrismaClient, orgId: string, userId: string) {
  const owners = await prisma.membership.findMany({ where: { orgId, role: "owner" }, select: { userId: true } });
  if (owners.length === 1 && owners[0]?.userId === userId) {
    throw new KilnError("CONFLICT", "An organization needs an owner: make someone else owner first");
  }
}

export const orgsRouter = router({
  /** Creates an organization with the caller as owner and makes it the active one. */
  create: authedProcedure.input(ZCreateOrg).mutation(async ({ ctx, input }) => {
    const org = await createOrganization(ctx.prisma, input.name, ctx.user.id);
    await setActiveOrg(ctx.prisma, ctx.sessionId, org.id);
    ctx.audit.orgId = org.id;
    ctx.audit.target("organization", org.id, { name: org.name });
    return org;
  }),

  /** The caller's organizations with their role in each, oldest first. */
  listMine: authedProcedure.query(async ({ ctx }) => {
    const memberships = await ctx.prisma.membership.findMany({
      where: { userId: ctx.user.id },
      orderBy: { createdAt: "asc" },
      select: { role: true, org: { select: { id: true, name: true, slug: true, createdAt: true } } },
    });
    return memberships.map((m) => ({ ...m.org, role: m.role, isActive: m.org.id === ctx.requestedOrgId }));
  }),

  /** Makes one of the caller's organizations the session's active one. */
  switch: authedProcedure.input(ZSwitchOrg).mutation(async ({ ctx, input }) => {
    const membership = await ctx.prisma.membership.findUnique({
      where: { orgId_userId: { orgId: input.orgId, userId: ctx.user.id } },
      select: { role: true, org: { select: { id: true, name: true, slug: true } } },
    });
    if (!membership) throw notFound("Organization", input.orgId);
    await setActiveOrg(ctx.prisma, ctx.sessionId, membership.org.id);
    ctx.audit.orgId = membership.org.id;
    ctx.audit.target("organization", membership.org.id);
    return { ...membership.org, role: membership.role };
  }),

  /**
   * Invites an email address; there is no mail server, so the link is returned for the admin to share.
   * Only owners may invite owners.
   */
  invite: adminProcedure.input(ZInvite).mutation(async ({ ctx, input }) => {
    if (input.role === "owner" && !hasRole(ctx.role, "owner")) {
      throw new KilnError("FORBIDDEN", "Only an owner can invite another owner");
    }
    const alreadyMember = await ctx.prisma.membership.findFirst({
      where: { orgId: ctx.org.id, user: { email: input.email } },
      select: { id: true },
    });
    if (alreadyMember) throw new KilnError("CONFLICT", `${input.email} is already a member of ${ctx.org.name}`);
    const invitation = await ctx.prisma.invitation.create({
      data: {
        id: newId("inv"),
        orgId: ctx.org.id,
        email: input.email,
        role: input.role,
        inviterId: ctx.user.id,
        expiresAt: new Date(Date.now() + INVITATION_LIFETIME_MS),
      },
      select: { id: true, email: true, role: true, status: true, expiresAt: true, createdAt: true },
    });
    ctx.audit.target("invitation", invitation.id, { email: input.email, role: input.role });
    return { invitation, inviteUrl: `${ctx.publicUrl.replace(/\/$/, "")}/invite/${invitation.id}` };
  }),

  /** Pending invitations of the active organization. */
  invitations: adminProcedure.query(({ ctx }) =>
    ctx.prisma.invitation.findMany({
      where: { orgId: ctx.org.id, status: "pending" },
      orderBy: { createdAt: "desc" },
      select: { id: true, email: true, role: true, status: true, expiresAt: true, createdAt: true },
    }),
  ),

  cancelInvitation: adminProcedure.input(ZInvitationId).mutation(async ({ ctx, input }) => {
    const { count } = await ctx.prisma.invitation.updateMany({
      where: { id: input.invitationId, orgId: ctx.org.id, status: "pending" },
      data: { status: "canceled" },
    });
    if (count === 0) throw notFound("Invitation", input.invitationId);
    ctx.audit.target("invitation", input.invitationId);
    return { id: input.invitationId };
  }),

  /** What the invite page shows before accepting; only to the invited address. */
  invitation: authedProcedure.input(ZInvitationId).query(async ({ ctx, input }) => {
    const invitation = await ctx.prisma.invitation.findUnique({
      where: { id: input.invitationId },
      select: { id: true, email: true, role: true, status: true, expiresAt: true, org: { select: { name: true } } },
    });
    if (!invitation || invitation.email !== ctx.user.email.toLowerCase())
      throw notFound("Invitation", input.invitationId);
    return { ...invitation, orgName: invitation.org.name };
  }),

  /** Joins the organization of an invitation addressed to the caller's email, and switches to it. */
  accept: authedProcedure.input(ZInvitationId).mutation(async ({ ctx, input }) => {
    const invitation = await ctx.prisma.invitation.findUnique({ where: { id: input.invitationId } });
    // An invitation for someone else is as invisible as one that does not exist.
    if (!invitation || invitation.email !== ctx.user.email.toLowerCase())
      throw notFound("Invitation", input.invitationId);
    if (invitation.status !== "pending") {
      throw new KilnError("CONFLICT", `This invitation was already ${invitation.status}`);
    }
    if (invitation.expiresAt.getTime() <= Date.now()) {
      throw new KilnError("CONFLICT", "This invitation has expired: ask for a new one");
    }
    await ctx.prisma.$transaction([
      ctx.prisma.membership.upsert({
        where: { orgId_userId: { orgId: invitation.orgId, userId: ctx.user.id } },
        create: { id: newId("mem"), orgId: invitation.orgId, userId: ctx.user.id, role: invitation.role },
        update: {},
      }),
      ctx.prisma.invitation.update({ where: { id: invitation.id }, data: { status: "accepted" } }),
    ]);
    await setActiveOrg(ctx.prisma, ctx.sessionId, invitation.orgId);
    ctx.audit.orgId = invitation.orgId;
    ctx.audit.target("invitation", invitation.id, { role: invitation.role });
    return { orgId: invitation.orgId, role: invitation.role };
  }),

  members: orgProcedure.query(async ({ ctx }) => {
    const members = await ctx.prisma.membership.findMany({
      where: { orgId: ctx.org.id },
      orderBy: { createdAt: "asc" },
      select: { role: true, createdAt: true, user: { select: { id: true, name: true, email: true } } },
    });
    return members.map((m) => ({ ...m.user, userId: m.user.id, role: m.role, joinedAt: m.createdAt }));
  }),

  /** Admins manage members and admins; only owners grant or take away ownership. */
  changeRole: adminProcedure.input(ZChangeRole).mutation(async ({ ctx, input }) => {
    const membership = await ctx.prisma.membership.findUnique({
      where: { orgId_userId: { orgId: ctx.org.id, userId: input.userId } },
    });
    if (!membership) throw notFound("Member", input.userId);
    if ((membership.role === "owner" || input.role === "owner") && !hasRole(ctx.role, "owner")) {
      throw new KilnError("FORBIDDEN", "Only an owner can grant or take away the owner role");
    }
    if (membership.role === "owner" && input.role !== "owner") {
      await assertNotLastOwner(ctx.prisma, ctx.org.id, input.userId);
    }
    await ctx.prisma.membership.update({ where: { id: membership.id }, data: { role: input.role } });
    ctx.audit.target("user", input.userId, { from: membership.role, to: input.role });
    return { userId: input.userId, role: input.role };
  }),

  removeMember: adminProcedure.input(ZRemoveMember).mutation(async ({ ctx, input }) => {
    const membership = await ctx.prisma.membership.findUnique({
      where: { orgId_userId: { orgId: ctx.org.id, userId: input.userId } },
    });
    if (!membership) throw notFound("Member", input.userId);
    if (membership.role === "owner") {
      if (!hasRole(ctx.role, "owner")) throw new KilnError("FORBIDDEN", "Only an owner can remove an owner");
      await assertNotLastOwner(ctx.prisma, ctx.org.id, input.userId);
    }
    await ctx.prisma.membership.delete({ where: { id: membership.id } });
    // Sessions that had this organization active fall back to none rather than keep acting on it.
    await ctx.prisma.session.updateMany({
      where: { userId: input.userId, activeOrganizationId: ctx.org.id },
      data: { activeOrganizationId: null },
    });
    ctx.audit.target("user", input.userId, { role: membership.role });
    return { userId: input.userId };
  }),
});
