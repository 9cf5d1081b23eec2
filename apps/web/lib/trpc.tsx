"use client";

import type { AppRouter } from "@kiln/api";
import { createTRPCClient, httpBatchLink, type TRPCClient } from "@trpc/client";
import type { inferRouterInputs, inferRouterOutputs } from "@trpc/server";
import { createContext, type ReactNode, useContext } from "react";
import superjson from "superjson";

// The dashboard calls tRPC through the typed vanilla client and caches with TanStack Query directly.
// (@trpc/tanstack-react-query pins @trpc/server to its own exact version, older than the server's;
// a query key per procedure path is all the integration would add.)
export type ApiClient = TRPCClient<AppRouter>;
export type RouterOutputs = inferRouterOutputs<AppRouter>;
export type RouterInputs = inferRouterInputs<AppRouter>;

export function createApiClient(): ApiClient {
  return createTRPCClient<AppRouter>({
    links: [httpBatchLink({ url: "/api/trpc", transformer: superjson })],
  });
}

const ApiContext = createContext<ApiClient | null>(null);

export function ApiProvider({ client, children }: { client: ApiClient; children: ReactNode }) {
  return <ApiContext.Provider value={client}>{children}</ApiContext.Provider>;
}

export function useApi(): ApiClient {
  const client = useContext(ApiContext);
  if (!client) throw new Error("useApi() must be used inside <ApiProvider>");
  return client;
}

/**
 * Query keys follow the procedure path, so invalidating ["models"] refreshes every models query and
 * ["models", "get"] only the detail views.
 */
export const keys = {
  of: (path: string, input?: unknown) => (input === undefined ? path.split(".") : [...path.split("."), input]),
};

/** The message of a tRPC error, or a generic one for failures that never reached the server. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error && error.message) return error.message;
  return "The request failed. Check your connection and try again.";
}
