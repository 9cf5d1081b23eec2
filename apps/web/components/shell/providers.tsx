"use client";

import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { type ReactNode, useState } from "react";
import { ToastProvider } from "@/components/ui";
import { ApiProvider, createApiClient } from "@/lib/trpc";
import { ActiveOrgProvider } from "./active-org";

const PERMANENT_CODES = new Set(["NOT_FOUND", "FORBIDDEN", "UNAUTHORIZED", "BAD_REQUEST", "PRECONDITION_FAILED"]);

function makeQueryClient() {
  return new QueryClient({
    defaultOptions: {
      queries: {
        staleTime: 10_000,
        // NOT_FOUND, FORBIDDEN and bad input will not fix themselves; only retry what might.
        retry: (failures, error) => {
          const code = (error as { data?: { code?: string } }).data?.code ?? "";
          return failures < 2 && !PERMANENT_CODES.has(code);
        },
      },
    },
  });
}

export function DashboardProviders({ children }: { children: ReactNode }) {
  const [queryClient] = useState(makeQueryClient);
  const [apiClient] = useState(createApiClient);
  return (
    <QueryClientProvider client={queryClient}>
      <ApiProvider client={apiClient}>
        <ToastProvider>
          <ActiveOrgProvider>{children}</ActiveOrgProvider>
        </ToastProvider>
      </ApiProvider>
    </QueryClientProvider>
  );
}
