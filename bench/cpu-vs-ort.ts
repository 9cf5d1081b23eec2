// Kiln's CPU engine against onnxruntime-node on this machine, in one process:
//   npx tsx bench/cpu-vs-ort.ts [--iterations N] [--warmup N] [--models resnet50,mobilenetv2,bert] [--out DIR]
//                               [--ort-spinning on|off]
// Both run fp32 with every core: ORT with intraOpNumThreads = cores, interOpNumThreads = 1,
// graphOptimizationLevel "all"; Kiln's global thread pool is sized to the cores. Runs alternate
// between the two (Kiln, ORT, Kiln, ...) so drift in machine load hits both alike. Writes
// bench/results/cpu-vs-ort-<date>.md (table, per-op-type profile, command, machine) and prints it.
import { execSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { build, loadEngine } from "@kiln/engine";
import { compareTensors, type GenerateOptions, sampleInputs } from "@kiln/model-gen";
import { runOrt } from "@kiln/model-gen/ort";
import * as onnxruntime from "onnxruntime-node";
import { timeByOpType } from "../packages/engine/src/cli/commands/build.ts";
import type { BuildReport } from "../packages/engine/src/cli/engine-port.ts";
import { summarize } from "../packages/engine/src/cli/stats.ts";
import { benchModel, REPO } from "./lib/models.ts";

interface Case {
  label: string;
  family: string;
  options: GenerateOptions;
  dims: Record<string, number>;
}

const CASES: Record<string, Case> = {
  resnet50: { label: "ResNet-50", family: "resnet50", options: {}, dims: { batch: 1 } },
  mobilenetv2: { label: "MobileNetV2", family: "mobilenetv2", options: {}, dims: { batch: 1 } },
  bert: { label: "BERT-base", family: "bert", options: {}, dims: { batch: 1, sequence: 128 } },
};

const { values } = parseArgs({
  options: {
    iterations: { type: "string", default: "30" },
    warmup: { type: "string", default: "5" },
    models: { type: "string", default: Object.keys(CASES).join(",") },
    out: { type: "string", default: join(REPO, "bench", "results") },
    // ORT's intra-op threads spin-wait after each parallel section (its default, "on"). With run by
    // run alternation on a 2-core machine, ORT's idle worker then keeps spinning into Kiln's next run
    // and takes one of the two cores for part of it (Kiln's idle threads sleep and never slow ORT).
    // "off" removes that bias but also takes ORT's own benefit from spinning on models made of many
    // short ops (MobileNetV2), so the results report both; see bench/README.md.
    "ort-spinning": { type: "string", default: "on" },
  },
});
const iterations = Number(values.iterations);
const ortSpinning = values["ort-spinning"];
if (ortSpinning !== "on" && ortSpinning !== "off") throw new Error("--ort-spinning must be on or off");
const warmup = Number(values.warmup);
if (!Number.isInteger(iterations) || iterations <= 0 || !Number.isInteger(warmup) || warmup < 0) {
  throw new Error("--iterations must be a positive integer and --warmup a non-negative one");
}
const selected = values.models.split(",").map((m) => {
  const c = CASES[m];
  if (c === undefined) throw new Error(`unknown model '${m}' (known: ${Object.keys(CASES).join(", ")})`);
  return c;
});
const threads = availableParallelism();
const loadAtStart = loadavg()[0] ?? 0;
const log = (line: string) => process.stderr.write(`${line}\n`);

interface Row {
  c: Case;
  kilnMs: ReturnType<typeof summarize>;
  ortMs: ReturnType<typeof summarize>;
  relError: number;
  buildSeconds: number;
  report: BuildReport;
}

async function measure(c: Case): Promise<Row> {
  const { path, generated } = benchModel(c.family, c.options, log);
  const onnx = readFileSync(path);
  const shapeOf = (name: string) => {
    const input = generated.inputs.find((i) => i.name === name);
    return (input?.shape ?? []).map((d) => (typeof d === "number" ? d : (c.dims[d] as number)));
  };
  // One fixed-shape profile at exactly the benchmarked shapes, as a serving build for them would use.
  const profile = Object.fromEntries(
    generated.inputs.map((i) => [i.name, { min: shapeOf(i.name), opt: shapeOf(i.name), max: shapeOf(i.name) }]),
  );
  log(`${c.label}: building with Kiln ...`);
  const t0 = performance.now();
  const built = await build(onnx, { precision: "fp32", profiles: [profile] });
  const buildSeconds = (performance.now() - t0) / 1000;
  const context = loadEngine(built.engine).createContext();
  const session = await onnxruntime.InferenceSession.create(onnx, {
    executionProviders: ["cpu"],
    graphOptimizationLevel: "all",
    interOpNumThreads: 1,
    intraOpNumThreads: threads,
    executionMode: "sequential",
    extra: { session: { intra_op: { allow_spinning: ortSpinning === "on" ? "1" : "0" } } },
  });
  const inputs = sampleInputs(generated.inputs, c.dims);

  // The two must agree before their speed means anything.
  const reference = await runOrt(session, inputs);
  const { outputs } = await context.run(inputs);
  let relError = 0;
  for (const [name, t] of Object.entries(reference)) {
    const actual = (outputs as Record<string, typeof t>)[name];
    if (actual === undefined) throw new Error(`${c.label}: Kiln returned no output '${name}'`);
    relError = Math.max(relError, compareTensors(actual, t, name).relError);
  }

  log(`${c.label}: ${warmup} warm-up + ${iterations} timed runs each, alternating ...`);
  for (let i = 0; i < warmup; i++) {
    await context.run(inputs);
    await runOrt(session, inputs);
  }
  const kiln: number[] = [];
  const ort: number[] = [];
  for (let i = 0; i < iterations; i++) {
    let t = performance.now();
    await context.run(inputs);
    kiln.push(performance.now() - t);
    t = performance.now();
    await runOrt(session, inputs);
    ort.push(performance.now() - t);
  }
  await session.release();
  return { c, kilnMs: summarize(kiln), ortMs: summarize(ort), relError, buildSeconds, report: built.report };
}

/** The commit, marked when native/ has uncommitted changes (the addon was built from those). */
function gitCommit(): string {
  try {
    const commit = execSync("git rev-parse --short HEAD", { cwd: REPO, encoding: "utf8" }).trim();
    const dirty = execSync("git status --porcelain -- native", { cwd: REPO, encoding: "utf8" }).trim() !== "";
    return dirty ? `${commit} + uncommitted native/ changes` : commit;
  } catch {
    return "unknown";
  }
}

function markdown(rows: Row[], command: string): string {
  const ortVersion = JSON.parse(readFileSync(join(REPO, "node_modules/onnxruntime-node/package.json"), "utf8")).version;
  const cpu = cpus()[0]?.model ?? "unknown CPU";
  const ms = (v: number) => v.toFixed(2);
  const lines = [
    `# Kiln CPU vs onnxruntime-node — ${new Date().toISOString().slice(0, 10)}`,
    "",
    "| model | input | Kiln median ms | ORT median ms | Kiln/ORT | Kiln p90 ms | ORT p90 ms | Kiln min ms | ORT min ms | min Kiln/ORT | max rel. error |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...rows.map((r) => {
      const dims = Object.entries(r.c.dims)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ");
      return `| ${r.c.label} | ${dims} | ${ms(r.kilnMs.median)} | ${ms(r.ortMs.median)} | ${(r.kilnMs.median / r.ortMs.median).toFixed(2)} | ${ms(r.kilnMs.p90)} | ${ms(r.ortMs.p90)} | ${ms(r.kilnMs.min)} | ${ms(r.ortMs.min)} | ${(r.kilnMs.min / r.ortMs.min).toFixed(2)} | ${r.relError.toExponential(1)} |`;
    }),
    "",
    "The medians are the goal's measure; the minimums (each engine's best run) show the compute cost with the",
    "least interference from other load on a shared machine.",
    `Kiln/ORT below 1 means Kiln is faster. ${iterations} timed runs per engine after ${warmup} warm-up runs, alternating; fp32;`,
    `${threads} threads for both (ORT: intraOpNumThreads ${threads}, interOpNumThreads 1, graphOptimizationLevel all, sequential,`,
    `intra-op spinning ${ortSpinning === "on" ? "on (ORT's default)" : "off (--ort-spinning off)"}; see bench/README.md).`,
    "Relative error: max |kiln - ort| over the ORT output's max-abs, worst output.",
    "",
    "## Where Kiln's time goes",
    "",
    "Per-layer times measured by the builder at the profile's opt shapes, summed by op type.",
  ];
  for (const r of rows) {
    const byType = timeByOpType(r.report);
    const total = byType.reduce((a, t) => a + t.ms, 0);
    lines.push(
      "",
      `### ${r.c.label} (build ${r.buildSeconds.toFixed(1)} s, ${r.report.nodesBefore} -> ${r.report.nodesAfter} nodes)`,
      "",
    );
    const fusions = Object.entries(r.report.fusions).filter(([, n]) => n > 0);
    if (fusions.length > 0) lines.push(`Fusions: ${fusions.map(([f, n]) => `${f} x${n}`).join(", ")}.`, "");
    if (total === 0) {
      lines.push("(the build report carries no per-layer times)");
      continue;
    }
    lines.push("| op type | layers | ms | share |", "| --- | ---: | ---: | ---: |");
    for (const t of byType)
      lines.push(`| ${t.opType} | ${t.count} | ${t.ms.toFixed(3)} | ${((100 * t.ms) / total).toFixed(1)}% |`);
  }
  lines.push(
    "",
    "## How this was run",
    "",
    "```",
    command,
    "```",
    "",
    `- machine: ${cpu}, ${threads} cores available, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ${process.platform}/${process.arch}`,
    `- node ${process.version}, onnxruntime-node ${ortVersion}, kiln commit ${gitCommit()}`,
    // On a shared machine the load says how much the absolute numbers can be trusted; the ratio
    // holds up better because the runs alternate.
    `- load average (1 min) at start ${loadAtStart.toFixed(1)}, at end ${(loadavg()[0] ?? 0).toFixed(1)}`,
    "- models: @kiln/model-gen full-size architectures with seeded random weights (see bench/README.md)",
    "",
  );
  return lines.join("\n");
}

const rows: Row[] = [];
for (const c of selected) rows.push(await measure(c));
const command = `npx tsx bench/cpu-vs-ort.ts ${process.argv.slice(2).join(" ")}`.trim();
const report = markdown(rows, command);
mkdirSync(values.out, { recursive: true });
const file = join(values.out, `cpu-vs-ort-${new Date().toISOString().slice(0, 10)}.md`);
writeFileSync(file, report);
console.log(report);
log(`wrote ${file}`);
