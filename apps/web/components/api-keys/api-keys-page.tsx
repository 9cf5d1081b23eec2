"use client";

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useState } from "react";
import { PageHeader } from "@/components/shell/app-shell";
import {
  Badge,
  Button,
  Card,
  CopyField,
  Dialog,
  EmptyState,
  ErrorState,
  Field,
  focusFirstInvalid,
  Input,
  Select,
  Skeleton,
  StatusBadge,
  Table,
  useToast,
} from "@/components/ui";
import { formatDate, formatRelative } from "@/lib/format";
import { errorMessage, keys, type RouterOutputs, useApi } from "@/lib/trpc";

type ApiKeyRow = RouterOutputs["apiKeys"]["list"][number];

const scopeChoices = [
  { value: "inference", label: "Inference", hint: "call deployments" },
  { value: "read-only", label: "Read-only", hint: "list models, builds and usage" },
  { value: "admin", label: "Admin", hint: "manage everything the API allows" },
] as const;
type Scope = (typeof scopeChoices)[number]["value"];

export function ApiKeysPage() {
  const api = useApi();
  const queryClient = useQueryClient();
  const toast = useToast();
  const apiKeys = useQuery({ queryKey: keys.of("apiKeys.list"), queryFn: () => api.apiKeys.list.query() });
  const deployments = useQuery({ queryKey: keys.of("deployments.list"), queryFn: () => api.deployments.list.query() });
  const deploymentNames = new Map((deployments.data ?? []).map((d) => [d.id, d.name]));
  const [isCreating, setCreating] = useState(false);
  const [created, setCreated] = useState<{ name: string; secret: string }>();
  const [revoking, setRevoking] = useState<ApiKeyRow>();
  const revoke = useMutation({
    mutationFn: (keyId: string) => api.apiKeys.revoke.mutate({ keyId }),
    onSuccess: async () => {
      toast.show(`Revoked ${revoking?.name ?? "the key"}`);
      setRevoking(undefined);
      await queryClient.invalidateQueries({ queryKey: keys.of("apiKeys") });
    },
    onError: (e) => toast.show(errorMessage(e), "danger"),
  });

  return (
    <>
      <PageHeader
        title="API keys"
        description="Keys authenticate calls to your deployments. A key is shown once, when you create it; Kiln keeps only its hash."
        actions={
          <Button variant="primary" onClick={() => setCreating(true)}>
            Create API key
          </Button>
        }
      />
      {created ? (
        <Card title={`Your new key “${created.name}”`} className="secret-card">
          <p className="ui-callout ui-callout--warning">
            Copy it now and store it somewhere safe. You will not be able to see it again.
          </p>
          <CopyField label="API key" value={created.secret} />
          <Button variant="secondary" onClick={() => setCreated(undefined)}>
            I have stored the key
          </Button>
        </Card>
      ) : null}
      {apiKeys.isLoading ? (
        <Skeleton lines={3} label="Loading API keys" />
      ) : apiKeys.error ? (
        <ErrorState message={errorMessage(apiKeys.error)} onRetry={() => apiKeys.refetch()} />
      ) : apiKeys.data && apiKeys.data.length > 0 ? (
        <Table<ApiKeyRow>
          caption="API keys"
          rows={apiKeys.data}
          rowKey={(k) => k.id}
          columns={[
            { key: "name", header: "Name", cell: (k) => <strong>{k.name}</strong> },
            { key: "prefix", header: "Key", cell: (k) => <span className="ui-mono">{k.prefix}…</span> },
            {
              key: "scopes",
              header: "Scopes",
              cell: (k) => (
                <span className="row">
                  {k.scopes.map((s) => (
                    <Badge key={s} tone={s === "admin" ? "warning" : "info"}>
                      {s}
                    </Badge>
                  ))}
                  {k.deploymentId ? <Badge>only {deploymentNames.get(k.deploymentId) ?? k.deploymentId}</Badge> : null}
                </span>
              ),
            },
            { key: "used", header: "Last used", cell: (k) => formatRelative(k.lastUsedAt) },
            { key: "created", header: "Created", cell: (k) => formatDate(k.createdAt) },
            {
              key: "status",
              header: "Status",
              cell: (k) => <StatusBadge status={k.revokedAt ? "revoked" : "active"} />,
            },
            {
              key: "actions",
              header: <span className="ui-visually-hidden">Actions</span>,
              cell: (k) =>
                k.revokedAt ? null : (
                  <Button size="sm" variant="ghost" onClick={() => setRevoking(k)} aria-label={`Revoke ${k.name}`}>
                    Revoke
                  </Button>
                ),
            },
          ]}
        />
      ) : (
        <EmptyState title="No API keys yet">
          Create a key to call your deployments from your own code. Give each app its own key, so you can revoke one
          without breaking the others.
        </EmptyState>
      )}
      <Dialog
        isOpen={isCreating}
        onClose={() => setCreating(false)}
        title="Create API key"
        description="Name the key after the app that will use it."
      >
        {isCreating ? (
          <CreateKeyForm
            onCancel={() => setCreating(false)}
            onCreated={(name, secret) => {
              setCreating(false);
              setCreated({ name, secret });
            }}
          />
        ) : null}
      </Dialog>
      <Dialog
        isOpen={revoking !== undefined}
        onClose={() => setRevoking(undefined)}
        title={`Revoke “${revoking?.name ?? ""}”?`}
        description="Requests with this key are refused within seconds. This cannot be undone; apps using it need a new key."
        actions={
          <>
            <Button variant="ghost" onClick={() => setRevoking(undefined)}>
              Keep key
            </Button>
            <Button
              variant="danger"
              isLoading={revoke.isPending}
              onClick={() => revoking && revoke.mutate(revoking.id)}
            >
              Revoke key
            </Button>
          </>
        }
      />
    </>
  );
}

function CreateKeyForm({
  onCancel,
  onCreated,
}: {
  onCancel: () => void;
  onCreated: (name: string, secret: string) => void;
}) {
  const api = useApi();
  const queryClient = useQueryClient();
  const [name, setName] = useState("");
  const [scopes, setScopes] = useState<Scope[]>(["inference"]);
  const [deploymentId, setDeploymentId] = useState("");
  const [errors, setErrors] = useState<{ name?: string; scopes?: string; form?: string }>({});
  const deployments = useQuery({ queryKey: keys.of("deployments.list"), queryFn: () => api.deployments.list.query() });
  const create = useMutation({
    mutationFn: () => api.apiKeys.create.mutate({ name: name.trim(), scopes, deploymentId: deploymentId || null }),
    onSuccess: async (result) => {
      await queryClient.invalidateQueries({ queryKey: keys.of("apiKeys") });
      onCreated(name.trim(), result.key);
    },
    onError: (e) => setErrors({ form: errorMessage(e) }),
  });

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const found = {
      name: !name.trim() ? "Name the key." : name.trim().length > 64 ? "Use at most 64 characters." : undefined,
      scopes: scopes.length === 0 ? "Choose at least one scope." : undefined,
    };
    setErrors(found);
    if (!found.name && !found.scopes) create.mutate();
    else focusFirstInvalid(event.currentTarget as HTMLFormElement);
  };

  const toggle = (scope: Scope) =>
    setScopes((current) => (current.includes(scope) ? current.filter((s) => s !== scope) : [...current, scope]));

  return (
    <form onSubmit={submit} noValidate>
      {errors.form ? (
        <p className="ui-callout ui-callout--danger" role="alert">
          {errors.form}
        </p>
      ) : null}
      <Field label="Name" error={errors.name}>
        <Input
          name="keyName"
          value={name}
          autoFocus
          placeholder="checkout-service"
          onChange={(e) => setName(e.target.value)}
        />
      </Field>
      <fieldset className="ui-checks" aria-describedby={errors.scopes ? "scopes-error" : undefined}>
        <legend>Scopes</legend>
        {scopeChoices.map((choice) => (
          <label key={choice.value} className="ui-check">
            <input
              type="checkbox"
              name="scopes"
              value={choice.value}
              checked={scopes.includes(choice.value)}
              onChange={() => toggle(choice.value)}
            />
            {choice.label} <span className="ui-hint">— {choice.hint}</span>
          </label>
        ))}
        {errors.scopes ? (
          <p className="ui-error" id="scopes-error" role="alert">
            {errors.scopes}
          </p>
        ) : null}
      </fieldset>
      <Field
        label="Deployments"
        hint={
          deployments.error
            ? `Could not list deployments (${errorMessage(deployments.error)}); the key will work for all of them.`
            : "Limit the key to one deployment, or let it call any of them."
        }
      >
        <Select
          name="deploymentId"
          value={deploymentId}
          disabled={deployments.isLoading || Boolean(deployments.error)}
          onChange={(e) => setDeploymentId(e.target.value)}
          options={[
            { value: "", label: deployments.isLoading ? "Loading deployments…" : "All deployments" },
            ...(deployments.data ?? []).map((d) => ({ value: d.id, label: `Only ${d.name}` })),
          ]}
        />
      </Field>
      <div className="ui-dialog__actions">
        <Button variant="ghost" onClick={onCancel}>
          Cancel
        </Button>
        <Button type="submit" variant="primary" isLoading={create.isPending}>
          Create key
        </Button>
      </div>
    </form>
  );
}
