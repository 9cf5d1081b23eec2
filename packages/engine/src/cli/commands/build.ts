// kiln build model.onnx -o model.kiln [--precision fp32|fp16|int8] [--profile NAME:MIN,OPT,MAX ...]
//   [--opt-level N] [--report report.json] [--backend cpu|cuda] [--tf32] [--calibration set.npz]
//   [--calibration-method entropy|percentile|minmax] [--calibration-percentile P]
import { readFile, writeFile } from "node:fs/promises";
import { parseNpz } from "../../npz.ts";
import { CliError, nonNegativeInt, parseProfiles, UsageError } from "../args.ts";
import type { BuildOptions, BuildProgress, BuildReport, EngineApi, Precision, Tensor } from "../engine-port.ts";
import { formatBytes, table } from "../stats.ts";

export interface BuildArgs {
  model: string;
  output: string;
  precision?: string;
  profiles: string[];
  optLevel?: string;
  report?: string;
  backend?: string;
  tf32?: boolean;
  /** A .npz file: one array per model input, samples stacked along the first dim (INT8). */
  calibration?: string;
  calibrationMethod?: string;
  calibrationPercentile?: string;
}

const PRECISIONS: readonly Precision[] = ["fp32", "fp16", "int8"];
const BACKENDS = ["cpu", "cuda"] as const;
const METHODS = ["entropy", "percentile", "minmax"] as const;

export async function buildCommand(api: EngineApi, args: BuildArgs, out: (line: string) => void): Promise<void> {
  const precision = (args.precision ?? "fp32") as Precision;
  if (!PRECISIONS.includes(precision))
    throw new UsageError(`--precision must be one of ${PRECISIONS.join(", ")}, got '${args.precision}'`);
  const optimizationLevel = nonNegativeInt(args.optLevel, "--opt-level", 2);
  if (optimizationLevel !== 0 && optimizationLevel !== 1 && optimizationLevel !== 2) {
    throw new UsageError(`--opt-level must be 0, 1 or 2, got ${optimizationLevel}`);
  }
  const profiles = parseProfiles(args.profiles);
  const backend = (args.backend ?? "cpu") as (typeof BACKENDS)[number];
  if (!BACKENDS.includes(backend)) throw new UsageError(`--backend must be cpu or cuda, got '${args.backend}'`);
  const method = args.calibrationMethod as (typeof METHODS)[number] | undefined;
  if (method !== undefined && !METHODS.includes(method))
    throw new UsageError(`--calibration-method must be one of ${METHODS.join(", ")}, got '${method}'`);
  let percentile: number | undefined;
  if (args.calibrationPercentile !== undefined) {
    percentile = Number(args.calibrationPercentile);
    if (!(percentile > 0 && percentile <= 100))
      throw new UsageError(`--calibration-percentile must be in (0, 100], got '${args.calibrationPercentile}'`);
  }
  let calibration: Record<string, Tensor> | undefined;
  if (args.calibration !== undefined) {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(args.calibration);
    } catch (error) {
      throw new CliError(`cannot read calibration set '${args.calibration}': ${(error as Error).message}`);
    }
    calibration = parseNpz(bytes);
  }
  let model: Uint8Array;
  try {
    model = await readFile(args.model);
  } catch (error) {
    throw new CliError(`cannot read model '${args.model}': ${(error as Error).message}`);
  }

  out(
    `building ${args.model} (${formatBytes(model.byteLength)}) for ${backend}, ${precision}${args.tf32 ? " (tf32)" : ""}, opt level ${optimizationLevel}` +
      (profiles.length > 0 ? `, ${profiles.length} profile(s)` : "") +
      (calibration ? `, calibration ${args.calibration}` : ""),
  );
  const started = performance.now();
  let lastStage = "";
  let lastTenth = -1;
  const onProgress = (p: BuildProgress) => {
    // One line per stage and per 10% of progress, so logs stay readable but long builds show life.
    const tenth = Math.floor(p.fraction * 10);
    if (p.stage === lastStage && tenth === lastTenth) return;
    lastStage = p.stage;
    lastTenth = tenth;
    out(`  [${(p.fraction * 100).toFixed(0).padStart(3)}%] ${p.stage}${p.message ? `: ${p.message}` : ""}`);
  };
  const options: BuildOptions = { precision, profiles, optimizationLevel };
  if (backend !== "cpu") options.backend = backend;
  if (args.tf32) options.tf32 = true;
  if (calibration) options.calibration = calibration;
  if (method) options.calibrationMethod = method;
  if (percentile !== undefined) options.calibrationPercentile = percentile;
  const result = await api.build(model, options, onProgress);
  const seconds = (performance.now() - started) / 1000;
  await writeFile(args.output, result.engine);
  if (args.report !== undefined) await writeFile(args.report, `${JSON.stringify(result.report, null, 2)}\n`);
  for (const line of summarizeReport(result.report)) out(line);
  out(`wrote ${args.output} (${formatBytes(result.engine.byteLength)}) in ${seconds.toFixed(1)} s`);
}

export function summarizeReport(r: BuildReport): string[] {
  const lines = [
    `nodes: ${r.nodesBefore} -> ${r.nodesAfter}, layers: ${r.layers.length}`,
    `memory: activations ${formatBytes(r.peakMemoryBytes)} per context, weights ${formatBytes(r.weightBytes)}`,
  ];
  const fusions = Object.entries(r.fusions).filter(([, n]) => n > 0);
  if (fusions.length > 0) lines.push(`fusions: ${fusions.map(([name, n]) => `${name} x${n}`).join(", ")}`);
  const timed = r.layers.filter((l) => l.timeMs > 0);
  if (timed.length > 0) {
    const total = timed.reduce((a, l) => a + l.timeMs, 0);
    lines.push(`time at opt shapes: ${total.toFixed(2)} ms; by op type:`);
    lines.push(
      ...indent(
        table(
          ["op", "layers", "ms", "share"],
          timeByOpType(r).map((t) => [
            t.opType,
            `${t.count}`,
            t.ms.toFixed(3),
            `${((100 * t.ms) / total).toFixed(1)}%`,
          ]),
        ),
      ),
    );
  }
  const precisions = new Map<string, number>();
  for (const l of r.layers) if (l.precision) precisions.set(l.precision, (precisions.get(l.precision) ?? 0) + 1);
  if (precisions.size > 1 || precisions.has("int8"))
    lines.push(`layer precisions: ${[...precisions].map(([p, n]) => `${p} x${n}`).join(", ")}`);
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  return lines;
}

export interface OpTypeTime {
  opType: string;
  count: number;
  ms: number;
}

/** Per-layer build timings aggregated by op type, slowest first (for build summaries and bench/). */
export function timeByOpType(r: BuildReport): OpTypeTime[] {
  const byType = new Map<string, OpTypeTime>();
  for (const l of r.layers) {
    const t = byType.get(l.opType) ?? { opType: l.opType, count: 0, ms: 0 };
    t.count++;
    t.ms += l.timeMs;
    byType.set(l.opType, t);
  }
  return [...byType.values()].sort((a, b) => b.ms - a.ms);
}

function indent(text: string): string[] {
  return text.split("\n").map((l) => `  ${l}`);
}
