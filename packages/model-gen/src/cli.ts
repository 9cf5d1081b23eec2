#!/usr/bin/env -S npx tsx
// kiln-model-gen: writes a generated ONNX model to disk.
//   npx tsx packages/model-gen/src/cli.ts resnet50 -o /tmp/resnet50.onnx [--opset 17] [--layers N] [--verify]
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { MAX_OPSET, MIN_OPSET } from "./graph-builder.ts";
import type { Dim } from "./onnx/types.ts";
import {
  DEFAULT_OPSET,
  DEFAULT_SEED,
  FAMILIES,
  type GenerateOptions,
  generateModel,
  writeModelFile,
} from "./registry.ts";

const USAGE = `usage: kiln-model-gen <model> -o <file.onnx> [options]

models: ${Object.keys(FAMILIES).join(", ")} (aliases: bert-base, gpt2-small, vit-base, resnet, mobilenet)

options:
  -o, --output FILE       where to write the model (required)
  --opset N               default-domain opset, ${MIN_OPSET}..${MAX_OPSET} (default ${DEFAULT_OPSET}; <17 writes LayerNorm as its decomposition)
  --seed N                PRNG seed for the weights (default ${DEFAULT_SEED})
  --layers N              transformer layers, or ResNet depth (18, 34, 50, 101, 152)
  --hidden N              transformer hidden size (heads default to hidden/64)
  --heads N               attention heads
  --intermediate N        feed-forward size (default 4*hidden)
  --image-size N          input image side
  --patch-size N          ViT patch side
  --width X               ResNet first-stage channels, or MobileNetV2 width multiplier
  --classes N             classifier outputs
  --vocab-size N          token vocabulary
  --max-positions N       position table size
  --causal-mask where|add GPT-2 causal mask style
  --batch N|NAME          batch dimension: fixed size or symbolic name (default "batch")
  --sequence N|NAME       sequence dimension of text models (default "sequence")
  --packed                write repeated scalars packed (exercises the other protobuf encoding)
  --verify                load and run the written model with onnxruntime-node
  -h, --help              this text`;

function positiveInt(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer, got '${v}'`);
  return n;
}

function dimArg(name: string, v: string | undefined): Dim | undefined {
  if (v === undefined) return undefined;
  if (/^\d+$/.test(v)) return positiveInt(name, v);
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(v))
    throw new Error(`--${name} must be a positive integer or an identifier, got '${v}'`);
  return v;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      output: { type: "string", short: "o" },
      opset: { type: "string" },
      seed: { type: "string" },
      layers: { type: "string" },
      hidden: { type: "string" },
      heads: { type: "string" },
      intermediate: { type: "string" },
      "image-size": { type: "string" },
      "patch-size": { type: "string" },
      width: { type: "string" },
      classes: { type: "string" },
      "vocab-size": { type: "string" },
      "max-positions": { type: "string" },
      "causal-mask": { type: "string" },
      batch: { type: "string" },
      sequence: { type: "string" },
      packed: { type: "boolean" },
      verify: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const [name, ...extra] = positionals;
  if (name === undefined || extra.length > 0 || values.output === undefined) {
    console.error(USAGE);
    return 2;
  }
  let width: number | undefined;
  if (values.width !== undefined) {
    width = Number(values.width);
    if (!Number.isFinite(width) || width <= 0)
      throw new Error(`--width must be a positive number, got '${values.width}'`);
  }
  const causal = values["causal-mask"];
  if (causal !== undefined && causal !== "where" && causal !== "add")
    throw new Error(`--causal-mask must be 'where' or 'add', got '${causal}'`);
  const options: GenerateOptions = {
    opset: positiveInt("opset", values.opset) ?? DEFAULT_OPSET,
    seed: values.seed === undefined ? DEFAULT_SEED : Number.parseInt(values.seed, 10),
    layers: positiveInt("layers", values.layers),
    hidden: positiveInt("hidden", values.hidden),
    heads: positiveInt("heads", values.heads),
    intermediate: positiveInt("intermediate", values.intermediate),
    imageSize: positiveInt("image-size", values["image-size"]),
    patchSize: positiveInt("patch-size", values["patch-size"]),
    width,
    classes: positiveInt("classes", values.classes),
    vocabSize: positiveInt("vocab-size", values["vocab-size"]),
    maxPositions: positiveInt("max-positions", values["max-positions"]),
    causalMask: causal,
    batch: dimArg("batch", values.batch),
    sequence: dimArg("sequence", values.sequence),
  };
  if (!Number.isInteger(options.seed)) throw new Error(`--seed must be an integer, got '${values.seed}'`);
  const started = performance.now();
  const model = generateModel(name, options);
  const bytes = writeModelFile(values.output, model.spec, { packed: values.packed ?? false });
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `${model.family}: ${model.spec.graph.nodes.length} nodes, ${(model.parameterCount / 1e6).toFixed(2)}M parameters, ` +
      `opset ${options.opset}, ${(bytes / 2 ** 20).toFixed(1)} MiB -> ${values.output} (${seconds.toFixed(1)} s)`,
  );
  for (const input of model.inputs) console.log(`  input  ${input.name} [${input.shape.join(", ")}]`);
  for (const output of model.spec.graph.outputs) console.log(`  output ${output.name} [${output.shape.join(", ")}]`);
  if (values.verify) await verify(values.output, model.inputs);
  return 0;
}

async function verify(path: string, inputs: ReturnType<typeof generateModel>["inputs"]): Promise<void> {
  const { createOrtSession, runOrt } = await import("./ort.ts");
  const { sampleInputs } = await import("./tensors.ts");
  const session = await createOrtSession(readFileSync(path));
  const feeds = sampleInputs(inputs, { batch: 1, sequence: 8 });
  const started = performance.now();
  const outputs = await runOrt(session, feeds);
  const ms = performance.now() - started;
  for (const [name, t] of Object.entries(outputs)) {
    let maxAbs = 0;
    let finite = true;
    const data = t.data as ArrayLike<number>;
    for (let i = 0; i < data.length; i++) {
      const v = data[i] as number;
      if (!Number.isFinite(v)) finite = false;
      else maxAbs = Math.max(maxAbs, Math.abs(v));
    }
    if (!finite) throw new Error(`verify: output '${name}' has non-finite values`);
    console.log(
      `  verified with onnxruntime: ${name} [${t.shape.join(", ")}] max|x| ${maxAbs.toPrecision(4)} (${ms.toFixed(0)} ms)`,
    );
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`kiln-model-gen: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
