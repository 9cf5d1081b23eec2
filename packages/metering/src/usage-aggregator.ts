// Folds usage events from the Redis stream into hourly UsageRollup rows, exactly once.
//
// Events are read through a consumer group; an entry holds one event or a gateway's batch of them.
// Each read is applied in one Postgres transaction that first inserts the entries' receipt ids
// into usage_event_receipts (ON CONFLICT DO NOTHING) and then adds only the events of entries whose
// receipt was new. A receipt id is the batch id of a batch entry, the event id of a single-event
// entry, so it covers exactly one entry's events. The stream entries are acknowledged after the
// commit. So:
//   - a crash before the commit rolls everything back; the entries stay pending and are re-read;
//   - a crash after the commit but before XACK re-reads them too, but their receipts exist, so
//     they add nothing.
// Neither loses nor double counts. Pending entries of a consumer that died are claimed by another.
import { newId, type PrismaClient } from "@kiln/db";
import type { Redis } from "ioredis";
import { decodeUsageEntry, LATENCY_BUCKETS_MS, type UsageEvent, usageStreamKey } from "./usage-event.ts";

export const AGGREGATOR_GROUP = "usage-rollups";
export const RECEIPT_RETENTION_MS = 7 * 24 * 3_600_000;

export interface AggregatorOptions {
  redis: Redis;
  prisma: PrismaClient;
  keyPrefix: string;
  /** Unique per process: pending entries are tracked per consumer. */
  consumer: string;
  batchSize?: number;
  /** Pending entries idle this long belong to a consumer presumed dead and are claimed. */
  claimIdleMs?: number;
  /**
   * start(): after a pass that found less than a full batch, wait this long before the next one,
   * so a steady trickle of events is folded in few, larger transactions instead of one small
   * transaction per pass (each costs Postgres round trips and Prisma work). Default 0.
   */
  settleMs?: number;
  /** Test hook: runs after the commit and before XACK, where a crash is most interesting. */
  afterCommit?: (ids: string[]) => void | Promise<void>;
}

type StreamEntry = [id: string, fields: string[]];

export function latencyBucketIndex(ms: number): number {
  const i = LATENCY_BUCKETS_MS.findIndex((bound) => ms <= bound);
  return i === -1 ? LATENCY_BUCKETS_MS.length : i;
}

const hourOf = (at: number) => new Date(Math.floor(at / 3_600_000) * 3_600_000);

export class UsageAggregator {
  readonly #stream: string;
  #groupReady = false;
  constructor(private readonly options: AggregatorOptions) {
    this.#stream = usageStreamKey(options.keyPrefix);
  }

  async #ensureGroup(): Promise<void> {
    if (this.#groupReady) return;
    try {
      await this.options.redis.xgroup("CREATE", this.#stream, AGGREGATOR_GROUP, "0", "MKSTREAM");
    } catch (error) {
      if (!String((error as Error).message).includes("BUSYGROUP")) throw error;
    }
    this.#groupReady = true;
  }

  /**
   * One pass: this consumer's own pending entries, then entries abandoned by dead consumers, then
   * new ones (blocking up to `blockMs`). Returns how many events were newly counted.
   */
  async runOnce(blockMs = 0): Promise<number> {
    await this.#ensureGroup();
    const { redis, consumer } = this.options;
    const count = this.options.batchSize ?? 500;
    let counted = 0;

    const own = (await redis.xreadgroup(
      "GROUP",
      AGGREGATOR_GROUP,
      consumer,
      "COUNT",
      count,
      "STREAMS",
      this.#stream,
      "0",
    )) as [string, StreamEntry[]][] | null;
    counted += await this.#apply(own?.[0]?.[1] ?? []);

    const claimed = (await redis.xautoclaim(
      this.#stream,
      AGGREGATOR_GROUP,
      consumer,
      this.options.claimIdleMs ?? 30_000,
      "0",
      "COUNT",
      count,
    )) as [string, StreamEntry[]];
    counted += await this.#apply(claimed[1] ?? []);

    const args: (string | number)[] = ["GROUP", AGGREGATOR_GROUP, consumer, "COUNT", count];
    if (blockMs > 0) args.push("BLOCK", blockMs);
    const fresh = (await (redis.xreadgroup as (...a: (string | number)[]) => Promise<unknown>)(
      ...args,
      "STREAMS",
      this.#stream,
      ">",
    )) as [string, StreamEntry[]][] | null;
    counted += await this.#apply(fresh?.[0]?.[1] ?? []);
    return counted;
  }

  async #apply(entries: StreamEntry[]): Promise<number> {
    const live = entries.filter(([, fields]) => fields !== null);
    if (entries.length === 0) return 0;
    const decoded = live.map(([, fields]) => decodeUsageEntry(fields));
    const counted = await this.options.prisma.$transaction(async (tx) => {
      const ids = decoded.map((e) => e.receiptId);
      const inserted = await tx.$queryRaw<{ id: string }[]>`
        INSERT INTO "usage_event_receipts" ("id") SELECT unnest(${ids}::text[])
        ON CONFLICT ("id") DO NOTHING RETURNING "id"`;
      const fresh = new Set(inserted.map((r) => r.id));
      const groups = new Map<string, UsageEvent[]>();
      for (const entry of decoded) {
        if (!fresh.has(entry.receiptId)) continue;
        // The same receipt twice in one read is one entry.
        fresh.delete(entry.receiptId);
        for (const e of entry.events) {
          const key = `${e.orgId}|${e.deploymentId}|${Math.floor(e.at / 3_600_000)}`;
          const group = groups.get(key);
          if (group) group.push(e);
          else groups.set(key, [e]);
        }
      }
      let n = 0;
      for (const group of groups.values()) {
        const first = group[0] as UsageEvent;
        const buckets = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);
        for (const e of group) {
          const i = latencyBucketIndex(e.latencyMs);
          buckets[i] = (buckets[i] ?? 0) + 1;
        }
        const sum = (f: (e: UsageEvent) => number) => Math.round(group.reduce((s, e) => s + f(e), 0));
        // Events of a deployment deleted since are dropped (their receipts still record them as handled).
        await tx.$executeRaw`
          INSERT INTO "usage_rollups" ("id", "orgId", "deploymentId", "hour", "requests", "errors",
            "gpuMilliseconds", "bytesIn", "bytesOut", "latencyBuckets", "updatedAt")
          SELECT ${newId("use")}, ${first.orgId}, ${first.deploymentId}, ${hourOf(first.at)}, ${group.length},
            ${group.filter((e) => e.status === "error").length}, ${sum((e) => e.computeMs)}, ${sum((e) => e.bytesIn)},
            ${sum((e) => e.bytesOut)}, ${buckets}::bigint[], now()
          WHERE EXISTS (SELECT 1 FROM "deployments" d WHERE d."id" = ${first.deploymentId} AND d."orgId" = ${first.orgId})
          ON CONFLICT ("orgId", "deploymentId", "hour") DO UPDATE SET
            "requests" = "usage_rollups"."requests" + EXCLUDED."requests",
            "errors" = "usage_rollups"."errors" + EXCLUDED."errors",
            "gpuMilliseconds" = "usage_rollups"."gpuMilliseconds" + EXCLUDED."gpuMilliseconds",
            "bytesIn" = "usage_rollups"."bytesIn" + EXCLUDED."bytesIn",
            "bytesOut" = "usage_rollups"."bytesOut" + EXCLUDED."bytesOut",
            "latencyBuckets" = ARRAY(
              SELECT COALESCE(a, 0) + COALESCE(b, 0)
              FROM unnest("usage_rollups"."latencyBuckets", EXCLUDED."latencyBuckets") WITH ORDINALITY AS t(a, b, i)
              ORDER BY i),
            "updatedAt" = now()`;
        n += group.length;
      }
      return n;
    });
    const entryIds = entries.map(([id]) => id);
    await this.options.afterCommit?.(entryIds);
    await this.options.redis.xack(this.#stream, AGGREGATOR_GROUP, ...entryIds);
    return counted;
  }

  /**
   * Deletes receipts older than `olderThanMs`. A stream entry is redelivered only while it is
   * pending, which lasts minutes (until another consumer claims it), so a week is a wide margin.
   */
  async pruneReceipts(olderThanMs = RECEIPT_RETENTION_MS): Promise<number> {
    return this.options.prisma.$executeRaw`
      DELETE FROM "usage_event_receipts" WHERE "processedAt" < ${new Date(Date.now() - olderThanMs)}`;
  }

  /** Runs until stopped; errors are reported and retried after a pause. */
  start(onError: (error: unknown) => void): { stop: () => Promise<void> } {
    let running = true;
    let prunedAt = 0;
    const loop = (async () => {
      while (running) {
        try {
          if (Date.now() - prunedAt > 3_600_000) {
            prunedAt = Date.now();
            await this.pruneReceipts();
          }
          const counted = await this.runOnce(1_000);
          const settleMs = this.options.settleMs ?? 0;
          if (settleMs > 0 && counted < (this.options.batchSize ?? 500) && running) {
            await new Promise((r) => setTimeout(r, settleMs));
          }
        } catch (error) {
          onError(error);
          await new Promise((r) => setTimeout(r, 1_000));
        }
      }
    })();
    return {
      stop: async () => {
        running = false;
        await loop;
      },
    };
  }
}
