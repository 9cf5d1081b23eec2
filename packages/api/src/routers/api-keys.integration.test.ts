import { createApiKeyVerifier } from "@kiln/api-keys";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHarness, type Harness } from "../testing/harness.ts";

describe("apiKeys router", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it("creates a key shown once, lists it without the secret, and revokes it for the verifier", async () => {
    const { admin, member, as } = await h.createOrg("Keys");
    const { key, apiKey } = await as(admin).apiKeys.create({ name: "prod", scopes: ["inference"] });
    const listed = await as(member).apiKeys.list();
    expect(listed).toEqual([expect.objectContaining({ id: apiKey.id, prefix: apiKey.prefix })]);
    expect(JSON.stringify(listed)).not.toContain(key);

    const verifier = await createApiKeyVerifier({ ...h.deps });
    try {
      expect(await verifier.verify(key)).toMatchObject({ ok: true });
      await expect(as(member).apiKeys.revoke({ keyId: apiKey.id })).rejects.toMatchObject({ code: "FORBIDDEN" });
      await as(admin).apiKeys.revoke({ keyId: apiKey.id });
      let result = await verifier.verify(key);
      while (result.ok) result = await verifier.verify(key);
      expect(result).toMatchObject({ ok: false, reason: "revoked" });
    } finally {
      await verifier.close();
    }
    const log = await as(admin).auditLog.list({});
    expect(log.items.slice(0, 2).map((i) => [i.action, i.targetId])).toEqual([
      ["apiKeys.revoke", apiKey.id],
      ["apiKeys.create", apiKey.id],
    ]);
  });

  it("needs admin to create, and answers NOT_FOUND for another org's key or deployment", async () => {
    const a = await h.createOrg("KeysA");
    const b = await h.createOrg("KeysB");
    await expect(a.as(a.member).apiKeys.create({ name: "x", scopes: ["inference"] })).rejects.toMatchObject({
      code: "FORBIDDEN",
    });
    const { apiKey } = await b.as(b.admin).apiKeys.create({ name: "b", scopes: ["admin"] });
    await expect(a.as(a.admin).apiKeys.revoke({ keyId: apiKey.id })).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(
      a
        .as(a.admin)
        .apiKeys.create({ name: "x", scopes: ["inference"], deploymentId: "dep_01ABCDEFGHJKMNPQRSTVWXYZ012" }),
    ).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(a.as(a.admin).apiKeys.create({ name: "x", scopes: [] })).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });
  });
});
