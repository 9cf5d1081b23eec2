// Usage stream entries: a batch entry (one JSON row per event) and a single-event entry (a field per
// value) decode to the same events, whatever order or gaps the fields come in.
import { describe, expect, it } from "vitest";
import {
  decodeUsageEntry,
  decodeUsageEvent,
  encodeUsageBatch,
  encodeUsageEvent,
  USAGE_BATCH_FIELD,
  USAGE_BATCH_ID_FIELD,
  type UsageEvent,
} from "./usage-event.ts";

const event = (i: number, status: UsageEvent["status"] = "success"): UsageEvent => ({
  eventId: `req-${i}`,
  orgId: "org_a",
  deploymentId: `dep_${i % 2}`,
  computeMs: 0.25 * i,
  batchShare: 1 / (i + 1),
  bytesIn: 100 + i,
  bytesOut: 200 + i,
  status,
  latencyMs: 1.5 * i,
  at: 1_765_000_000_000 + i,
});

describe("usage entries", () => {
  it("decodes a batch entry's rows to its events, in order, under the batch's receipt", () => {
    const events = [event(0), event(1, "error"), event(2)];
    const entry = decodeUsageEntry([USAGE_BATCH_ID_FIELD, "bat_1", USAGE_BATCH_FIELD, encodeUsageBatch(events)]);
    expect(entry).toEqual({ receiptId: "bat_1", events });
  });

  it("decodes a single-event entry by field name, the event id as its receipt", () => {
    const fields = encodeUsageEvent(event(3, "error"));
    // Field order does not matter, only names.
    const reversed: string[] = [];
    for (let i = fields.length - 2; i >= 0; i -= 2) reversed.push(fields[i] as string, fields[i + 1] as string);
    expect(decodeUsageEntry(reversed)).toEqual({ receiptId: "req-3", events: [event(3, "error")] });
    expect(decodeUsageEvent(fields)).toEqual(event(3, "error"));
  });

  it("reads missing values as empty or zero and any status but error as success", () => {
    expect(decodeUsageEvent(["eventId", "req-9", "status", "weird", "computeMs", "2.5"])).toEqual({
      eventId: "req-9",
      orgId: "",
      deploymentId: "",
      computeMs: 2.5,
      batchShare: 0,
      bytesIn: 0,
      bytesOut: 0,
      status: "success",
      latencyMs: 0,
      at: 0,
    });
    const short = decodeUsageEntry([
      USAGE_BATCH_ID_FIELD,
      "bat_2",
      USAGE_BATCH_FIELD,
      JSON.stringify([["req-1", "org_b"]]),
    ]);
    expect(short.events[0]).toMatchObject({ eventId: "req-1", orgId: "org_b", deploymentId: "", bytesIn: 0, at: 0 });
  });
});
