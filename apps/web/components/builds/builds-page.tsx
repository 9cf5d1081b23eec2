"use client";

import { useQuery } from "@tanstack/react-query";
import Link from "next/link";
import { PageHeader } from "@/components/shell/app-shell";
import { buttonClass, EmptyState, ErrorState, Skeleton, Tabs } from "@/components/ui";
import { errorMessage, keys, useApi } from "@/lib/trpc";
import { BuildsTable } from "./builds-table";

const isActive = (status: string) => status === "queued" || status === "running";

const filters = [
  { id: "all", label: "All", matches: () => true },
  { id: "active", label: "In progress", matches: isActive },
  { id: "succeeded", label: "Succeeded", matches: (s: string) => s === "succeeded" },
  { id: "failed", label: "Failed or canceled", matches: (s: string) => s === "failed" || s === "canceled" },
];

export function BuildsPage() {
  const api = useApi();
  const builds = useQuery({
    queryKey: keys.of("builds.list", {}),
    queryFn: () => api.builds.list.query({}),
    // Keep statuses current while anything is still in flight.
    refetchInterval: (query) => (query.state.data?.some((b) => isActive(b.status)) ? 2_000 : false),
  });
  return (
    <>
      <PageHeader title="Builds" description="Engines compiled from your model versions, newest first." />
      {builds.isLoading ? (
        <Skeleton lines={4} label="Loading builds" />
      ) : builds.error ? (
        <ErrorState message={errorMessage(builds.error)} onRetry={() => builds.refetch()} />
      ) : builds.data && builds.data.length > 0 ? (
        <Tabs
          label="Builds by status"
          tabs={filters.map((filter) => {
            const matching = builds.data.filter((b) => filter.matches(b.status));
            return {
              id: filter.id,
              label: `${filter.label} (${matching.length})`,
              content:
                matching.length > 0 ? (
                  <BuildsTable builds={matching} showModel />
                ) : (
                  <EmptyState title={`No ${filter.label.toLowerCase()} builds`} />
                ),
            };
          })}
        />
      ) : (
        <EmptyState
          title="No builds yet"
          action={
            <Link className={buttonClass("primary")} href="/models">
              Choose a model
            </Link>
          }
        >
          Open a model and press “Build this version” to compile it for a CPU or GPU target.
        </EmptyState>
      )}
    </>
  );
}
