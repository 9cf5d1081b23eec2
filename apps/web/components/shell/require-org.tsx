"use client";

import type { ReactNode } from "react";
import { Card, ErrorState, Skeleton } from "@/components/ui";
import { useActiveOrg } from "./active-org";
import { CreateOrgForm } from "./org-switcher";

/** Dashboard pages work inside an organization; a new account is asked to create its first one. */
export function RequireOrg({ children }: { children: ReactNode }) {
  const { org, isLoading, error } = useActiveOrg();
  if (isLoading) return <Skeleton lines={4} label="Loading your organizations" />;
  if (error) return <ErrorState message={error} onRetry={() => window.location.reload()} />;
  if (!org) {
    return (
      <div className="first-run">
        <h1>Welcome to Kiln</h1>
        <p className="page-description">
          Create an organization to upload models, build engines and deploy them. You will be its owner.
        </p>
        <Card>
          <CreateOrgForm />
        </Card>
      </div>
    );
  }
  // Keyed by org so a switch remounts the page and no state from the previous org survives.
  return <div key={org.id}>{children}</div>;
}
