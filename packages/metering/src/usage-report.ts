// What the dashboard charts: requests, errors, compute seconds, bytes and latency percentiles per
// deployment and for the whole organization, from the hourly rollups; and this month's quota use.
import type { PrismaClient } from "@kiln/db";
import { latencyPercentile } from "./percentiles.ts";

export interface UsageTotals {
  requests: number;
  errors: number;
  computeSeconds: number;
  bytesIn: number;
  bytesOut: number;
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
}

type Row = {
  deploymentId: string;
  hour: Date;
  requests: bigint;
  errors: bigint;
  gpuMilliseconds: bigint;
  bytesIn: bigint;
  bytesOut: bigint;
  latencyBuckets: bigint[];
};

function totals(rows: Row[]): UsageTotals {
  const buckets: number[] = [];
  for (const r of rows) {
    for (const [i, v] of r.latencyBuckets.entries()) buckets[i] = (buckets[i] ?? 0) + Number(v);
  }
  const sum = (f: (r: Row) => bigint) => Number(rows.reduce((n, r) => n + f(r), 0n));
  return {
    requests: sum((r) => r.requests),
    errors: sum((r) => r.errors),
    computeSeconds: sum((r) => r.gpuMilliseconds) / 1000,
    bytesIn: sum((r) => r.bytesIn),
    bytesOut: sum((r) => r.bytesOut),
    p50Ms: latencyPercentile(buckets, 0.5),
    p95Ms: latencyPercentile(buckets, 0.95),
    p99Ms: latencyPercentile(buckets, 0.99),
  };
}

/** Usage of an organization between two instants (hour granularity), per deployment and per hour. */
export async function usageReport(
  prisma: PrismaClient,
  orgId: string,
  range: { from: Date; to: Date },
  deploymentId?: string,
) {
  const rows: Row[] = await prisma.usageRollup.findMany({
    where: { orgId, hour: { gte: range.from, lt: range.to }, ...(deploymentId ? { deploymentId } : {}) },
    orderBy: { hour: "asc" },
    select: {
      deploymentId: true,
      hour: true,
      requests: true,
      errors: true,
      gpuMilliseconds: true,
      bytesIn: true,
      bytesOut: true,
      latencyBuckets: true,
    },
  });
  const names = new Map(
    (await prisma.deployment.findMany({ where: { orgId }, select: { id: true, name: true } })).map((d) => [
      d.id,
      d.name,
    ]),
  );
  const byDeployment = new Map<string, Row[]>();
  const byHour = new Map<string, Row[]>();
  for (const r of rows) {
    byDeployment.set(r.deploymentId, [...(byDeployment.get(r.deploymentId) ?? []), r]);
    const hour = r.hour.toISOString();
    byHour.set(hour, [...(byHour.get(hour) ?? []), r]);
  }
  return {
    org: totals(rows),
    deployments: [...byDeployment].map(([id, list]) => ({
      deploymentId: id,
      name: names.get(id) ?? id,
      ...totals(list),
    })),
    hourly: [...byHour].map(([hour, list]) => ({ hour, ...totals(list) })),
  };
}
