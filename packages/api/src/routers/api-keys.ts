import { API_KEY_SCOPES, createApiKey, listApiKeys, revokeApiKey } from "@kiln/api-keys";
import { z } from "zod";
import { adminProcedure, orgProcedure, router } from "../trpc.ts";

export const ZCreateApiKey = z.object({
  name: z.string().trim().min(1, "Give the key a name").max(100, "Name must be at most 100 characters"),
  scopes: z.array(z.enum(API_KEY_SCOPES)).min(1, "Choose at least one scope"),
  deploymentId: z.string().min(1).nullish(),
  expiresAt: z.date().nullish(),
});
export const ZRevokeApiKey = z.object({ keyId: z.string().min(1) });

export const apiKeysRouter = router({
  /** Returns the whole key exactly once; only its prefix and hash are kept. */
  create: adminProcedure.input(ZCreateApiKey).mutation(async ({ ctx, input }) => {
    const created = await createApiKey(ctx, { ...input, orgId: ctx.org.id, createdById: ctx.user.id });
    ctx.audit.target("apiKey", created.apiKey.id, {
      name: created.apiKey.name,
      prefix: created.apiKey.prefix,
      scopes: created.apiKey.scopes,
    });
    return created;
  }),
  list: orgProcedure.query(({ ctx }) => listApiKeys(ctx, { orgId: ctx.org.id })),
  revoke: adminProcedure.input(ZRevokeApiKey).mutation(async ({ ctx, input }) => {
    const apiKey = await revokeApiKey(ctx, { orgId: ctx.org.id, keyId: input.keyId });
    ctx.audit.target("apiKey", apiKey.id, { prefix: apiKey.prefix });
    return apiKey;
  }),
});
