import { getSession } from "@kiln/auth";
import { headers } from "next/headers";
import { redirect } from "next/navigation";
import type { ReactNode } from "react";
import { AppShell } from "@/components/shell/app-shell";
import { DashboardProviders } from "@/components/shell/providers";
import { RequireOrg } from "@/components/shell/require-org";

// Every dashboard page needs the signed-in user, so none is prerendered.
export const dynamic = "force-dynamic";

export default async function DashboardLayout({ children }: { children: ReactNode }) {
  const session = await getSession(await headers());
  if (!session) redirect("/sign-in");
  return (
    <DashboardProviders>
      <AppShell user={{ name: session.user.name, email: session.user.email }}>
        <RequireOrg>{children}</RequireOrg>
      </AppShell>
    </DashboardProviders>
  );
}
