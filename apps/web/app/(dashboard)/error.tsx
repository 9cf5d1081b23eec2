"use client";

import { ErrorState } from "@/components/ui";

// A page that threw while rendering: say so in the frame, keep the navigation usable.
export default function DashboardError({ error, reset }: { error: Error & { digest?: string }; reset: () => void }) {
  return (
    <ErrorState
      title="This page could not be shown"
      message={`${error.message || "An unexpected error occurred."}${error.digest ? ` (reference ${error.digest})` : ""}`}
      onRetry={reset}
    />
  );
}
