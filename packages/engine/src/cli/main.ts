#!/usr/bin/env -S npx tsx
// kiln: build, inspect, run and benchmark Kiln engines from the shell (like trtexec).
import { realpathSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { CliError, UsageError } from "./args.ts";
import { benchCommand } from "./commands/bench.ts";
import { buildCommand } from "./commands/build.ts";
import { inspectCommand } from "./commands/inspect.ts";
import { runCommand } from "./commands/run.ts";
import { type EngineApi, loadEngineApi } from "./engine-port.ts";
import { NpyError } from "./npy.ts";

export const USAGE = `usage:
  kiln build MODEL.onnx -o ENGINE.kiln [--precision fp32|fp16|int8] [--profile NAME:MIN,OPT,MAX ...]
             [--opt-level 0|1|2] [--report REPORT.json] [--backend cpu|cuda] [--tf32]
             [--calibration SET.npz] [--calibration-method entropy|percentile|minmax]
             [--calibration-percentile P]
      INT8 (cuda): SET.npz holds one array per model input, samples stacked along the first dim.
      Shapes are written 1x3x224x224. Profile flags for different inputs form one profile; naming
      an input again starts the next profile.
  kiln inspect ENGINE.kiln [--layers] [--json]
  kiln run ENGINE.kiln --input NAME=FILE.npy ... --out DIR
      Writes DIR/OUTPUT.npy for each output.
  kiln bench ENGINE.kiln [--batch N] [--shape NAME=1x128 ...] [--duration S | --iterations N]
             [--warmup N] [--contexts N] [--json]
      Random inputs; dynamic dims take --batch (leading) or the first profile's opt sizes.
  kiln help`;

type Out = (line: string) => void;

/** Runs one CLI invocation; returns the exit code (0 ok, 1 failure, 2 bad usage). */
export async function main(
  argv: readonly string[],
  api: () => Promise<EngineApi>,
  out: Out,
  err: Out,
): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case "build": {
        const { values, positionals } = parse(rest, {
          output: { type: "string", short: "o" },
          precision: { type: "string" },
          profile: { type: "string", multiple: true },
          "opt-level": { type: "string" },
          report: { type: "string" },
          backend: { type: "string" },
          tf32: { type: "boolean" },
          calibration: { type: "string" },
          "calibration-method": { type: "string" },
          "calibration-percentile": { type: "string" },
        });
        const [model] = one(positionals, "MODEL.onnx");
        if (typeof values.output !== "string") throw new UsageError("build needs -o ENGINE.kiln");
        await buildCommand(
          await api(),
          {
            model,
            output: values.output,
            precision: values.precision as string | undefined,
            profiles: (values.profile as string[] | undefined) ?? [],
            optLevel: values["opt-level"] as string | undefined,
            report: values.report as string | undefined,
            backend: values.backend as string | undefined,
            tf32: values.tf32 === true,
            calibration: values.calibration as string | undefined,
            calibrationMethod: values["calibration-method"] as string | undefined,
            calibrationPercentile: values["calibration-percentile"] as string | undefined,
          },
          out,
        );
        return 0;
      }
      case "inspect": {
        const { values, positionals } = parse(rest, { json: { type: "boolean" }, layers: { type: "boolean" } });
        const [engine] = one(positionals, "ENGINE.kiln");
        await inspectCommand(await api(), { engine, json: values.json === true, layers: values.layers === true }, out);
        return 0;
      }
      case "run": {
        const { values, positionals } = parse(rest, {
          input: { type: "string", multiple: true },
          out: { type: "string" },
        });
        const [engine] = one(positionals, "ENGINE.kiln");
        if (typeof values.out !== "string") throw new UsageError("run needs --out DIR");
        await runCommand(
          await api(),
          { engine, inputs: (values.input as string[] | undefined) ?? [], out: values.out },
          out,
        );
        return 0;
      }
      case "bench": {
        const { values, positionals } = parse(rest, {
          batch: { type: "string" },
          shape: { type: "string", multiple: true },
          duration: { type: "string" },
          iterations: { type: "string" },
          warmup: { type: "string" },
          contexts: { type: "string" },
          json: { type: "boolean" },
        });
        const [engine] = one(positionals, "ENGINE.kiln");
        if (values.duration !== undefined && values.iterations !== undefined)
          throw new UsageError("give --duration or --iterations, not both");
        await benchCommand(
          await api(),
          {
            engine,
            batch: values.batch as string | undefined,
            shapes: (values.shape as string[] | undefined) ?? [],
            duration: values.duration as string | undefined,
            iterations: values.iterations as string | undefined,
            warmup: values.warmup as string | undefined,
            contexts: values.contexts as string | undefined,
            json: values.json === true,
          },
          out,
        );
        return 0;
      }
      case "help":
      case "--help":
      case "-h":
        out(USAGE);
        return 0;
      default:
        throw new UsageError(command === undefined ? "no command given" : `unknown command '${command}'`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      err(`kiln: ${error.message}`);
      err(USAGE);
      return 2;
    }
    // Engine errors carry a code (e.g. SHAPE_MISMATCH) and a message naming the node, op and shape.
    const e = error as Error & { code?: unknown };
    if (error instanceof CliError || error instanceof NpyError) err(`kiln: ${e.message}`);
    else err(`kiln: ${e.code !== undefined ? `[${String(e.code)}] ` : ""}${e.message ?? String(error)}`);
    return 1;
  }
}

type OptionSpec = Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }>;

function parse(args: string[], options: OptionSpec) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

function one(positionals: string[], what: string): [string] {
  if (positionals.length !== 1)
    throw new UsageError(
      positionals.length === 0 ? `missing ${what}` : `unexpected arguments: ${positionals.slice(1).join(" ")}`,
    );
  return [positionals[0] as string];
}

// Run when executed (directly, through tsx, or through the package's bin link), not when imported by tests.
const invoked = process.argv[1] === undefined ? "" : realpathSync(resolve(process.argv[1]));
if (invoked === fileURLToPath(import.meta.url)) {
  main(
    process.argv.slice(2),
    loadEngineApi,
    (l) => process.stdout.write(`${l}\n`),
    (l) => process.stderr.write(`${l}\n`),
  ).then((code) => {
    process.exitCode = code;
  });
}
