"use client";

// Hourly usage charts over the whole selected range: hours without traffic are drawn as zero (or as a
// gap for latency), so one busy hour is one narrow bar, not a block across the card.
import type { ReactNode } from "react";
import { formatCount } from "@/lib/format";
import type { RouterOutputs } from "@/lib/trpc";

type Hour = RouterOutputs["usage"]["summary"]["hourly"][number];

const HOUR_MS = 3600_000;
const WIDTH = 720;
const HEIGHT = 140;
const PLOT_LEFT = 48;
const PLOT_BOTTOM = HEIGHT - 18;
const PLOT_TOP = 8;

/** One slot per hour from `from` up to now, with the rollup of that hour when there was one. */
export function hourSlots(hourly: Hour[], from: Date, to: Date): { start: Date; data: Hour | null }[] {
  const byHour = new Map(hourly.map((h) => [Math.floor(new Date(h.hour).getTime() / HOUR_MS), h]));
  const first = Math.floor(from.getTime() / HOUR_MS);
  const last = Math.floor(to.getTime() / HOUR_MS);
  const slots = [];
  for (let h = first; h <= last; h++) slots.push({ start: new Date(h * HOUR_MS), data: byHour.get(h) ?? null });
  return slots;
}

interface Series {
  label: string;
  color: string;
  values: (number | null)[];
}

function niceMax(value: number): number {
  if (value <= 0) return 1;
  const step = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * step >= value) return m * step;
  return 10 * step;
}

function Chart({
  title,
  slots,
  series,
  kind,
  format,
}: {
  title: string;
  slots: { start: Date }[];
  series: Series[];
  kind: "bars" | "lines";
  format: (v: number) => string;
}) {
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values.map((v) => v ?? 0))));
  const slot = (WIDTH - PLOT_LEFT) / Math.max(slots.length, 1);
  const x = (i: number) => PLOT_LEFT + i * slot;
  const y = (v: number) => PLOT_BOTTOM - (v / max) * (PLOT_BOTTOM - PLOT_TOP);
  const label = (d: Date) =>
    slots.length > 48
      ? d.toLocaleDateString(undefined, { month: "short", day: "numeric" })
      : d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  const ticks = slots.length > 1 ? [0, Math.floor((slots.length - 1) / 2), slots.length - 1] : [0];
  let marks: ReactNode[] = [];
  if (kind === "bars") {
    // Later series are drawn over earlier ones (errors over requests).
    marks = series.flatMap((s) =>
      s.values.map((v, i) =>
        v ? (
          <rect
            key={`${s.label}-${slots[i]?.start.getTime()}`}
            x={x(i) + Math.min(1, slot / 4)}
            y={y(v)}
            width={Math.max(slot - Math.min(2, slot / 2), 1)}
            height={PLOT_BOTTOM - y(v)}
            fill={s.color}
          >
            <title>{`${slots[i]?.start.toLocaleString()}: ${format(v)} ${s.label.toLowerCase()}`}</title>
          </rect>
        ) : null,
      ),
    );
  } else {
    marks = series.flatMap((s) => {
      const points = s.values.map((v, i) => (v === null ? null : { cx: x(i) + slot / 2, cy: y(v), v, i }));
      const segments: string[] = [];
      let current = "";
      for (const p of points) {
        if (!p) {
          if (current) segments.push(current);
          current = "";
          continue;
        }
        current += `${current ? "L" : "M"}${p.cx.toFixed(1)},${p.cy.toFixed(1)}`;
      }
      if (current) segments.push(current);
      return [
        ...segments.map((d) => <path key={`${s.label}-${d}`} d={d} fill="none" stroke={s.color} strokeWidth={2} />),
        ...points.map((p) =>
          p ? (
            <circle key={`${s.label}-${p.i}`} cx={p.cx} cy={p.cy} r={3} fill={s.color}>
              <title>{`${slots[p.i]?.start.toLocaleString()}: ${s.label} ${format(p.v)}`}</title>
            </circle>
          ) : null,
        ),
      ];
    });
  }
  return (
    <figure className="usage-chart">
      <figcaption>
        <strong>{title}</strong>
        <span className="usage-chart__legend">
          {series.map((s) => (
            <span key={s.label}>
              <span className="usage-chart__swatch" style={{ background: s.color }} aria-hidden="true" />
              {s.label}
            </span>
          ))}
        </span>
      </figcaption>
      <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-label={`${title} per hour`}>
        <line x1={PLOT_LEFT} x2={WIDTH} y1={PLOT_BOTTOM} y2={PLOT_BOTTOM} stroke="var(--line)" />
        <line x1={PLOT_LEFT} x2={WIDTH} y1={PLOT_TOP} y2={PLOT_TOP} stroke="var(--line)" strokeDasharray="4 4" />
        <text x={PLOT_LEFT - 6} y={PLOT_TOP + 4} textAnchor="end" className="usage-chart__axis">
          {format(max)}
        </text>
        <text x={PLOT_LEFT - 6} y={PLOT_BOTTOM} textAnchor="end" className="usage-chart__axis">
          0
        </text>
        {ticks.map((i) => (
          <text
            key={i}
            x={x(i) + slot / 2}
            y={HEIGHT - 2}
            textAnchor={i === 0 ? "start" : i === slots.length - 1 ? "end" : "middle"}
            className="usage-chart__axis"
          >
            {slots[i] ? label(slots[i].start) : ""}
          </text>
        ))}
        {marks}
      </svg>
    </figure>
  );
}

/** Requests and errors, compute-seconds, and p50/p95/p99 latency, one slot per hour of the range. */
export function UsageCharts({ hourly, from, to }: { hourly: Hour[]; from: Date; to: Date }) {
  const slots = hourSlots(hourly, from, to);
  const pick = (f: (h: Hour) => number | null, empty: number | null) => slots.map((s) => (s.data ? f(s.data) : empty));
  const seconds = (v: number) => (v >= 100 ? formatCount(Math.round(v)) : v.toFixed(v >= 1 ? 1 : 3));
  return (
    <div className="usage-charts">
      <Chart
        title="Requests"
        slots={slots}
        kind="bars"
        format={(v) => formatCount(Math.round(v))}
        series={[
          { label: "Requests", color: "var(--ember)", values: pick((h) => h.requests, 0) },
          { label: "Errors", color: "var(--danger)", values: pick((h) => h.errors, 0) },
        ]}
      />
      <Chart
        title="Compute-seconds"
        slots={slots}
        kind="bars"
        format={seconds}
        series={[{ label: "Compute-seconds", color: "var(--info)", values: pick((h) => h.computeSeconds, 0) }]}
      />
      <Chart
        title="Latency (ms, upper bucket bound)"
        slots={slots}
        kind="lines"
        format={(v) => formatCount(Math.round(v))}
        series={[
          { label: "p50", color: "var(--success)", values: pick((h) => h.p50Ms, null) },
          { label: "p95", color: "var(--warning)", values: pick((h) => h.p95Ms, null) },
          { label: "p99", color: "var(--danger)", values: pick((h) => h.p99Ms, null) },
        ]}
      />
    </div>
  );
}
