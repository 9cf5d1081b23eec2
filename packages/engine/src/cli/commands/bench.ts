// kiln bench model.kiln [--batch N] [--shape NAME=1x128 ...] [--duration S] [--iterations N]
//   [--warmup N] [--contexts N] [--json]
// Feeds random inputs (the same every run) through N execution contexts running concurrently,
// each one run after another, and reports latency percentiles and throughput.
import { nonNegativeInt, parsePairs, parseShape, positiveInt, positiveNumber, UsageError } from "../args.ts";
import type { EngineApi, ExecutionContext, Tensor } from "../engine-port.ts";
import { benchShapes, randomTensor } from "../inputs.ts";
import { type LatencySummary, summarize, table } from "../stats.ts";
import { loadEngineFile } from "./inspect.ts";

export interface BenchArgs {
  engine: string;
  batch?: string;
  shapes: string[];
  duration?: string;
  iterations?: string;
  warmup?: string;
  contexts?: string;
  json: boolean;
}

export interface BenchResult {
  shapes: Record<string, number[]>;
  contexts: number;
  batch: number;
  latencyMs: LatencySummary;
  runs: number;
  seconds: number;
  runsPerSecond: number;
  samplesPerSecond: number;
}

export async function benchCommand(api: EngineApi, args: BenchArgs, out: (line: string) => void): Promise<BenchResult> {
  const batch = args.batch === undefined ? undefined : positiveInt(args.batch, "--batch", 1);
  const duration = positiveNumber(args.duration, "--duration", 10);
  const iterations = args.iterations === undefined ? undefined : positiveInt(args.iterations, "--iterations", 1);
  const warmup = nonNegativeInt(args.warmup, "--warmup", 5);
  const contextCount = positiveInt(args.contexts, "--contexts", 1);
  const overrides = new Map(
    [...parsePairs(args.shapes, "--shape")].map(([name, s]) => [name, parseShape(s, `--shape ${name}`)]),
  );

  const engine = await loadEngineFile(api, args.engine);
  const shapes = benchShapes(engine.inputs, engine.profiles, batch, overrides);
  const inputs: Record<string, Tensor> = {};
  engine.inputs.forEach((info, i) => {
    inputs[info.name] = randomTensor(info, shapes.get(info.name) as number[], 1 + i);
  });
  const samplesPerRun = batch ?? shapes.get(engine.inputs[0]?.name ?? "")?.[0] ?? 1;
  const contexts: ExecutionContext[] = Array.from({ length: contextCount }, () => engine.createContext());
  if (!args.json) {
    out(
      `bench ${args.engine}: ${[...shapes].map(([n, s]) => `${n} ${s.join("x")}`).join(", ")}; ${contextCount} context(s), ` +
        (iterations !== undefined ? `${iterations} runs each` : `${duration} s`) +
        `, ${warmup} warm-up runs each`,
    );
  }

  await Promise.all(
    contexts.map(async (ctx) => {
      for (let i = 0; i < warmup; i++) await ctx.run(inputs);
    }),
  );
  const latencies: number[] = [];
  const started = performance.now();
  const deadline = started + duration * 1000;
  await Promise.all(
    contexts.map(async (ctx) => {
      for (let i = 0; iterations !== undefined ? i < iterations : performance.now() < deadline; i++) {
        const t0 = performance.now();
        await ctx.run(inputs);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  if (latencies.length === 0) throw new UsageError("no run finished; raise --duration");
  const result: BenchResult = {
    shapes: Object.fromEntries(shapes),
    contexts: contextCount,
    batch: samplesPerRun,
    latencyMs: summarize(latencies),
    runs: latencies.length,
    seconds,
    runsPerSecond: latencies.length / seconds,
    samplesPerSecond: (latencies.length * samplesPerRun) / seconds,
  };
  if (args.json) {
    out(JSON.stringify(result, null, 2));
    return result;
  }
  const l = result.latencyMs;
  const ms = (v: number) => v.toFixed(3);
  for (const line of table(
    ["latency ms", "min", "median", "p90", "p95", "p99", "max", "mean"],
    [["", ms(l.min), ms(l.median), ms(l.p90), ms(l.p95), ms(l.p99), ms(l.max), ms(l.mean)]],
  ).split("\n"))
    out(line);
  out(
    `throughput: ${result.runsPerSecond.toFixed(2)} runs/s, ${result.samplesPerSecond.toFixed(2)} samples/s (${result.runs} runs in ${seconds.toFixed(2)} s)`,
  );
  return result;
}
