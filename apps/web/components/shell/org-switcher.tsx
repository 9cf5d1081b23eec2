"use client";

import { useMutation, useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useState } from "react";
import { Button, Dialog, Field, focusFirstInvalid, Input, Skeleton, useToast } from "@/components/ui";
import { errorMessage, useApi } from "@/lib/trpc";
import { useActiveOrg } from "./active-org";

export function OrgSwitcher() {
  const { org, orgs, isLoading, switchOrg } = useActiveOrg();
  const [isCreating, setCreating] = useState(false);

  if (isLoading) return <Skeleton lines={1} label="Loading organizations" />;
  return (
    <div className="org-switcher">
      {orgs.length > 0 ? (
        <>
          <label className="ui-label org-switcher__label" htmlFor="org-switcher">
            Organization
          </label>
          <select
            id="org-switcher"
            className="ui-input ui-select"
            value={org?.id ?? ""}
            onChange={(event) => switchOrg(event.target.value)}
          >
            {orgs.map((o) => (
              <option key={o.id} value={o.id}>
                {o.name}
              </option>
            ))}
          </select>
        </>
      ) : null}
      <Button size="sm" variant="ghost" onClick={() => setCreating(true)}>
        + New organization
      </Button>
      <CreateOrgDialog isOpen={isCreating} onClose={() => setCreating(false)} />
    </div>
  );
}

export function CreateOrgDialog({ isOpen, onClose }: { isOpen: boolean; onClose: () => void }) {
  return (
    <Dialog
      isOpen={isOpen}
      onClose={onClose}
      title="New organization"
      description="An organization owns models, builds, deployments, API keys and the bill. You can invite people later."
    >
      {isOpen ? <CreateOrgForm onDone={onClose} onCancel={onClose} /> : null}
    </Dialog>
  );
}

export function orgNameProblem(name: string): string | undefined {
  const trimmed = name.trim();
  if (trimmed.length < 2) return "Use at least 2 characters.";
  if (trimmed.length > 80) return "Use at most 80 characters.";
  return undefined;
}

/** The create-organization form, used in the dialog and on the first-run screen. */
export function CreateOrgForm({ onDone, onCancel }: { onDone?: () => void; onCancel?: () => void }) {
  const api = useApi();
  const queryClient = useQueryClient();
  const toast = useToast();
  const [name, setName] = useState("");
  const [error, setError] = useState<string>();
  const create = useMutation({
    mutationFn: (input: { name: string }) => api.orgs.create.mutate(input),
    onSuccess: async (org) => {
      // The server made the new organization the active one; start from a clean cache.
      await queryClient.resetQueries();
      toast.show(`Created ${org.name}`);
      onDone?.();
    },
    onError: (e) => setError(errorMessage(e)),
  });

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const problem = orgNameProblem(name);
    setError(problem);
    if (problem) focusFirstInvalid(event.currentTarget as HTMLFormElement);
    else create.mutate({ name: name.trim() });
  };

  return (
    <form onSubmit={submit} noValidate>
      <Field label="Organization name" error={error}>
        <Input
          name="orgName"
          value={name}
          autoFocus
          placeholder="Acme Vision"
          onChange={(e) => {
            setName(e.target.value);
            if (error) setError(orgNameProblem(e.target.value));
          }}
        />
      </Field>
      <div className="ui-dialog__actions">
        {onCancel ? (
          <Button variant="ghost" onClick={onCancel}>
            Cancel
          </Button>
        ) : null}
        <Button type="submit" variant="primary" isLoading={create.isPending}>
          Create organization
        </Button>
      </div>
    </form>
  );
}
