import { newId, type PrismaClient } from "@kiln/db";
import { KilnError, notFound } from "@kiln/errors";
import type { Redis } from "ioredis";
import { type RevocationMessage, revocationChannel } from "./channels.ts";
import { generateApiKey } from "./key-format.ts";
import { type ApiKeyScope, isApiKeyScope } from "./scopes.ts";

/** What the dashboard shows about a key: everything but the secret, which is never stored. */
export type ApiKeySummary = {
  id: string;
  orgId: string;
  name: string;
  prefix: string;
  scopes: ApiKeyScope[];
  deploymentId: string | null;
  createdById: string | null;
  lastUsedAt: Date | null;
  expiresAt: Date | null;
  revokedAt: Date | null;
  createdAt: Date;
};

export type CreateApiKeyInput = {
  orgId: string;
  name: string;
  scopes: readonly string[];
  /** Restricts the key to one deployment of the same organization. */
  deploymentId?: string | null;
  createdById?: string | null;
  expiresAt?: Date | null;
};

const SUMMARY_FIELDS = {
  id: true,
  orgId: true,
  name: true,
  prefix: true,
  scopes: true,
  deploymentId: true,
  createdById: true,
  lastUsedAt: true,
  expiresAt: true,
  revokedAt: true,
  createdAt: true,
} as const;

type SummaryRow = Omit<ApiKeySummary, "scopes"> & { scopes: string[] };
const toSummary = (row: SummaryRow): ApiKeySummary => ({ ...row, scopes: row.scopes.filter(isApiKeyScope) });

/**
 * Creates a key and returns it whole, once: only its visible prefix and SHA-256 are stored, so it
 * can never be shown again.
 */
export async function createApiKey(
  deps: { prisma: PrismaClient },
  input: CreateApiKeyInput,
): Promise<{ key: string; apiKey: ApiKeySummary }> {
  const name = input.name.trim();
  if (name.length === 0 || name.length > 100) {
    throw new KilnError("BAD_REQUEST", "API key name must be 1 to 100 characters");
  }
  const unknownScopes = input.scopes.filter((scope) => !isApiKeyScope(scope));
  if (input.scopes.length === 0 || unknownScopes.length > 0) {
    throw new KilnError(
      "BAD_REQUEST",
      unknownScopes.length > 0
        ? `Unknown API key scope ${unknownScopes.map((s) => `"${s}"`).join(", ")}: use inference, read-only or admin`
        : "An API key needs at least one scope: inference, read-only or admin",
    );
  }
  if (input.expiresAt && input.expiresAt.getTime() <= Date.now()) {
    throw new KilnError("BAD_REQUEST", "API key expiry must be in the future");
  }
  if (input.deploymentId) {
    const deployment = await deps.prisma.deployment.findFirst({
      where: { id: input.deploymentId, orgId: input.orgId },
      select: { id: true },
    });
    if (!deployment) throw notFound("Deployment", input.deploymentId);
  }
  // The visible prefix is unique; two keys sharing 8 random characters is rare but possible, so retry.
  for (let attempt = 0; ; attempt++) {
    const generated = generateApiKey();
    try {
      const row = await deps.prisma.apiKey.create({
        data: {
          id: newId("key"),
          orgId: input.orgId,
          name,
          prefix: generated.prefix,
          hash: generated.hash,
          scopes: [...new Set(input.scopes)],
          deploymentId: input.deploymentId ?? null,
          createdById: input.createdById ?? null,
          expiresAt: input.expiresAt ?? null,
        },
        select: SUMMARY_FIELDS,
      });
      return { key: generated.key, apiKey: toSummary(row) };
    } catch (error) {
      const isUniqueViolation = (error as { code?: string }).code === "P2002";
      if (!isUniqueViolation || attempt >= 3) throw error;
    }
  }
}

/** The organization's keys, newest first, revoked ones included (the dashboard shows when). */
export async function listApiKeys(deps: { prisma: PrismaClient }, input: { orgId: string }): Promise<ApiKeySummary[]> {
  const rows = await deps.prisma.apiKey.findMany({
    where: { orgId: input.orgId },
    orderBy: { createdAt: "desc" },
    select: SUMMARY_FIELDS,
  });
  return rows.map(toSummary);
}

/**
 * Revokes a key of the organization and tells every verifier's cache at once, so the gateway stops
 * accepting it within a round trip of Redis pub/sub rather than when its cache entry expires.
 * Revoking a revoked key changes nothing and announces it again.
 */
export async function revokeApiKey(
  deps: { prisma: PrismaClient; redis: Redis; redisKeyPrefix: string },
  input: { orgId: string; keyId: string },
): Promise<ApiKeySummary> {
  const existing = await deps.prisma.apiKey.findFirst({
    where: { id: input.keyId, orgId: input.orgId },
    select: { id: true, hash: true, revokedAt: true },
  });
  if (!existing) throw notFound("API key", input.keyId);
  const row = await deps.prisma.apiKey.update({
    where: { id: existing.id },
    data: { revokedAt: existing.revokedAt ?? new Date() },
    select: SUMMARY_FIELDS,
  });
  const message: RevocationMessage = { keyId: existing.id, hash: existing.hash };
  await deps.redis.publish(revocationChannel(deps.redisKeyPrefix), JSON.stringify(message));
  return toSummary(row);
}
