"use client";

import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { PageHeader } from "@/components/shell/app-shell";
import { Card, EmptyState, ErrorState, Field, Progress, Select, Skeleton, Table } from "@/components/ui";
import { formatBytes, formatCount } from "@/lib/format";
import { errorMessage, keys, type RouterOutputs, useApi } from "@/lib/trpc";
import { UsageCharts } from "./usage-charts";
import "./usage.css";

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
  const [deploymentId, setDeploymentId] = useState("");
  const report = useQuery({
    queryKey: keys.of("usage.summary", { hours, deploymentId }),
    queryFn: () => {
      const to = new Date();
      const from = new Date(to.getTime() - Number(hours) * 3600_000);
      return api.usage.summary
        .query({ from, to, deploymentId: deploymentId || undefined })
        .then((r) => ({ ...r, from, to }));
    },
    refetchInterval: 30_000,
  });
  // The deployment filter lists what the unfiltered report has seen in this range.
  const [knownDeployments, setKnownDeployments] = useState<{ value: string; label: string }[]>([]);
  const seen = report.data && !deploymentId ? report.data.deployments : null;
  if (seen && seen.map((d) => d.deploymentId).join() !== knownDeployments.map((d) => d.value).join()) {
    setKnownDeployments(seen.map((d) => ({ value: d.deploymentId, label: d.name })));
  }
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
      <div className="usage-filters">
        <Field label="Range">
          <Select value={hours} onChange={(e) => setHours(e.target.value)} options={RANGES} />
        </Field>
        <Field label="Deployment">
          <Select
            value={deploymentId}
            onChange={(e) => setDeploymentId(e.target.value)}
            options={[{ value: "", label: "All deployments" }, ...knownDeployments]}
          />
        </Field>
      </div>
      {report.isLoading ? (
        <Skeleton lines={4} label="Loading usage" />
      ) : report.error ? (
        <ErrorState message={errorMessage(report.error)} onRetry={() => report.refetch()} />
      ) : report.data && report.data.org.requests > 0 ? (
        <>
          <Card
            title={
              deploymentId
                ? (knownDeployments.find((d) => d.value === deploymentId)?.label ?? "Deployment")
                : "Organization"
            }
          >
            <p>
              {formatCount(report.data.org.requests)} requests, {formatCount(report.data.org.errors)} errors,{" "}
              {report.data.org.computeSeconds.toFixed(2)} compute-seconds; latency p50 {ms(report.data.org.p50Ms)}, p95{" "}
              {ms(report.data.org.p95Ms)}, p99 {ms(report.data.org.p99Ms)}.
            </p>
            <UsageCharts hourly={report.data.hourly} from={report.data.from} to={report.data.to} />
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
        {label}: {formatCount(Math.round(used))}
        {limit === null
          ? ` ${unit} (billed as overage beyond your allowance)`
          : ` of ${formatCount(limit)} ${unit} (${formatCount(Math.max(0, limit - used))} left)`}
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
