// RequestAdmission builds each organization's Redis keys once a month: the strings must stay exactly
// what @kiln/metering and @kiln/billing name them, for the month the event or request falls in.

import { spendCapKeys } from "@kiln/billing";
import type { PrismaClient } from "@kiln/db";
import { createLogger } from "@kiln/logger";
import { quotaKeys, secondsToMonthEnd } from "@kiln/metering";
import type { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { RequestAdmission } from "./admission.ts";
import type { RedisScript, RespValue, ScriptConnection } from "./script-connection.ts";

function fakeScripts() {
  const calls: { script: RedisScript; args: (string | number)[] }[] = [];
  const scripts = {
    run: async (script: RedisScript, args: (string | number)[]): Promise<RespValue> => {
      calls.push({ script, args });
      return 1;
    },
    beforeWrite: (fn: () => void) => setImmediate(fn),
    close: async () => {},
  } as unknown as ScriptConnection;
  return { scripts, calls };
}

const event = (orgId: string, at: number) => ({
  eventId: `req-${at}`,
  orgId,
  deploymentId: "dep_1",
  computeMs: 0.5,
  batchShare: 1,
  bytesIn: 10,
  bytesOut: 20,
  status: "success" as const,
  latencyMs: 1,
  at,
});

const prefix = "kiln-test:";
// An admission whose scripts are recorded (calls), with no Redis or Postgres behind it.
function newAdmission() {
  const { scripts, calls } = fakeScripts();
  const logger = createLogger({ service: "test", level: "silent" });
  return { calls, admission: new RequestAdmission(scripts, {} as Redis, {} as PrismaClient, prefix, logger) };
}

describe("RequestAdmission's keys", () => {
  it("uses the month each usage event falls in, across a month boundary and back", async () => {
    const { calls, admission } = newAdmission();
    const lastMs = Date.UTC(2026, 11, 31, 23, 59, 59, 999);
    const times = [lastMs - 1000, lastMs + 1, lastMs, Date.UTC(2027, 0, 15), Date.UTC(2026, 10, 30, 12)];
    for (const at of times) await admission.meter(event("org_a", at));
    await admission.meter(event("org_b", lastMs));
    await admission.close();
    const expected = [...times.map((at) => ["org_a", at] as const), ["org_b", lastMs] as const].map(([org, at]) => [
      quotaKeys(prefix, org, new Date(at)).monthComputeMs,
      spendCapKeys(prefix, org).limits,
      secondsToMonthEnd(new Date(at)),
      spendCapKeys(prefix, org).usagePrefix,
    ]);
    expect(calls.map((c) => [c.args[1], c.args[2], c.args[5], c.args[6]])).toEqual(expected);
  });

  it("sends a turn's usage events as one entry per organization and month, each event once", async () => {
    const { calls, admission } = newAdmission();
    const dec = Date.UTC(2026, 11, 31, 12);
    const jan = Date.UTC(2027, 0, 1, 12);
    // Interleaved, in one turn: org_a in December (three), org_a in January, org_b in December.
    const sent = [event("org_a", dec), event("org_a", dec + 1), event("org_a", jan), event("org_b", dec + 2)];
    for (const e of sent) admission.record(e);
    const waited = admission.meter(event("org_a", dec + 3));
    await waited;
    expect(calls.map((c) => [c.args[1], (JSON.parse(String(c.args[9])) as string[][]).map((row) => row[0])])).toEqual([
      [quotaKeys(prefix, "org_a", new Date(dec)).monthComputeMs, [`req-${dec}`, `req-${dec + 1}`, `req-${dec + 3}`]],
      [quotaKeys(prefix, "org_a", new Date(jan)).monthComputeMs, [`req-${jan}`]],
      [quotaKeys(prefix, "org_b", new Date(dec)).monthComputeMs, [`req-${dec + 2}`]],
    ]);
    // Compute is charged per entry: the sum of its events' (rounded up) milliseconds.
    expect(calls.map((c) => c.args[4])).toEqual([3, 1, 1]);
    await admission.close();
  });
});
