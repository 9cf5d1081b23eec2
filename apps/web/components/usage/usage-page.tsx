"use client";

import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { PageHeader } from "@/components/shell/app-shell";
import { Card, EmptyState, ErrorState, Field, Progress, Select, Skeleton, Table } from "@/components/ui";
import { formatBytes, formatCount } from "@/lib/format";
import { errorMessage, keys, type RouterOutputs, useApi } from "@/lib/trpc";

type Report = RouterOutputs["usage"]["summary"];
type Row = Report["deployments"][number];

const RANGES = [
  { value: "24", label: "Last 24 hours" },
  { value: "168", label: "Last 7 days" },
  { value: "720", label: "Last 30 days" },
];

const ms = (v: number | null) => (v === null ? "—" : `≤ ${v} ms`);

export function UsagePage() {
  const api = useApi();
  const [hours, setHours] = useState("24");
  const input = { from: new Date(Date.now() - Number(hours) * 3600_000) };
  const report = useQuery({
    queryKey: keys.of("usage.summary", { hours }),
    queryFn: () => api.usage.summary.query(input),
    refetchInterval: 30_000,
  });
  const quota = useQuery({
    queryKey: keys.of("usage.quota", {}),
    queryFn: () => api.usage.quota.query(),
    refetchInterval: 10_000,
  });

  const columns = [
    { key: "name", header: "Deployment", cell: (r: Row) => <strong>{r.name}</strong> },
    { key: "requests", header: "Requests", isNumeric: true, cell: (r: Row) => formatCount(r.requests) },
    { key: "errors", header: "Errors", isNumeric: true, cell: (r: Row) => formatCount(r.errors) },
    { key: "compute", header: "Compute (s)", isNumeric: true, cell: (r: Row) => r.computeSeconds.toFixed(2) },
    { key: "p50", header: "p50", isNumeric: true, cell: (r: Row) => ms(r.p50Ms) },
    { key: "p95", header: "p95", isNumeric: true, cell: (r: Row) => ms(r.p95Ms) },
    { key: "p99", header: "p99", isNumeric: true, cell: (r: Row) => ms(r.p99Ms) },
    {
      key: "bytes",
      header: "In / out",
      isNumeric: true,
      cell: (r: Row) => `${formatBytes(r.bytesIn)} / ${formatBytes(r.bytesOut)}`,
    },
  ];

  return (
    <>
      <PageHeader
        title="Usage"
        description="Answered requests, compute and latency from hourly rollups; quotas of your plan this month."
      />
      {quota.data ? (
        <QuotaCard quota={quota.data} />
      ) : quota.error ? (
        <ErrorState message={errorMessage(quota.error)} />
      ) : null}
      <Field label="Range">
        <Select value={hours} onChange={(e) => setHours(e.target.value)} options={RANGES} />
      </Field>
      {report.isLoading ? (
        <Skeleton lines={4} label="Loading usage" />
      ) : report.error ? (
        <ErrorState message={errorMessage(report.error)} onRetry={() => report.refetch()} />
      ) : report.data && report.data.org.requests > 0 ? (
        <>
          <Card title="Organization">
            <p>
              {formatCount(report.data.org.requests)} requests, {formatCount(report.data.org.errors)} errors,{" "}
              {report.data.org.computeSeconds.toFixed(2)} compute-seconds; latency p50 {ms(report.data.org.p50Ms)}, p95{" "}
              {ms(report.data.org.p95Ms)}, p99 {ms(report.data.org.p99Ms)}.
            </p>
            <HourlyChart hourly={report.data.hourly} />
          </Card>
          <Table
            caption="Usage per deployment"
            columns={columns}
            rows={report.data.deployments}
            rowKey={(r) => r.deploymentId}
          />
        </>
      ) : (
        <EmptyState title="No usage in this range">
          Requests to your deployments appear here within a minute.
        </EmptyState>
      )}
    </>
  );
}

function QuotaCard({ quota }: { quota: RouterOutputs["usage"]["quota"] }) {
  const meter = (label: string, used: number, limit: number | null, unit: string) => (
    <div>
      <p>
        {label}: {formatCount(Math.round(used))} {unit}
        {limit === null
          ? " (billed as overage beyond your allowance)"
          : ` of ${formatCount(limit)} (${formatCount(Math.max(0, limit - used))} left)`}
      </p>
      {limit !== null ? <Progress value={Math.min(1, used / limit)} label={`${label} used`} /> : null}
    </div>
  );
  return (
    <Card title={`This month on the ${quota.plan} plan`}>
      {meter("Requests", quota.requests.used, quota.requests.limit, "requests")}
      {meter("Compute", quota.computeSeconds.used, quota.computeSeconds.limit, "compute-seconds")}
      {meter("Deployments", quota.deployments.used, quota.deployments.limit, "deployments")}
      <p>
        Rate limit {quota.requestsPerSecond} requests/s (bursts of {quota.burstRequests}); up to{" "}
        {quota.replicasPerDeployment} replicas per deployment; requests up to {formatBytes(quota.maxRequestBytes)}.
      </p>
    </Card>
  );
}

/** Requests per hour as bars, errors stacked in the danger colour. */
function HourlyChart({ hourly }: { hourly: Report["hourly"] }) {
  const max = Math.max(1, ...hourly.map((h) => h.requests));
  const width = 640;
  const height = 120;
  const bar = width / Math.max(hourly.length, 1);
  return (
    <svg
      viewBox={`0 0 ${width} ${height}`}
      role="img"
      aria-label="Requests per hour"
      style={{ width: "100%", height: 140 }}
    >
      {hourly.map((h, i) => {
        const total = (h.requests / max) * (height - 10);
        const errors = (h.errors / max) * (height - 10);
        return (
          <g key={h.hour}>
            <title>{`${new Date(h.hour).toLocaleString()}: ${h.requests} requests, ${h.errors} errors, p99 ${ms(h.p99Ms)}`}</title>
            <rect
              x={i * bar + 1}
              y={height - total}
              width={Math.max(bar - 2, 1)}
              height={total}
              fill="var(--ui-accent, #4f46e5)"
            />
            <rect
              x={i * bar + 1}
              y={height - errors}
              width={Math.max(bar - 2, 1)}
              height={errors}
              fill="var(--ui-danger, #dc2626)"
            />
          </g>
        );
      })}
    </svg>
  );
}
