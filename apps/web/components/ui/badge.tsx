import type { ReactNode } from "react";

export type Tone = "neutral" | "info" | "success" | "warning" | "danger";

export function Badge({ tone = "neutral", children }: { tone?: Tone; children: ReactNode }) {
  return <span className={`ui-badge ui-badge--${tone}`}>{children}</span>;
}

const statusTone: Record<string, Tone> = {
  queued: "neutral",
  running: "info",
  succeeded: "success",
  failed: "danger",
  canceled: "warning",
  ready: "success",
  loading: "info",
  cold: "neutral",
  draining: "warning",
  active: "success",
  revoked: "danger",
  pending: "info",
};

/** A status word with a dot in its colour; the word carries the meaning, the colour only helps. */
export function StatusBadge({ status }: { status: string }) {
  const tone = statusTone[status] ?? "neutral";
  return (
    <span className={`ui-badge ui-badge--${tone} ui-status`}>
      <span className="ui-status__dot" aria-hidden="true" />
      {status}
    </span>
  );
}
