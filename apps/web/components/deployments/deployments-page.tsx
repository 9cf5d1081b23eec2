"use client";

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useState } from "react";
import { PageHeader } from "@/components/shell/app-shell";
import {
  Button,
  Card,
  EmptyState,
  ErrorState,
  Field,
  Input,
  Select,
  Skeleton,
  StatusBadge,
  Table,
  useToast,
} from "@/components/ui";
import { formatRelative } from "@/lib/format";
import { errorMessage, keys, type RouterOutputs, useApi } from "@/lib/trpc";

type Deployment = RouterOutputs["deployments"]["list"][number];

const POLICY_FIELDS = [
  { key: "minReplicas", label: "Min replicas", hint: "0 scales to zero when idle", initial: 0 },
  { key: "maxReplicas", label: "Max replicas", hint: "Capped by your plan", initial: 1 },
  { key: "idleWindowSeconds", label: "Idle window (s)", hint: "Unload after this long without requests", initial: 300 },
  { key: "maxBatchSize", label: "Max batch size", hint: "Rows per dynamic batch", initial: 8 },
  {
    key: "maxQueueDelayMs",
    label: "Max queue delay (ms)",
    hint: "How long a request may wait for batch-mates",
    initial: 5,
  },
] as const;

export function DeploymentsPage() {
  const api = useApi();
  const queryClient = useQueryClient();
  const toast = useToast();
  const deployments = useQuery({
    queryKey: keys.of("deployments.list", {}),
    queryFn: () => api.deployments.list.query(),
    // Status and replica counts change on their own (cold starts, idle unloads).
    refetchInterval: 3_000,
  });
  const refresh = () => queryClient.invalidateQueries({ queryKey: ["deployments"] });
  const act = useMutation({
    mutationFn: ({ action, id }: { action: "drain" | "resume" | "delete"; id: string }) =>
      api.deployments[action].mutate({ id }),
    onSuccess: async (_result, { action }) => {
      toast.show(
        action === "delete" ? "Deployment deleted" : action === "drain" ? "Deployment draining" : "Deployment resumed",
      );
      await refresh();
    },
    onError: (error) => toast.show(errorMessage(error), "danger"),
  });

  const columns = [
    { key: "name", header: "Name", cell: (d: Deployment) => <strong>{d.name}</strong> },
    { key: "model", header: "Model", cell: (d: Deployment) => `${d.modelName} v${d.modelVersion} · ${d.target}` },
    { key: "status", header: "Status", cell: (d: Deployment) => <StatusBadge status={d.status} /> },
    {
      key: "replicas",
      header: "Replicas",
      isNumeric: true,
      cell: (d: Deployment) =>
        `${d.replicas.ready}${d.replicas.loading ? ` (+${d.replicas.loading} loading)` : ""} / ${d.policy.maxReplicas}`,
    },
    {
      key: "policy",
      header: "Batching",
      cell: (d: Deployment) =>
        `≤${d.policy.maxBatchSize} rows, ≤${d.policy.maxQueueDelayMs} ms; idle ${d.policy.idleWindowSeconds} s`,
    },
    { key: "created", header: "Created", cell: (d: Deployment) => formatRelative(d.createdAt) },
    {
      key: "actions",
      header: <span className="ui-visually-hidden">Actions</span>,
      cell: (d: Deployment) => (
        <div style={{ display: "flex", gap: 8 }}>
          {d.status === "draining" ? (
            <Button size="sm" onClick={() => act.mutate({ action: "resume", id: d.id })}>
              Resume
            </Button>
          ) : (
            <Button size="sm" onClick={() => act.mutate({ action: "drain", id: d.id })}>
              Drain
            </Button>
          )}
          <Button size="sm" variant="danger" onClick={() => act.mutate({ action: "delete", id: d.id })}>
            Delete
          </Button>
        </div>
      ),
    },
  ];

  return (
    <>
      <PageHeader
        title="Deployments"
        description="Engines served as endpoints: KServe v2 at /v2/models/<name>/infer with an API key."
      />
      <NewDeployment onCreated={refresh} />
      {deployments.isLoading ? (
        <Skeleton lines={3} label="Loading deployments" />
      ) : deployments.error ? (
        <ErrorState message={errorMessage(deployments.error)} onRetry={() => deployments.refetch()} />
      ) : deployments.data && deployments.data.length > 0 ? (
        <Table caption="Deployments" columns={columns} rows={deployments.data} rowKey={(d) => d.id} />
      ) : (
        <EmptyState title="No deployments yet">Deploy a succeeded build with the form above.</EmptyState>
      )}
    </>
  );
}

function NewDeployment({ onCreated }: { onCreated: () => unknown }) {
  const api = useApi();
  const toast = useToast();
  const builds = useQuery({ queryKey: keys.of("builds.list", {}), queryFn: () => api.builds.list.query({}) });
  const succeeded = (builds.data ?? []).filter((b) => b.status === "succeeded");
  const [name, setName] = useState("");
  const [buildId, setBuildId] = useState("");
  const [policy, setPolicy] = useState<Record<string, number>>(
    Object.fromEntries(POLICY_FIELDS.map((f) => [f.key, f.initial])),
  );
  const [error, setError] = useState<string | null>(null);
  const create = useMutation({
    mutationFn: () => api.deployments.create.mutate({ name, buildId: buildId || (succeeded[0]?.id ?? ""), ...policy }),
    onSuccess: async () => {
      toast.show(`Deployment ${name} created`);
      setName("");
      setError(null);
      await onCreated();
    },
    onError: (e) => setError(errorMessage(e)),
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    create.mutate();
  };
  return (
    <Card title="New deployment">
      <form
        onSubmit={submit}
        style={{ display: "grid", gap: 12, gridTemplateColumns: "repeat(auto-fit, minmax(180px, 1fr))" }}
      >
        <Field label="Name" hint="Lowercase letters, digits and '-'; the model name clients call" error={error}>
          <Input value={name} onChange={(e) => setName(e.target.value)} required pattern="[a-z0-9][a-z0-9\-]*" />
        </Field>
        <Field label="Build">
          <Select
            value={buildId || (succeeded[0]?.id ?? "")}
            onChange={(e) => setBuildId(e.target.value)}
            options={
              succeeded.length > 0
                ? succeeded.map((b) => ({
                    value: b.id,
                    label: `${b.modelName} v${b.modelVersion} · ${b.target} · ${b.precision}`,
                  }))
                : [{ value: "", label: "No succeeded builds", disabled: true }]
            }
          />
        </Field>
        {POLICY_FIELDS.map((f) => (
          <Field key={f.key} label={f.label} hint={f.hint}>
            <Input
              type="number"
              min={0}
              value={policy[f.key]}
              onChange={(e) => setPolicy({ ...policy, [f.key]: Number(e.target.value) })}
            />
          </Field>
        ))}
        <div style={{ alignSelf: "end" }}>
          <Button type="submit" variant="primary" disabled={create.isPending || succeeded.length === 0}>
            Deploy
          </Button>
        </div>
      </form>
    </Card>
  );
}
