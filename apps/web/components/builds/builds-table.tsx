"use client";

import Link from "next/link";
import { StatusBadge, Table } from "@/components/ui";
import { formatDate } from "@/lib/format";
import type { RouterOutputs } from "@/lib/trpc";

type BuildRow = RouterOutputs["builds"]["list"][number];

export function BuildsTable({ builds, showModel = false }: { builds: BuildRow[]; showModel?: boolean }) {
  return (
    <Table<BuildRow>
      caption="Builds"
      rows={builds}
      rowKey={(b) => b.id}
      columns={[
        {
          key: "id",
          header: "Build",
          cell: (b) => (
            <Link href={`/builds/${b.id}`} className="ui-mono">
              {b.id}
            </Link>
          ),
        },
        ...(showModel
          ? [{ key: "model", header: "Model", cell: (b: BuildRow) => `${b.modelName} v${b.modelVersion}` }]
          : []),
        { key: "target", header: "Target", cell: (b) => b.target },
        { key: "precision", header: "Precision", cell: (b) => b.precision.toUpperCase() },
        { key: "status", header: "Status", cell: (b) => <StatusBadge status={b.status} /> },
        { key: "created", header: "Started", cell: (b) => formatDate(b.createdAt) },
      ]}
    />
  );
}
