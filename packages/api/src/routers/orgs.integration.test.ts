import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHarness, type Harness } from "../testing/harness.ts";

describe("orgs, members, invitations and the audit log", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it("refuses everything but public procedures without a session", async () => {
    await expect(h.callerFor(null).me.get()).rejects.toMatchObject({ code: "UNAUTHORIZED" });
    await expect(h.callerFor(null).orgs.create({ name: "Nope" })).rejects.toMatchObject({ code: "UNAUTHORIZED" });
  });

  it("creates an organization owned by its creator and makes it active", async () => {
    const ada = await h.createUser("Ada");
    const org = await h.callerFor(ada).orgs.create({ name: "Ada's Lab" });
    expect(org.slug).toMatch(/^ada-s-lab/);
    const session = await h.prisma.session.findUniqueOrThrow({ where: { id: ada.session.id } });
    expect(session.activeOrganizationId).toBe(org.id);
    const mine = await h.callerFor(ada, org.id).orgs.listMine();
    expect(mine).toEqual([expect.objectContaining({ id: org.id, role: "owner", isActive: true })]);
    expect(await h.callerFor(ada, org.id).me.get()).toMatchObject({ activeOrg: { id: org.id, role: "owner" } });
    await expect(h.callerFor(ada).orgs.create({ name: "x" })).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: expect.stringContaining("Name must be at least 2 characters"),
    });
  });

  it("needs an organization for org procedures, and answers NOT_FOUND for one the caller is not in", async () => {
    const a = await h.createOrg("Alpha");
    const b = await h.createOrg("Beta");
    await expect(h.callerFor(a.owner).orgs.members()).rejects.toMatchObject({ code: "BAD_REQUEST" });
    await expect(h.callerFor(a.owner, b.org.id).orgs.members()).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(h.callerFor(a.owner).orgs.switch({ orgId: b.org.id })).rejects.toMatchObject({ code: "NOT_FOUND" });
    expect(await h.callerFor(a.owner).orgs.switch({ orgId: a.org.id })).toMatchObject({ id: a.org.id, role: "owner" });
  });

  it("invites by link; only the invited address can accept, once", async () => {
    const { org, admin, as } = await h.createOrg("Gamma");
    const grace = await h.createUser("Grace");
    const { invitation, inviteUrl } = await as(admin).orgs.invite({
      email: grace.user.email.toUpperCase(),
      role: "admin",
    });
    expect(inviteUrl).toBe(`http://kiln.test/invite/${invitation.id}`);
    await expect(as(admin).orgs.invite({ email: "x@example.com", role: "owner" })).rejects.toMatchObject({
      code: "FORBIDDEN",
    });

    const stranger = await h.createUser("Mallory");
    await expect(h.callerFor(stranger).orgs.accept({ invitationId: invitation.id })).rejects.toMatchObject({
      code: "NOT_FOUND",
    });
    expect(await h.callerFor(grace).orgs.invitation({ invitationId: invitation.id })).toMatchObject({
      orgName: "Gamma",
    });
    expect(await h.callerFor(grace).orgs.accept({ invitationId: invitation.id })).toEqual({
      orgId: org.id,
      role: "admin",
    });
    await expect(h.callerFor(grace).orgs.accept({ invitationId: invitation.id })).rejects.toMatchObject({
      code: "CONFLICT",
    });
    const members = await as(grace).orgs.members();
    expect(members.map((m) => m.role).sort()).toEqual(["admin", "admin", "member", "owner"]);
    await expect(as(admin).orgs.invite({ email: grace.user.email, role: "member" })).rejects.toMatchObject({
      code: "CONFLICT",
    });
  });

  it("enforces the role ladder on member management and keeps an owner", async () => {
    const { owner, admin, member, as } = await h.createOrg("Delta");
    await expect(as(member).orgs.invite({ email: "m@example.com", role: "member" })).rejects.toMatchObject({
      code: "FORBIDDEN",
      message: "This needs the admin role in Delta; you are a member",
    });
    await expect(as(member).orgs.changeRole({ userId: admin.user.id, role: "member" })).rejects.toMatchObject({
      code: "FORBIDDEN",
    });
    await expect(as(admin).orgs.changeRole({ userId: owner.user.id, role: "member" })).rejects.toMatchObject({
      code: "FORBIDDEN",
    });
    await expect(as(admin).orgs.changeRole({ userId: member.user.id, role: "owner" })).rejects.toMatchObject({
      code: "FORBIDDEN",
    });
    await expect(as(owner).orgs.changeRole({ userId: owner.user.id, role: "admin" })).rejects.toMatchObject({
      code: "CONFLICT",
    });
    await expect(as(owner).orgs.removeMember({ userId: owner.user.id })).rejects.toMatchObject({ code: "CONFLICT" });
    expect(await as(admin).orgs.changeRole({ userId: member.user.id, role: "admin" })).toEqual({
      userId: member.user.id,
      role: "admin",
    });
    expect(await as(owner).orgs.removeMember({ userId: member.user.id })).toEqual({ userId: member.user.id });
    await expect(as(member).orgs.members()).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("answers FORBIDDEN to a member for every admin procedure", async () => {
    const { owner, admin, member, as } = await h.createOrg("Ladder");
    const { invitation } = await as(admin).orgs.invite({ email: "ladder@example.com", role: "member" });
    const { apiKey } = await as(admin).apiKeys.create({ name: "k", scopes: ["inference"] });
    const asMember = as(member);
    const adminOnly: [string, () => Promise<unknown>][] = [
      ["orgs.invite", () => asMember.orgs.invite({ email: "x@example.com", role: "member" })],
      ["orgs.invitations", () => asMember.orgs.invitations()],
      ["orgs.cancelInvitation", () => asMember.orgs.cancelInvitation({ invitationId: invitation.id })],
      ["orgs.changeRole", () => asMember.orgs.changeRole({ userId: owner.user.id, role: "member" })],
      ["orgs.removeMember", () => asMember.orgs.removeMember({ userId: admin.user.id })],
      ["auditLog.list", () => asMember.auditLog.list({})],
      ["apiKeys.create", () => asMember.apiKeys.create({ name: "x", scopes: ["inference"] })],
      ["apiKeys.revoke", () => asMember.apiKeys.revoke({ keyId: apiKey.id })],
      ["models.delete", () => asMember.models.delete({ id: "mdl_01ABCDEFGHJKMNPQRSTVWXYZ012" })],
    ];
    for (const [name, call] of adminOnly) {
      await expect(call(), name).rejects.toMatchObject({ code: "FORBIDDEN" });
    }
    // Nothing changed.
    expect((await as(admin).orgs.invitations()).map((i) => i.id)).toEqual([invitation.id]);
    expect((await as(admin).apiKeys.list())[0]?.revokedAt).toBeNull();
  });

  it("answers NOT_FOUND for another organization's members and invitations", async () => {
    const a = await h.createOrg("Epsilon");
    const b = await h.createOrg("Zeta");
    const { invitation } = await b.as(b.admin).orgs.invite({ email: "z@example.com", role: "member" });
    await expect(a.as(a.owner).orgs.changeRole({ userId: b.member.user.id, role: "admin" })).rejects.toMatchObject({
      code: "NOT_FOUND",
    });
    await expect(a.as(a.owner).orgs.removeMember({ userId: b.member.user.id })).rejects.toMatchObject({
      code: "NOT_FOUND",
    });
    await expect(a.as(a.owner).orgs.cancelInvitation({ invitationId: invitation.id })).rejects.toMatchObject({
      code: "NOT_FOUND",
    });
    expect(await b.as(b.owner).orgs.cancelInvitation({ invitationId: invitation.id })).toEqual({ id: invitation.id });
  });

  it("records every mutation in the audit log, which only admins browse, a page at a time", async () => {
    const { org, owner, admin, member, as } = await h.createOrg("Eta");
    await as(admin).orgs.invite({ email: "new@example.com", role: "member" });
    await as(admin).orgs.changeRole({ userId: member.user.id, role: "admin" });
    await as(admin).orgs.changeRole({ userId: member.user.id, role: "member" });
    await expect(as(member).auditLog.list({})).rejects.toMatchObject({ code: "FORBIDDEN" });

    const first = await as(owner).auditLog.list({ limit: 2 });
    expect(first.items.map((i) => i.action)).toEqual(["orgs.changeRole", "orgs.changeRole"]);
    expect(first.items[0]).toMatchObject({
      actorType: "user",
      actorUser: { id: admin.user.id },
      targetType: "user",
      targetId: member.user.id,
      ip: "203.0.113.7",
      metadata: { from: "admin", to: "member" },
    });
    expect(first.nextCursor).not.toBeNull();
    const rest = await as(owner).auditLog.list({ limit: 10, cursor: first.nextCursor });
    expect(rest.items.map((i) => i.action)).toEqual(["orgs.invite", "orgs.create"]);
    expect(rest.nextCursor).toBeNull();
    // Another organization's log is not reachable from here.
    const other = await h.createOrg("Theta");
    expect((await other.as(other.owner).auditLog.list({})).items.every((i) => i.targetId !== member.user.id)).toBe(
      true,
    );
    expect(org.id).not.toBe(other.org.id);
  });
});
