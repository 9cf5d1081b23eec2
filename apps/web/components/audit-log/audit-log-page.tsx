"use client";

import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { useActiveOrg } from "@/components/shell/active-org";
import { PageHeader } from "@/components/shell/app-shell";
import { Badge, Button, EmptyState, ErrorState, Skeleton, Table } from "@/components/ui";
import { formatDate } from "@/lib/format";
import { isAtLeast } from "@/lib/navigation";
import { errorMessage, keys, type RouterOutputs, useApi } from "@/lib/trpc";

type Entry = RouterOutputs["auditLog"]["list"]["items"][number];
const PAGE_SIZE = 25;

export function AuditLogPage() {
  const { org } = useActiveOrg();
  if (!isAtLeast(org?.role, "admin")) {
    return (
      <>
        <PageHeader title="Audit log" />
        <ErrorState
          title="Admins only"
          message="Ask an owner or admin of this organization to look at the audit log."
        />
      </>
    );
  }
  return <AuditLogTable />;
}

function AuditLogTable() {
  const api = useApi();
  // Cursors of the pages already visited, so "Newer" can step back without the server keeping state.
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const cursor = cursors[cursors.length - 1];
  const page = useQuery({
    queryKey: keys.of("auditLog.list", { cursor, limit: PAGE_SIZE }),
    queryFn: () => api.auditLog.list.query({ cursor, limit: PAGE_SIZE }),
    placeholderData: keepPreviousData,
  });

  return (
    <>
      <PageHeader
        title="Audit log"
        description="Every change made in this organization: who did it, to what, when and from where."
      />
      {page.isLoading ? (
        <Skeleton lines={8} label="Loading the audit log" />
      ) : page.error ? (
        <ErrorState message={errorMessage(page.error)} onRetry={() => page.refetch()} />
      ) : page.data && page.data.items.length > 0 ? (
        <>
          <Table<Entry>
            caption="Audit log"
            rows={page.data.items}
            rowKey={(e) => e.id}
            columns={[
              { key: "time", header: "Time", cell: (e) => formatDate(e.createdAt) },
              { key: "actor", header: "Actor", cell: (e) => e.actorUser?.name ?? e.actorUser?.email ?? e.actorType },
              { key: "action", header: "Action", cell: (e) => <Badge tone="info">{e.action}</Badge> },
              {
                key: "target",
                header: "Target",
                cell: (e) => (e.targetId ? <span className="ui-mono">{e.targetId}</span> : (e.targetType ?? "—")),
              },
              { key: "ip", header: "IP", cell: (e) => <span className="ui-mono">{e.ip ?? "—"}</span> },
            ]}
          />
          <nav className="pager" aria-label="Audit log pages">
            <Button
              size="sm"
              disabled={cursors.length === 1 || page.isFetching}
              onClick={() => setCursors((c) => c.slice(0, -1))}
            >
              ← Newer
            </Button>
            <span className="ui-hint">Page {cursors.length}</span>
            <Button
              size="sm"
              disabled={!page.data.nextCursor || page.isFetching}
              onClick={() => setCursors((c) => [...c, page.data?.nextCursor ?? undefined])}
            >
              Older →
            </Button>
          </nav>
        </>
      ) : (
        <EmptyState title="Nothing recorded yet">
          Changes to models, builds, keys and members will appear here.
        </EmptyState>
      )}
    </>
  );
}
