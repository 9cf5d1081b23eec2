"use client";

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useState } from "react";
import { useActiveOrg } from "@/components/shell/active-org";
import { PageHeader } from "@/components/shell/app-shell";
import {
  Badge,
  Button,
  Card,
  EmptyState,
  ErrorState,
  Field,
  Input,
  Progress,
  Skeleton,
  StatusBadge,
  Table,
  useToast,
} from "@/components/ui";
import { formatCount, formatDate } from "@/lib/format";
import { isAtLeast } from "@/lib/navigation";
import { errorMessage, keys, type RouterOutputs, useApi } from "@/lib/trpc";

type Overview = RouterOutputs["billing"]["overview"];
type Invoice = RouterOutputs["billing"]["invoices"][number];
type PlanId = Overview["plans"][number]["id"];

export const formatCents = (cents: number) =>
  new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" }).format(cents / 100);

export function BillingPage() {
  const { org } = useActiveOrg();
  if (!isAtLeast(org?.role, "admin")) {
    return (
      <>
        <PageHeader title="Billing" />
        <ErrorState title="Admins only" message="Ask an owner or admin of this organization to manage billing." />
      </>
    );
  }
  return <BillingDashboard />;
}

function BillingDashboard() {
  const api = useApi();
  const overview = useQuery({ queryKey: keys.of("billing.overview"), queryFn: () => api.billing.overview.query() });
  const invoices = useQuery({ queryKey: keys.of("billing.invoices"), queryFn: () => api.billing.invoices.query() });

  return (
    <>
      <PageHeader
        title="Billing"
        description="Your plan, this period's usage against what it includes, the projected invoice and past invoices."
        actions={overview.data?.isBillingConfigured ? <PortalButton /> : null}
      />
      {overview.isLoading ? (
        <Skeleton lines={4} label="Loading billing" />
      ) : overview.error ? (
        <ErrorState message={errorMessage(overview.error)} onRetry={() => overview.refetch()} />
      ) : overview.data ? (
        <div className="stack">
          <Notices overview={overview.data} />
          <CurrentPlan overview={overview.data} />
          <Usage overview={overview.data} />
          <SpendCap overview={overview.data} />
          <Plans overview={overview.data} />
          <Card title="Invoices">
            {invoices.isLoading ? (
              <Skeleton lines={2} label="Loading invoices" />
            ) : invoices.error ? (
              <ErrorState message={errorMessage(invoices.error)} onRetry={() => invoices.refetch()} />
            ) : invoices.data && invoices.data.length > 0 ? (
              <InvoiceTable invoices={invoices.data} />
            ) : (
              <EmptyState title="No invoices yet">Invoices appear here once you subscribe to a paid plan.</EmptyState>
            )}
          </Card>
        </div>
      ) : null}
    </>
  );
}

function Notices({ overview }: { overview: Overview }) {
  const api = useApi();
  const queryClient = useQueryClient();
  const toast = useToast();
  const dismiss = useMutation({
    mutationFn: (noticeId: string) => api.billing.dismissNotice.mutate({ noticeId }),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: keys.of("billing.overview") }),
    onError: (e) => toast.show(errorMessage(e), "danger"),
  });
  if (overview.notices.length === 0) return null;
  return (
    <section aria-label="Billing notices" className="stack-tight">
      {overview.notices.map((notice) => {
        const tone = notice.kind === "spend_cap_50" ? "warning" : "danger";
        return (
          <div key={notice.id} className={`ui-callout ui-callout--${tone} row`} role="status">
            <span>{notice.message}</span>
            <Button size="sm" variant="ghost" onClick={() => dismiss.mutate(notice.id)} aria-label="Dismiss notice">
              Dismiss
            </Button>
          </div>
        );
      })}
    </section>
  );
}

function CurrentPlan({ overview }: { overview: Overview }) {
  const { plan, subscription, period, projectedInvoice } = overview;
  return (
    <Card title="Current plan">
      <dl className="ui-facts">
        <div>
          <dt>Plan</dt>
          <dd data-testid="current-plan">{plan.name}</dd>
        </div>
        <div>
          <dt>Status</dt>
          <dd>
            <StatusBadge status={subscription?.status ?? "active"} />
            {subscription?.cancelAtPeriodEnd ? <Badge tone="warning">cancels at period end</Badge> : null}
          </dd>
        </div>
        <div>
          <dt>Period</dt>
          <dd>
            {formatDate(period.start)} – {formatDate(period.end)}
          </dd>
        </div>
        <div>
          <dt>Projected invoice</dt>
          <dd data-testid="projected-invoice">{formatCents(projectedInvoice.totalCents)}</dd>
        </div>
      </dl>
      {subscription?.graceEndsAt ? (
        <p className="ui-callout ui-callout--danger">
          Payment failed. Update your payment method before {formatDate(subscription.graceEndsAt)} or the organization
          moves to Free.
        </p>
      ) : null}
    </Card>
  );
}

function Usage({ overview }: { overview: Overview }) {
  const { usage, included, projectedInvoice } = overview;
  const share = (used: number, allowed: number) => (allowed > 0 ? Math.min(100, (used / allowed) * 100) : 0);
  return (
    <Card title="Usage this period">
      <div className="stack-tight">
        <Progress
          label="Requests"
          value={share(usage.requests, included.requests)}
          detail={`${formatCount(usage.requests)} of ${formatCount(included.requests)} included`}
          tone={usage.requests > included.requests ? "danger" : "info"}
        />
        <Progress
          label="Compute-seconds"
          value={share(usage.computeSeconds, included.computeSeconds)}
          detail={`${formatCount(Math.round(usage.computeSeconds))} of ${formatCount(included.computeSeconds)} included`}
          tone={usage.computeSeconds > included.computeSeconds ? "danger" : "info"}
        />
        <dl className="ui-facts">
          <div>
            <dt>Plan price</dt>
            <dd>{formatCents(projectedInvoice.baseCents)}</dd>
          </div>
          <div>
            <dt>Request overage</dt>
            <dd>{formatCents(projectedInvoice.requestOverageCents)}</dd>
          </div>
          <div>
            <dt>Compute overage</dt>
            <dd>{formatCents(projectedInvoice.computeOverageCents)}</dd>
          </div>
        </dl>
      </div>
    </Card>
  );
}

function SpendCap({ overview }: { overview: Overview }) {
  const api = useApi();
  const queryClient = useQueryClient();
  const toast = useToast();
  const [dollars, setDollars] = useState(overview.spendCapCents === null ? "" : String(overview.spendCapCents / 100));
  const [error, setError] = useState<string | null>(null);
  const save = useMutation({
    mutationFn: (monthlyCapCents: number | null) => api.billing.setSpendCap.mutate({ monthlyCapCents }),
    onSuccess: async (result) => {
      toast.show(
        result.monthlyCapCents === null
          ? "Spend cap removed"
          : `Spend cap set to ${formatCents(result.monthlyCapCents)}`,
      );
      await queryClient.invalidateQueries({ queryKey: keys.of("billing.overview") });
    },
    onError: (e) => setError(errorMessage(e)),
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const trimmed = dollars.trim();
    if (trimmed === "") return save.mutate(null);
    if (!/^\d+(\.\d{1,2})?$/.test(trimmed)) return setError("Enter an amount in dollars, such as 250 or 99.50");
    setError(null);
    save.mutate(Math.round(Number(trimmed) * 100));
  };
  return (
    <Card title="Monthly spend cap">
      <form onSubmit={submit} className="stack-tight">
        <p className="page-description">
          Once the projected invoice would pass the cap, requests are refused (HTTP 402) until you raise it or the
          period ends. You are told at 50%, 80% and 100%. Leave empty for no cap.
        </p>
        <Field label="Cap in US dollars" error={error}>
          <Input
            inputMode="decimal"
            value={dollars}
            onChange={(e) => setDollars(e.target.value)}
            placeholder="No cap"
          />
        </Field>
        <div className="row">
          <Button type="submit" variant="primary" disabled={save.isPending}>
            Save cap
          </Button>
        </div>
      </form>
    </Card>
  );
}

function Plans({ overview }: { overview: Overview }) {
  const api = useApi();
  const toast = useToast();
  const change = useMutation({
    mutationFn: (planId: PlanId) => api.billing.changePlan.mutate({ planId }),
    // Stripe's hosted Checkout or Customer Portal takes it from here; the webhook updates the plan.
    onSuccess: ({ url }) => window.location.assign(url),
    onError: (e) => toast.show(errorMessage(e), "danger"),
  });
  const current = overview.plan.id;
  const order = overview.plans.map((p) => p.id);
  return (
    <Card title="Plans">
      {!overview.isBillingConfigured ? (
        <p className="ui-callout ui-callout--warning">
          Billing is not configured on this Kiln: every organization is on Free.
        </p>
      ) : null}
      <Table
        caption="Plans"
        rows={overview.plans}
        rowKey={(p) => p.id}
        columns={[
          { key: "name", header: "Plan", cell: (p) => <strong>{p.name}</strong> },
          { key: "price", header: "Per month", cell: (p) => formatCents(p.monthlyPriceCents), isNumeric: true },
          {
            key: "included",
            header: "Included each month",
            cell: (p) =>
              `${formatCount(p.included.requests)} requests · ${formatCount(p.included.computeSeconds)} compute-s`,
          },
          {
            key: "deployments",
            header: "Deployments",
            cell: (p) => formatCount(p.limits.deployments),
            isNumeric: true,
          },
          { key: "gpu", header: "GPU slice", cell: (p) => <span className="ui-mono">{p.limits.gpuSlice}</span> },
          {
            key: "action",
            header: <span className="ui-visually-hidden">Action</span>,
            cell: (p) =>
              p.id === current ? (
                <Badge tone="success">Current</Badge>
              ) : (
                <Button
                  size="sm"
                  variant={order.indexOf(p.id) > order.indexOf(current) ? "primary" : "secondary"}
                  disabled={!overview.isBillingConfigured || change.isPending}
                  onClick={() => change.mutate(p.id)}
                  // The row names the plan; the short label keeps the table inside narrow cards.
                  aria-label={planActionLabel(p, current, order)}
                >
                  {planActionLabel(p, current, order).split(" ")[0]}
                </Button>
              ),
          },
        ]}
      />
    </Card>
  );
}

function planActionLabel(plan: { id: string; name: string }, current: string, order: string[]): string {
  if (plan.id === "free") return "Downgrade to Free";
  return order.indexOf(plan.id) > order.indexOf(current) ? `Upgrade to ${plan.name}` : `Switch to ${plan.name}`;
}

function PortalButton() {
  const api = useApi();
  const toast = useToast();
  const portal = useMutation({
    mutationFn: () => api.billing.portal.mutate(),
    onSuccess: ({ url }) => window.location.assign(url),
    onError: (e) => toast.show(errorMessage(e), "danger"),
  });
  return (
    <Button onClick={() => portal.mutate()} disabled={portal.isPending}>
      Payment methods and invoices
    </Button>
  );
}

function InvoiceTable({ invoices }: { invoices: Invoice[] }) {
  return (
    <Table<Invoice>
      caption="Invoices"
      rows={invoices}
      rowKey={(i) => i.id}
      columns={[
        { key: "number", header: "Invoice", cell: (i) => <span className="ui-mono">{i.number ?? i.id}</span> },
        { key: "date", header: "Date", cell: (i) => formatDate(i.createdAt) },
        { key: "total", header: "Total", cell: (i) => formatCents(i.totalCents), isNumeric: true },
        { key: "status", header: "Status", cell: (i) => <StatusBadge status={i.status ?? "draft"} /> },
        {
          key: "link",
          header: <span className="ui-visually-hidden">Link</span>,
          cell: (i) =>
            i.hostedInvoiceUrl ? (
              <a href={i.hostedInvoiceUrl} target="_blank" rel="noreferrer">
                View
              </a>
            ) : null,
        },
      ]}
    />
  );
}
