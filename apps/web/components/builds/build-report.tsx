import type { BuildReport, LayerReport } from "@kiln/engine";
import { Table } from "@/components/ui";
import { formatBytes, formatDuration } from "@/lib/format";

// Enough rows to show where the time goes; the rest are summed into one "other layers" bar.
const TOP_LAYERS = 12;
const palette = ["#d9480f", "#1c64c8", "#2b7a3d", "#9a6200", "#7048e8", "#0c8599", "#c2255c", "#5c940d"];

function colourFor(opTypes: string[], opType: string): string {
  return palette[opTypes.indexOf(opType) % palette.length] ?? "#6b625b";
}

/** Horizontal bars of measured time per layer, slowest first, coloured by operator type. */
export function LayerTimeChart({ layers }: { layers: LayerReport[] }) {
  const sorted = [...layers].sort((a, b) => b.timeMs - a.timeMs);
  const top = sorted.slice(0, TOP_LAYERS);
  const rest = sorted.slice(TOP_LAYERS);
  const restMs = rest.reduce((sum, l) => sum + l.timeMs, 0);
  const rows = rest.length
    ? [...top, { name: `${rest.length} other layers`, opType: "other", kernel: "", outputShape: "", timeMs: restMs }]
    : top;
  const total = layers.reduce((sum, l) => sum + l.timeMs, 0);
  const max = Math.max(...rows.map((r) => r.timeMs), Number.EPSILON);
  const opTypes = [...new Set(rows.map((r) => r.opType))];

  const rowHeight = 28;
  const labelWidth = 230;
  const barWidth = 360;
  const valueWidth = 130;
  const width = labelWidth + barWidth + valueWidth;
  const height = rows.length * rowHeight + 4;
  const truncate = (text: string, n: number) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);

  return (
    <figure className="chart">
      <svg
        viewBox={`0 0 ${width} ${height}`}
        role="img"
        aria-label={`Time per layer: ${rows
          .slice(0, 3)
          .map((r) => `${r.name} ${formatDuration(r.timeMs)}`)
          .join(", ")}${rows.length > 3 ? ", …" : ""}`}
      >
        {rows.map((row, i) => {
          const y = i * rowHeight + 2;
          const w = Math.max(2, (row.timeMs / max) * barWidth);
          const share = total > 0 ? (row.timeMs / total) * 100 : 0;
          return (
            <g key={row.name}>
              <title>{`${row.name} (${row.opType}${row.kernel ? `, ${row.kernel}` : ""}): ${formatDuration(row.timeMs)}`}</title>
              <text x={labelWidth - 8} y={y + rowHeight / 2 + 4} textAnchor="end" className="chart__label">
                {truncate(row.name, 28)}
              </text>
              <rect
                x={labelWidth}
                y={y + 4}
                width={w}
                height={rowHeight - 8}
                rx={3}
                fill={row.opType === "other" ? "#b8aea5" : colourFor(opTypes, row.opType)}
              />
              <text x={labelWidth + w + 6} y={y + rowHeight / 2 + 4} className="chart__value">
                {formatDuration(row.timeMs)} · {share.toFixed(share < 10 ? 1 : 0)}%
              </text>
            </g>
          );
        })}
      </svg>
      <figcaption>
        <ul className="chart__legend" aria-label="Operator types">
          {opTypes
            .filter((op) => op !== "other")
            .map((op) => (
              <li key={op}>
                <span className="chart__swatch" style={{ background: colourFor(opTypes, op) }} aria-hidden="true" />
                {op}
              </li>
            ))}
        </ul>
        Total measured: {formatDuration(total)} across {layers.length} layers.
      </figcaption>
    </figure>
  );
}

const PRECISION_COLOURS: Record<string, string> = {
  int8: "#7048e8",
  fp16: "#0c8599",
  tf32: "#9a6200",
  fp32: "#6b625b",
};
const PRECISION_ORDER = ["int8", "fp16", "tf32", "fp32"];

/** True when some layer computes in less than FP32 (FP16, TF32, INT8 builds). */
export function hasReducedPrecision(layers: LayerReport[]): boolean {
  return layers.some((l) => l.precision !== undefined && l.precision !== "fp32");
}

/**
 * What each layer computes in, for reduced-precision builds: a bar split by layer count, and the
 * share of measured time. Layers an INT8 build kept in FP16 (too much quantization error) show here.
 */
export function PrecisionMix({ layers }: { layers: LayerReport[] }) {
  const groups = new Map<string, { count: number; ms: number }>();
  for (const layer of layers) {
    if (!layer.precision) continue;
    const group = groups.get(layer.precision) ?? { count: 0, ms: 0 };
    group.count++;
    group.ms += layer.timeMs;
    groups.set(layer.precision, group);
  }
  if (!hasReducedPrecision(layers)) return null;
  const rows = [...groups].sort(([a], [b]) => PRECISION_ORDER.indexOf(a) - PRECISION_ORDER.indexOf(b));
  const total = rows.reduce((n, [, g]) => n + g.count, 0);
  const totalMs = rows.reduce((n, [, g]) => n + g.ms, 0);
  const describe = rows.map(([p, g]) => `${g.count} ${p.toUpperCase()}`).join(", ");
  return (
    <div className="stack">
      <div className="precision-mix" role="img" aria-label={`Layers by precision: ${describe}`}>
        {rows.map(([p, g]) => (
          <span
            key={p}
            style={{ width: `${(g.count / total) * 100}%`, background: PRECISION_COLOURS[p] ?? "#b8aea5" }}
            title={`${p.toUpperCase()}: ${g.count} layers`}
          />
        ))}
      </div>
      <ul className="chart__legend" aria-label="Precisions">
        {rows.map(([p, g]) => (
          <li key={p}>
            <span className="chart__swatch" style={{ background: PRECISION_COLOURS[p] ?? "#b8aea5" }} aria-hidden="true" />
            {p.toUpperCase()}: {g.count} layer{g.count === 1 ? "" : "s"}
            {totalMs > 0 ? `, ${((g.ms / totalMs) * 100).toFixed(0)}% of the time` : ""}
          </li>
        ))}
      </ul>
    </div>
  );
}

/** What the optimizer did: nodes before and after, and each fusion with how often it applied. */
export function FusionsView({ report }: { report: BuildReport }) {
  const fusions = Object.entries(report.fusions)
    .filter(([, count]) => count > 0)
    .sort((a, b) => b[1] - a[1]);
  const maxCount = Math.max(1, ...fusions.map(([, c]) => c));
  const removed = report.nodesBefore - report.nodesAfter;
  const keptShare = report.nodesBefore > 0 ? (report.nodesAfter / report.nodesBefore) * 100 : 100;
  return (
    <div className="stack">
      <div className="node-compare" aria-label={`Graph went from ${report.nodesBefore} to ${report.nodesAfter} nodes`}>
        <div className="node-compare__row">
          <span>Before</span>
          <div className="node-compare__bar" style={{ width: "100%" }} />
          <strong className="ui-num">{report.nodesBefore}</strong>
        </div>
        <div className="node-compare__row">
          <span>After</span>
          <div className="node-compare__bar node-compare__bar--after" style={{ width: `${keptShare}%` }} />
          <strong className="ui-num">{report.nodesAfter}</strong>
        </div>
        <p className="ui-hint">
          {removed > 0
            ? `${removed} nodes folded or fused away (${(100 - keptShare).toFixed(0)}% fewer kernels to launch).`
            : "The graph was already as small as the optimizer could make it."}
        </p>
      </div>
      {fusions.length > 0 ? (
        <ul className="fusions" aria-label="Optimizations applied">
          {fusions.map(([name, count]) => (
            <li key={name}>
              <span className="fusions__name">{name}</span>
              <span className="fusions__track" aria-hidden="true">
                <span className="fusions__bar" style={{ width: `${(count / maxCount) * 100}%` }} />
              </span>
              <span className="ui-num">×{count}</span>
            </li>
          ))}
        </ul>
      ) : (
        <p className="ui-hint">No fusion pattern matched this graph.</p>
      )}
    </div>
  );
}

export function BuildReportView({ report }: { report: BuildReport }) {
  return (
    <div className="stack">
      <dl className="ui-facts">
        <div>
          <dt>Activation memory</dt>
          <dd>{formatBytes(report.peakMemoryBytes)}</dd>
        </div>
        <div>
          <dt>Weights</dt>
          <dd>{formatBytes(report.weightBytes)}</dd>
        </div>
        <div>
          <dt>Layers</dt>
          <dd>{report.layers.length}</dd>
        </div>
        <div>
          <dt>Nodes</dt>
          <dd>
            {report.nodesBefore} → {report.nodesAfter}
          </dd>
        </div>
      </dl>
      {report.warnings.length > 0 ? (
        <div className="ui-callout ui-callout--warning">
          <strong>Warnings</strong>
          <ul className="compact-list">
            {report.warnings.map((w) => (
              <li key={w}>{w}</li>
            ))}
          </ul>
        </div>
      ) : null}
      <h3 className="section-title">Time per layer</h3>
      {report.layers.length > 0 ? <LayerTimeChart layers={report.layers} /> : <p className="ui-hint">No layers timed.</p>}
      {hasReducedPrecision(report.layers) ? (
        <>
          <h3 className="section-title">Precision by layer</h3>
          <PrecisionMix layers={report.layers} />
        </>
      ) : null}
      <h3 className="section-title">Fusions applied</h3>
      <FusionsView report={report} />
      <details className="details">
        <summary>All layers ({report.layers.length})</summary>
        <Table<LayerReport>
          caption="All layers"
          rows={report.layers}
          rowKey={(l) => l.name}
          columns={[
            { key: "name", header: "Layer", cell: (l) => <span className="ui-mono">{l.name}</span> },
            { key: "op", header: "Op", cell: (l) => l.opType },
            { key: "kernel", header: "Kernel", cell: (l) => <span className="ui-mono">{l.kernel}</span> },
            { key: "shape", header: "Output", cell: (l) => <span className="ui-mono">{l.outputShape}</span> },
            ...(report.layers.some((l) => l.precision)
              ? [{ key: "precision", header: "Precision", cell: (l: LayerReport) => l.precision?.toUpperCase() ?? "—" }]
              : []),
            { key: "time", header: "Time", isNumeric: true, cell: (l) => formatDuration(l.timeMs) },
          ]}
        />
      </details>
    </div>
  );
}
