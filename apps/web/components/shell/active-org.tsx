"use client";

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { createContext, type ReactNode, useContext, useEffect, useMemo, useRef } from "react";
import { useToast } from "@/components/ui";
import { errorMessage, keys, type RouterOutputs, useApi } from "@/lib/trpc";

export type OrgSummary = RouterOutputs["orgs"]["listMine"][number];

type ActiveOrg = {
  org: OrgSummary | undefined;
  orgs: OrgSummary[];
  isLoading: boolean;
  error: string | undefined;
  switchOrg: (orgId: string) => void;
};

const ActiveOrgContext = createContext<ActiveOrg | null>(null);

/**
 * Which organization the dashboard is working in: the session's active organization, which the
 * server keeps (orgs.switch) and checks against the caller's memberships on every request.
 */
export function ActiveOrgProvider({ children }: { children: ReactNode }) {
  const api = useApi();
  const queryClient = useQueryClient();
  const toast = useToast();
  const orgsQuery = useQuery({ queryKey: keys.of("orgs.listMine"), queryFn: () => api.orgs.listMine.query() });
  const switchMutation = useMutation({
    mutationFn: (orgId: string) => api.orgs.switch.mutate({ orgId }),
    // Everything cached belongs to the previous organization.
    onSuccess: () => queryClient.resetQueries(),
    onError: (error) => toast.show(errorMessage(error), "danger"),
  });
  const { mutate: switchOrg } = switchMutation;

  const orgs = orgsQuery.data;
  const active = orgs?.find((o) => o.isActive);
  // A session without an active organization (new sign-in, or removed from the last one) picks the first.
  const fallback = !active ? orgs?.[0] : undefined;
  // Once per organization: a switch that fails is reported (toast), not retried in a loop.
  const attempted = useRef<string>(undefined);
  useEffect(() => {
    if (!fallback || attempted.current === fallback.id) return;
    attempted.current = fallback.id;
    switchOrg(fallback.id);
  }, [fallback, switchOrg]);

  const value = useMemo<ActiveOrg>(
    () => ({
      org: active,
      orgs: orgs ?? [],
      // Still loading while a fallback switch is on its way, so pages never run without an org.
      isLoading: orgsQuery.isLoading || (Boolean(fallback) && !switchMutation.isError),
      error: orgsQuery.error
        ? errorMessage(orgsQuery.error)
        : switchMutation.error
          ? errorMessage(switchMutation.error)
          : undefined,
      switchOrg,
    }),
    [
      active,
      orgs,
      orgsQuery.isLoading,
      orgsQuery.error,
      fallback,
      switchMutation.isError,
      switchMutation.error,
      switchOrg,
    ],
  );

  return <ActiveOrgContext.Provider value={value}>{children}</ActiveOrgContext.Provider>;
}

export function useActiveOrg(): ActiveOrg {
  const value = useContext(ActiveOrgContext);
  if (!value) throw new Error("useActiveOrg() must be used inside <ActiveOrgProvider>");
  return value;
}
