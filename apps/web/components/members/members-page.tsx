"use client";

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useState } from "react";
import { useActiveOrg } from "@/components/shell/active-org";
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
  Table,
  useToast,
} from "@/components/ui";
import { emailProblem } from "@/lib/credentials";
import { formatDate } from "@/lib/format";
import { isAtLeast } from "@/lib/navigation";
import { errorMessage, keys, type RouterOutputs, useApi } from "@/lib/trpc";

type Member = RouterOutputs["orgs"]["members"][number];
type Role = "owner" | "admin" | "member";

const roleOptions = [
  { value: "member", label: "Member — uses models, builds and deployments" },
  { value: "admin", label: "Admin — also manages keys, members, billing" },
  { value: "owner", label: "Owner — everything, including deleting the org" },
];

export function MembersPage() {
  const api = useApi();
  const { org } = useActiveOrg();
  const queryClient = useQueryClient();
  const toast = useToast();
  const canManage = isAtLeast(org?.role, "admin");
  const members = useQuery({ queryKey: keys.of("orgs.members"), queryFn: () => api.orgs.members.query() });
  const setRole = useMutation({
    mutationFn: (input: { userId: string; role: Role }) => api.orgs.changeRole.mutate(input),
    onSuccess: async () => {
      toast.show("Role updated");
      await queryClient.invalidateQueries({ queryKey: keys.of("orgs") });
    },
    onError: (e) => toast.show(errorMessage(e), "danger"),
  });

  const [removing, setRemoving] = useState<Member>();
  const remove = useMutation({
    mutationFn: (userId: string) => api.orgs.removeMember.mutate({ userId }),
    onSuccess: async () => {
      toast.show(`Removed ${removing?.name ?? "the member"}`);
      setRemoving(undefined);
      await queryClient.invalidateQueries({ queryKey: keys.of("orgs") });
    },
    onError: (e) => {
      setRemoving(undefined);
      toast.show(errorMessage(e), "danger");
    },
  });

  return (
    <>
      <Dialog
        isOpen={removing !== undefined}
        onClose={() => setRemoving(undefined)}
        title={`Remove ${removing?.name ?? ""}?`}
        description={`${removing?.email ?? ""} loses access to ${org?.name ?? "this organization"} at once. You can invite them again later.`}
        actions={
          <>
            <Button variant="ghost" onClick={() => setRemoving(undefined)}>
              Keep member
            </Button>
            <Button
              variant="danger"
              isLoading={remove.isPending}
              onClick={() => removing && remove.mutate(removing.userId)}
            >
              Remove member
            </Button>
          </>
        }
      />
      <PageHeader title="Members" description={`People in ${org?.name ?? "this organization"} and what they may do.`} />
      {canManage ? <InviteCard /> : null}
      {canManage ? <PendingInvitations /> : null}
      {members.isLoading ? (
        <Skeleton lines={3} label="Loading members" />
      ) : members.error ? (
        <ErrorState message={errorMessage(members.error)} onRetry={() => members.refetch()} />
      ) : members.data && members.data.length > 0 ? (
        <Table<Member>
          caption="Members"
          rows={members.data}
          rowKey={(m) => m.userId}
          columns={[
            {
              key: "who",
              header: "Member",
              cell: (m) => (
                <span className="stack-tight">
                  <strong>{m.name}</strong>
                  <span className="ui-hint">{m.email}</span>
                </span>
              ),
            },
            {
              key: "role",
              header: "Role",
              cell: (m) =>
                canManage ? (
                  <Select
                    className="role-select"
                    aria-label={`Role of ${m.name}`}
                    value={m.role}
                    disabled={setRole.isPending}
                    onChange={(e) => setRole.mutate({ userId: m.userId, role: e.target.value as Role })}
                    options={roleOptions.map((o) => ({ value: o.value, label: o.value }))}
                  />
                ) : (
                  <Badge tone={m.role === "member" ? "neutral" : "info"}>{m.role}</Badge>
                ),
            },
            { key: "since", header: "Joined", cell: (m) => formatDate(m.joinedAt) },
            ...(canManage
              ? [
                  {
                    key: "actions",
                    header: <span className="ui-visually-hidden">Actions</span>,
                    cell: (m: Member) => (
                      <Button size="sm" variant="ghost" aria-label={`Remove ${m.name}`} onClick={() => setRemoving(m)}>
                        Remove
                      </Button>
                    ),
                  },
                ]
              : []),
          ]}
        />
      ) : (
        <EmptyState title="No members">Invite someone to work with you.</EmptyState>
      )}
    </>
  );
}

function InviteCard() {
  const api = useApi();
  const queryClient = useQueryClient();
  const [email, setEmail] = useState("");
  const [role, setRoleChoice] = useState<Role>("member");
  const [error, setError] = useState<string>();
  const [link, setLink] = useState<{ email: string; url: string }>();
  const invite = useMutation({
    mutationFn: () => api.orgs.invite.mutate({ email: email.trim(), role }),
    onSuccess: async (result) => {
      setLink({ email: email.trim(), url: result.inviteUrl });
      setEmail("");
      await queryClient.invalidateQueries({ queryKey: keys.of("orgs") });
    },
    onError: (e) => setError(errorMessage(e)),
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const problem = emailProblem(email);
    setError(problem);
    if (!problem) invite.mutate();
    else focusFirstInvalid(event.currentTarget as HTMLFormElement);
  };
  return (
    <Card title="Invite someone">
      <form onSubmit={submit} noValidate className="invite-form">
        <Field label="Email" error={error}>
          <Input type="email" name="inviteEmail" value={email} onChange={(e) => setEmail(e.target.value)} />
        </Field>
        <Field label="Role">
          <Select
            name="inviteRole"
            value={role}
            onChange={(e) => setRoleChoice(e.target.value as Role)}
            options={roleOptions}
          />
        </Field>
        <Button type="submit" variant="primary" isLoading={invite.isPending}>
          Create invite link
        </Button>
      </form>
      {link ? (
        <div className="ui-callout ui-callout--success">
          <p>
            Send this link to <strong>{link.email}</strong>. It works once, for that email address, for 7 days.
          </p>
          <CopyField label="Invite link" value={link.url} />
        </div>
      ) : null}
    </Card>
  );
}

function PendingInvitations() {
  const api = useApi();
  const queryClient = useQueryClient();
  const toast = useToast();
  const invitations = useQuery({ queryKey: keys.of("orgs.invitations"), queryFn: () => api.orgs.invitations.query() });
  const cancel = useMutation({
    mutationFn: (invitationId: string) => api.orgs.cancelInvitation.mutate({ invitationId }),
    onSuccess: async () => {
      toast.show("Invitation canceled");
      await queryClient.invalidateQueries({ queryKey: keys.of("orgs.invitations") });
    },
    onError: (e) => toast.show(errorMessage(e), "danger"),
  });
  if (invitations.isLoading) return <Skeleton lines={1} label="Loading invitations" />;
  if (invitations.error)
    return <ErrorState message={errorMessage(invitations.error)} onRetry={() => invitations.refetch()} />;
  const pending = invitations.data ?? [];
  if (pending.length === 0) return null;
  return (
    <Card title="Pending invitations">
      <ul className="invitations">
        {pending.map((inv) => (
          <li key={inv.id}>
            <span>
              <strong>{inv.email}</strong> <Badge>{inv.role}</Badge>
              <span className="ui-hint"> · expires {formatDate(inv.expiresAt)}</span>
            </span>
            <Button
              size="sm"
              variant="ghost"
              aria-label={`Cancel the invitation of ${inv.email}`}
              isLoading={cancel.isPending && cancel.variables === inv.id}
              onClick={() => cancel.mutate(inv.id)}
            >
              Cancel
            </Button>
          </li>
        ))}
      </ul>
    </Card>
  );
}
