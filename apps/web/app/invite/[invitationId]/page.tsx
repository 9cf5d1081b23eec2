import { getSession } from "@kiln/auth";
import type { Metadata } from "next";
import { headers } from "next/headers";
import { redirect } from "next/navigation";
import { AcceptInvitation } from "@/components/members/accept-invitation";
import { DashboardProviders } from "@/components/shell/providers";

export const metadata: Metadata = { title: "Invitation · Kiln" };
export const dynamic = "force-dynamic";

export default async function Page({ params }: { params: Promise<{ invitationId: string }> }) {
  const { invitationId } = await params;
  const session = await getSession(await headers());
  // People usually open the link before they have an account; bring them back here afterwards.
  if (!session) redirect(`/sign-up?next=${encodeURIComponent(`/invite/${invitationId}`)}`);
  return (
    <main className="auth-page">
      <div className="auth-card">
        <DashboardProviders>
          <AcceptInvitation invitationId={invitationId} email={session.user.email} />
        </DashboardProviders>
      </div>
    </main>
  );
}
