"use client";

import type { BuildReport } from "@kiln/engine";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import Link from "next/link";
import { useRouter } from "next/navigation";
import { useEffect, useRef, useState } from "react";
import { PageHeader } from "@/components/shell/app-shell";
import { Button, buttonClass, Card, Dialog, ErrorState, Progress, Skeleton, StatusBadge, useToast } from "@/components/ui";
import { formatBytes, formatDate } from "@/lib/format";
import { errorMessage, keys, useApi } from "@/lib/trpc";
import { BuildReportView } from "./build-report";

const isActive = (status: string) => status === "queued" || status === "running";

export function BuildDetailPage({ buildId }: { buildId: string }) {
  const api = useApi();
  const router = useRouter();
  const toast = useToast();
  const queryClient = useQueryClient();
  const [isConfirmingCancel, setConfirmingCancel] = useState(false);
  const build = useQuery({
    queryKey: keys.of("builds.get", { id: buildId }),
    queryFn: () => api.builds.get.query({ id: buildId }),
    // Live progress: poll while the build is queued or running, stop once it settles.
    refetchInterval: (query) => (query.state.data && isActive(query.state.data.status) ? 1_000 : false),
  });
  const refresh = () => queryClient.invalidateQueries({ queryKey: keys.of("builds") });
  const cancel = useMutation({
    mutationFn: () => api.builds.cancel.mutate({ id: buildId }),
    onSuccess: async () => {
      setConfirmingCancel(false);
      toast.show("Build canceled");
      await refresh();
    },
    onError: (e) => toast.show(errorMessage(e), "danger"),
  });
  const retry = useMutation({
    mutationFn: () => api.builds.retry.mutate({ id: buildId }),
    onSuccess: async (retried) => {
      toast.show("Build queued again");
      await refresh();
      if (retried.id !== buildId) router.push(`/builds/${retried.id}`);
    },
    onError: (e) => toast.show(errorMessage(e), "danger"),
  });

  if (build.isLoading) return <Skeleton lines={6} label="Loading build" />;
  if (build.error || !build.data) {
    return <ErrorState title="Build not found" message={errorMessage(build.error ?? new Error("No such build."))} />;
  }
  const b = build.data;
  const report = b.report as BuildReport | null;
  const active = isActive(b.status);

  return (
    <>
      <nav className="breadcrumb" aria-label="Breadcrumb">
        <Link href="/builds">Builds</Link> / <Link href={`/models/${b.modelId}`}>{b.modelName}</Link> /{" "}
        <span className="ui-mono">{b.id}</span>
      </nav>
      <PageHeader
        title={
          <span className="row">
            {b.modelName} v{b.modelVersion} <StatusBadge status={b.status} />
          </span>
        }
        description={`${b.target} · ${b.precision.toUpperCase()} · started ${formatDate(b.createdAt)}${b.cached ? " · served from cache" : ""}`}
        actions={
          <>
            {active ? (
              <Button variant="danger" onClick={() => setConfirmingCancel(true)}>
                Cancel build
              </Button>
            ) : null}
            {b.status === "failed" || b.status === "canceled" ? (
              <Button variant="primary" isLoading={retry.isPending} onClick={() => retry.mutate()}>
                Retry
              </Button>
            ) : null}
            {b.downloadUrl ? (
              <a className={buttonClass("primary")} href={b.downloadUrl} download>
                Download engine ({formatBytes(b.engineSizeBytes)})
              </a>
            ) : null}
          </>
        }
      />
      {active ? (
        <Card title="Progress">
          <Progress
            label={b.status === "queued" ? "Waiting for a worker" : (b.progress?.message ?? "Building")}
            value={b.status === "queued" ? undefined : (b.progress?.fraction ?? undefined)}
            detail={b.progress?.stage ? `Stage: ${b.progress.stage}` : undefined}
          />
        </Card>
      ) : null}
      {b.status === "failed" && b.error ? (
        <div className="ui-callout ui-callout--danger" role="alert">
          <strong>The build failed.</strong> {b.error}
        </div>
      ) : null}
      <div className="grid-main-side">
        <div>
          {report ? (
            <Card title="Report">
              <BuildReportView report={report} />
            </Card>
          ) : null}
          <Card title="Log">
            <BuildLog lines={b.logs} isLive={active} />
          </Card>
        </div>
        <Card title="Details">
          <dl className="ui-facts ui-facts--single">
            <div>
              <dt>Target</dt>
              <dd>{b.target}</dd>
            </div>
            <div>
              <dt>Precision</dt>
              <dd>{b.precision.toUpperCase()}</dd>
            </div>
            {b.calibration ? (
              <div>
                <dt>Calibration</dt>
                <dd>
                  {b.calibration.filename ?? "a deleted set"}
                  {b.calibration.sampleCount !== null ? ` · ${b.calibration.sampleCount} samples` : ""} ·{" "}
                  {b.calibration.method === "percentile"
                    ? `percentile ${b.calibration.percentile}`
                    : b.calibration.method === "minmax"
                      ? "min/max"
                      : "entropy"}
                  <br />
                  <span className="ui-mono ui-hint" title={b.calibration.sha256}>
                    sha256 {b.calibration.sha256.slice(0, 12)}…
                  </span>
                </dd>
              </div>
            ) : null}
            <div>
              <dt>Device memory</dt>
              <dd>{formatBytes(b.deviceMemoryBytes)}</dd>
            </div>
            <div>
              <dt>Engine size</dt>
              <dd>{formatBytes(b.engineSizeBytes)}</dd>
            </div>
            <div>
              <dt>Attempts</dt>
              <dd>{b.attempts}</dd>
            </div>
            <div>
              <dt>Builder</dt>
              <dd className="ui-mono">{b.builderVersion}</dd>
            </div>
            <div>
              <dt>Finished</dt>
              <dd>{formatDate(b.finishedAt)}</dd>
            </div>
          </dl>
        </Card>
      </div>
      <Dialog
        isOpen={isConfirmingCancel}
        onClose={() => setConfirmingCancel(false)}
        title="Cancel this build?"
        description="The worker stops at its next checkpoint. You can retry the build later with the same options."
        actions={
          <>
            <Button variant="ghost" onClick={() => setConfirmingCancel(false)}>
              Keep building
            </Button>
            <Button variant="danger" isLoading={cancel.isPending} onClick={() => cancel.mutate()}>
              Cancel build
            </Button>
          </>
        }
      />
    </>
  );
}

type LogLine = { at: string | Date; level?: string; message: string };

/** The build's log, following the newest line while the build runs (unless the reader scrolled up). */
function BuildLog({ lines, isLive }: { lines: LogLine[]; isLive: boolean }) {
  const ref = useRef<HTMLPreElement>(null);
  const isPinned = useRef(true);
  // biome-ignore lint/correctness/useExhaustiveDependencies: scroll when new lines arrive
  useEffect(() => {
    const el = ref.current;
    if (el && isLive && isPinned.current) el.scrollTop = el.scrollHeight;
  }, [lines.length, isLive]);
  if (lines.length === 0) return <p className="ui-hint">No log lines yet.</p>;
  return (
    <pre
      ref={ref}
      className="log"
      tabIndex={0}
      aria-label="Build log"
      aria-live={isLive ? "polite" : undefined}
      onScroll={(e) => {
        const el = e.currentTarget;
        isPinned.current = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
      }}
    >
      {lines.map((line, i) => (
        // Log lines are append-only; their position is their identity.
        // biome-ignore lint/suspicious/noArrayIndexKey: append-only list
        <span key={i} className={line.level === "error" ? "log__line log__line--error" : "log__line"}>
          <span className="log__time">{new Date(line.at).toISOString().slice(11, 19)}</span> {line.message}
          {"\n"}
        </span>
      ))}
    </pre>
  );
}
