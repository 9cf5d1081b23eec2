"use client";

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useRouter } from "next/navigation";
import { Button, ErrorState, Skeleton } from "@/components/ui";
import { formatDate } from "@/lib/format";
import { errorMessage, keys, useApi } from "@/lib/trpc";

export function AcceptInvitation({ invitationId, email }: { invitationId: string; email: string }) {
  const api = useApi();
  const router = useRouter();
  const queryClient = useQueryClient();
  const invitation = useQuery({
    queryKey: keys.of("orgs.invitation", { invitationId }),
    queryFn: () => api.orgs.invitation.query({ invitationId }),
  });
  const accept = useMutation({
    mutationFn: () => api.orgs.accept.mutate({ invitationId }),
    onSuccess: async () => {
      await queryClient.resetQueries();
      router.push("/models");
    },
  });

  if (invitation.isLoading) return <Skeleton lines={3} label="Loading the invitation" />;
  if (invitation.error || !invitation.data) {
    return (
      <ErrorState
        title="Invitation not found"
        message={`There is no open invitation for ${email} at this link. Check that you signed in with the invited address.`}
      />
    );
  }
  const inv = invitation.data;
  return (
    <div>
      <h1 className="auth-title">Join {inv.orgName}</h1>
      <p>
        You were invited as <strong>{inv.role}</strong>. The invitation is for {inv.email} and expires{" "}
        {formatDate(inv.expiresAt)}.
      </p>
      {accept.error ? (
        <p className="ui-callout ui-callout--danger" role="alert">
          {errorMessage(accept.error)}
        </p>
      ) : null}
      <Button
        variant="primary"
        className="auth-submit"
        isLoading={accept.isPending}
        disabled={inv.status !== "pending"}
        onClick={() => accept.mutate()}
      >
        {inv.status === "pending" ? `Join ${inv.orgName}` : `This invitation was ${inv.status}`}
      </Button>
    </div>
  );
}
