import type { PrismaClient } from "@kiln/db";
import type { Redis } from "ioredis";
import { type RevocationMessage, revocationChannel } from "./channels.ts";
import { hashApiKey, isWellFormedApiKey } from "./key-format.ts";
import { type ApiKeyScope, isApiKeyScope } from "./scopes.ts";

/** Who is calling, once a key checks out. */
export type ApiKeyIdentity = {
  keyId: string;
  orgId: string;
  scopes: ApiKeyScope[];
  /** When set, the key may only call this deployment. */
  deploymentId: string | null;
};

export type ApiKeyFailureReason = "malformed" | "unknown" | "revoked" | "expired";

export type VerifyApiKeyResult =
  | { ok: true; key: ApiKeyIdentity }
  | { ok: false; reason: ApiKeyFailureReason; message: string };

export interface ApiKeyVerifier {
  /** Checks a presented key. Never throws for a bad key; only for an unreachable database. */
  verify(token: string): Promise<VerifyApiKeyResult>;
  /**
   * The same answer without waiting, when it needs no database lookup (a malformed key, or one whose
   * cached lookup is fresh: the revocation and TTL rules are verify's); undefined otherwise.
   */
  verifyCached(token: string): VerifyApiKeyResult | undefined;
  /** Drops every cached entry (tests; an operator's big red button). */
  clear(): void;
  /** Stops listening for revocations and waits for pending last-used writes. */
  close(): Promise<void>;
}

export type ApiKeyVerifierOptions = {
  prisma: PrismaClient;
  /** Used to open a dedicated subscriber connection (a subscribed connection can do nothing else). */
  redis: Redis;
  redisKeyPrefix: string;
  /** How long a cached lookup is trusted. Revocations arrive by pub/sub; this bounds a lost message. */
  cacheTtlMs?: number;
  maxCacheEntries?: number;
  /** lastUsedAt is written at most this often per key, so hot keys do not write on every request. */
  lastUsedIntervalMs?: number;
  onError?: (error: unknown, context: string) => void;
};

type KeyRow = {
  id: string;
  orgId: string;
  scopes: string[];
  deploymentId: string | null;
  expiresAt: Date | null;
  revokedAt: Date | null;
};
// null: no key has this hash (cached too, so a flood of one bad key does not reach Postgres).
// `identity` is the answer for a valid row, built once per lookup (callers must not mutate it).
type CacheEntry = { row: KeyRow | null; fetchedAt: number; identity?: ApiKeyIdentity };

const FAILURE_MESSAGES: Record<ApiKeyFailureReason, string> = {
  malformed: "API key is malformed: expected kiln_live_ followed by 32 letters and digits",
  unknown: "API key is not valid",
  revoked: "API key has been revoked",
  expired: "API key has expired",
};
const fail = (reason: ApiKeyFailureReason): VerifyApiKeyResult => ({
  ok: false,
  reason,
  message: FAILURE_MESSAGES[reason],
});

/**
 * The one place API keys are checked (the gateway, the public API). Lookups are cached in process
 * for `cacheTtlMs`; a revocation published by `revokeApiKey` evicts the key from every verifier's
 * cache as soon as the message arrives, and a reconnect of the subscriber (which may have missed
 * messages) empties the cache.
 */
export async function createApiKeyVerifier(options: ApiKeyVerifierOptions): Promise<ApiKeyVerifier> {
  const { prisma } = options;
  const cacheTtlMs = options.cacheTtlMs ?? 30_000;
  const maxEntries = options.maxCacheEntries ?? 10_000;
  const lastUsedIntervalMs = options.lastUsedIntervalMs ?? 60_000;
  const onError = options.onError ?? (() => {});

  const cache = new Map<string, CacheEntry>();
  // Token -> SHA-256 (a pure function of the token, so nothing to invalidate): a presented key is
  // hashed once, not on every request. Bounded like the cache; emptied when full.
  const hashes = new Map<string, string>();
  const hashOf = (token: string): string => {
    let hash = hashes.get(token);
    if (hash === undefined) {
      hash = hashApiKey(token);
      if (hashes.size >= maxEntries) hashes.clear();
      hashes.set(token, hash);
    }
    return hash;
  };
  const loading = new Map<string, Promise<KeyRow | null>>();
  const lastUsedWrittenAt = new Map<string, number>();
  const pendingWrites = new Set<Promise<unknown>>();
  // Bumped by every eviction; a lookup that started before one must not cache what it read.
  let evictions = 0;

  const evict = (hash?: string) => {
    evictions++;
    if (hash === undefined) cache.clear();
    else cache.delete(hash);
  };

  const subscriber = options.redis.duplicate({ lazyConnect: true });
  subscriber.on("error", (error) => onError(error, "api key revocation subscriber"));
  let subscribedOnce = false;
  subscriber.on("ready", () => {
    if (subscribedOnce) evict();
  });
  subscriber.on("message", (_channel: string, payload: string) => {
    try {
      const message = JSON.parse(payload) as RevocationMessage;
      evict(message.hash);
    } catch (error) {
      // A message we cannot read might have been a revocation: trust nothing cached.
      evict();
      onError(error, "unreadable revocation message");
    }
  });
  await subscriber.connect();
  await subscriber.subscribe(revocationChannel(options.redisKeyPrefix));
  subscribedOnce = true;

  async function lookup(hash: string): Promise<KeyRow | null> {
    const cached = cache.get(hash);
    if (cached && Date.now() - cached.fetchedAt < cacheTtlMs) return cached.row;
    const inFlight = loading.get(hash);
    if (inFlight) return inFlight;
    const evictionsBefore = evictions;
    const load = prisma.apiKey
      .findUnique({
        where: { hash },
        select: { id: true, orgId: true, scopes: true, deploymentId: true, expiresAt: true, revokedAt: true },
      })
      .then((row) => {
        if (evictions === evictionsBefore) {
          if (cache.size >= maxEntries) {
            // Maps iterate in insertion order: drop the oldest entry.
            const oldest = cache.keys().next().value;
            if (oldest !== undefined) cache.delete(oldest);
          }
          cache.set(hash, { row, fetchedAt: Date.now() });
        }
        return row;
      })
      .finally(() => loading.delete(hash));
    loading.set(hash, load);
    return load;
  }

  function touch(keyId: string) {
    const now = Date.now();
    if (now - (lastUsedWrittenAt.get(keyId) ?? 0) < lastUsedIntervalMs) return;
    lastUsedWrittenAt.set(keyId, now);
    // Conditional, so several gateway processes together still write about once per interval.
    const write = prisma.apiKey
      .updateMany({
        where: { id: keyId, OR: [{ lastUsedAt: null }, { lastUsedAt: { lt: new Date(now - lastUsedIntervalMs) } }] },
        data: { lastUsedAt: new Date(now) },
      })
      .catch((error) => onError(error, "could not record API key use"))
      .finally(() => pendingWrites.delete(write));
    pendingWrites.add(write);
  }

  const identityOf = (row: KeyRow): ApiKeyIdentity =>
    Object.freeze({
      keyId: row.id,
      orgId: row.orgId,
      scopes: Object.freeze(row.scopes.filter(isApiKeyScope)) as ApiKeyScope[],
      deploymentId: row.deploymentId,
    });

  function judge(row: KeyRow | null, entry?: CacheEntry): VerifyApiKeyResult {
    if (!row) return fail("unknown");
    if (row.revokedAt) return fail("revoked");
    if (row.expiresAt && row.expiresAt.getTime() <= Date.now()) return fail("expired");
    touch(row.id);
    let identity = entry?.identity;
    if (identity === undefined) {
      identity = identityOf(row);
      if (entry) entry.identity = identity;
    }
    return { ok: true, key: identity };
  }

  function verifyCached(token: string): VerifyApiKeyResult | undefined {
    if (typeof token !== "string" || !isWellFormedApiKey(token)) return fail("malformed");
    const cached = cache.get(hashOf(token));
    if (!cached || Date.now() - cached.fetchedAt >= cacheTtlMs) return undefined;
    return judge(cached.row, cached);
  }

  return {
    async verify(token) {
      const known = verifyCached(token);
      if (known) return known;
      const hash = hashOf(token);
      const row = await lookup(hash);
      const entry = cache.get(hash);
      return judge(row, entry?.row === row ? entry : undefined);
    },
    verifyCached,
    clear: () => evict(),
    async close() {
      await Promise.allSettled([...pendingWrites]);
      await subscriber.quit().catch(() => subscriber.disconnect());
    },
  };
}
