// The catalogue of model families: names the CLI and tests use, their full-size defaults and how
// the generic size options (layers, hidden, image size, ...) map onto each family.
import { closeSync, openSync, writeSync } from "node:fs";
import { GraphBuilder, type ModelInput } from "./graph-builder.ts";
import { BERT_BASE, buildBert } from "./models/bert.ts";
import { buildGpt2, type CausalMaskStyle, GPT2_SMALL } from "./models/gpt2.ts";
import { buildMobileNetV2 } from "./models/mobilenetv2.ts";
import { buildResNet, RESNET_BLOCKS } from "./models/resnet.ts";
import { buildVit, VIT_BASE } from "./models/vit.ts";
import { type EncodeOptions, encodeModel, encodeModelBytes } from "./onnx/encode.ts";
import type { Dim, ModelSpec } from "./onnx/types.ts";

export const DEFAULT_OPSET = 17;
export const DEFAULT_SEED = 1234;

/** Every option is optional; what a family does not use is rejected rather than silently ignored. */
export interface GenerateOptions {
  opset?: number;
  seed?: number;
  /** ResNet: depth (18, 34, 50, 101, 152). Transformers: encoder/decoder layers. */
  layers?: number;
  hidden?: number;
  heads?: number;
  intermediate?: number;
  imageSize?: number;
  patchSize?: number;
  /** ResNet: first-stage channels (64). MobileNetV2: width multiplier (1.0). */
  width?: number;
  classes?: number;
  vocabSize?: number;
  maxPositions?: number;
  causalMask?: CausalMaskStyle;
  /** Batch dimension: a symbolic name (default "batch") or a fixed size. */
  batch?: Dim;
  /** Sequence dimension of the text models: a symbolic name (default "sequence") or a fixed size. */
  sequence?: Dim;
}

type OptionKey = Exclude<keyof GenerateOptions, "opset" | "seed">;

interface Family {
  description: string;
  options: readonly OptionKey[];
  build(g: GraphBuilder, o: GenerateOptions): void;
}

function resnet(depth: number): Family {
  return {
    description: `ResNet-${depth} (torchvision layout, BatchNorm unfolded), input [batch, 3, 224, 224]`,
    options: ["layers", "width", "imageSize", "classes", "batch"],
    build: (g, o) =>
      buildResNet(g, {
        depth: o.layers ?? depth,
        baseWidth: o.width ?? 64,
        imageSize: o.imageSize ?? 224,
        classes: o.classes ?? 1000,
        batch: o.batch ?? "batch",
      }),
  };
}

/** Explicit heads, else hidden/64 when the hidden size was changed (BERT's and GPT-2's head size), else the default. */
function headsFor(o: GenerateOptions, defaultHeads: number): number {
  if (o.heads !== undefined) return o.heads;
  return o.hidden === undefined ? defaultHeads : Math.max(1, Math.floor(o.hidden / 64));
}

export const FAMILIES: Readonly<Record<string, Family>> = {
  resnet18: resnet(18),
  resnet34: resnet(34),
  resnet50: resnet(50),
  resnet101: resnet(101),
  mobilenetv2: {
    description: "MobileNetV2 (torchvision layout), input [batch, 3, 224, 224]",
    options: ["width", "imageSize", "classes", "batch"],
    build: (g, o) =>
      buildMobileNetV2(g, {
        widthMultiplier: o.width ?? 1,
        imageSize: o.imageSize ?? 224,
        classes: o.classes ?? 1000,
        batch: o.batch ?? "batch",
      }),
  },
  bert: {
    description:
      "BERT-base encoder (transformers BertModel export), inputs input_ids/attention_mask/token_type_ids [batch, sequence]",
    options: ["layers", "hidden", "heads", "intermediate", "vocabSize", "maxPositions", "batch", "sequence"],
    build: (g, o) => {
      const hidden = o.hidden ?? BERT_BASE.hidden;
      buildBert(g, {
        ...BERT_BASE,
        layers: o.layers ?? BERT_BASE.layers,
        hidden,
        heads: headsFor(o, BERT_BASE.heads),
        intermediate: o.intermediate ?? 4 * hidden,
        vocabSize: o.vocabSize ?? BERT_BASE.vocabSize,
        maxPositions: o.maxPositions ?? BERT_BASE.maxPositions,
        batch: o.batch ?? BERT_BASE.batch,
        sequence: o.sequence ?? BERT_BASE.sequence,
      });
    },
  },
  gpt2: {
    description:
      "GPT-2 small decoder without KV cache (transformers GPT2LMHeadModel export), input input_ids [batch, sequence]",
    options: ["layers", "hidden", "heads", "vocabSize", "maxPositions", "causalMask", "batch", "sequence"],
    build: (g, o) =>
      buildGpt2(g, {
        ...GPT2_SMALL,
        layers: o.layers ?? GPT2_SMALL.layers,
        hidden: o.hidden ?? GPT2_SMALL.hidden,
        heads: headsFor(o, GPT2_SMALL.heads),
        vocabSize: o.vocabSize ?? GPT2_SMALL.vocabSize,
        maxPositions: o.maxPositions ?? GPT2_SMALL.maxPositions,
        causalMask: o.causalMask ?? GPT2_SMALL.causalMask,
        batch: o.batch ?? GPT2_SMALL.batch,
        sequence: o.sequence ?? GPT2_SMALL.sequence,
      }),
  },
  vit: {
    description: "ViT-B/16 (transformers ViTForImageClassification export), input pixel_values [batch, 3, 224, 224]",
    options: ["layers", "hidden", "heads", "intermediate", "imageSize", "patchSize", "classes", "batch"],
    build: (g, o) => {
      const hidden = o.hidden ?? VIT_BASE.hidden;
      buildVit(g, {
        ...VIT_BASE,
        layers: o.layers ?? VIT_BASE.layers,
        hidden,
        heads: headsFor(o, VIT_BASE.heads),
        intermediate: o.intermediate ?? 4 * hidden,
        imageSize: o.imageSize ?? VIT_BASE.imageSize,
        patchSize: o.patchSize ?? VIT_BASE.patchSize,
        classes: o.classes ?? VIT_BASE.classes,
        batch: o.batch ?? VIT_BASE.batch,
      });
    },
  },
};

const ALIASES: Readonly<Record<string, string>> = {
  resnet: "resnet50",
  "bert-base": "bert",
  "gpt2-small": "gpt2",
  "vit-base": "vit",
  "vit-b16": "vit",
  mobilenet: "mobilenetv2",
  "mobilenet-v2": "mobilenetv2",
};

export function resolveFamily(name: string): string {
  const key = ALIASES[name] ?? name;
  if (FAMILIES[key] === undefined) {
    throw new Error(
      `unknown model '${name}' (known: ${[...Object.keys(FAMILIES), ...Object.keys(ALIASES)].join(", ")})`,
    );
  }
  return key;
}

export interface GeneratedModel {
  family: string;
  spec: ModelSpec;
  /** The graph inputs with hints for sampling valid random data (see sampleInputs). */
  inputs: readonly ModelInput[];
  parameterCount: number;
}

export function generateModel(name: string, options: GenerateOptions = {}): GeneratedModel {
  const family = resolveFamily(name);
  const entry = FAMILIES[family] as Family;
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined || key === "opset" || key === "seed") continue;
    if (!entry.options.includes(key as OptionKey)) {
      throw new Error(`option '${key}' does not apply to ${family} (it takes: ${entry.options.join(", ")})`);
    }
    if (typeof value === "number" && (!Number.isFinite(value) || value <= 0)) {
      throw new Error(`option '${key}' must be a positive number, got ${value}`);
    }
  }
  if (family.startsWith("resnet") && options.layers !== undefined && RESNET_BLOCKS[options.layers] === undefined) {
    throw new Error(`ResNet depth ${options.layers} is not one of ${Object.keys(RESNET_BLOCKS).join(", ")}`);
  }
  const g = new GraphBuilder({
    name: family,
    opset: options.opset ?? DEFAULT_OPSET,
    seed: options.seed ?? DEFAULT_SEED,
    docString: `${entry.description}; generated by @kiln/model-gen with random weights`,
  });
  entry.build(g, options);
  return { family, spec: g.build(), inputs: g.modelInputs(), parameterCount: g.parameterCount() };
}

/** Generates a model and returns its ONNX bytes. */
export function generateModelBytes(
  name: string,
  options: GenerateOptions = {},
  encode: EncodeOptions = {},
): Uint8Array {
  return encodeModelBytes(generateModel(name, options).spec, encode);
}

/** Writes a model to disk chunk by chunk (no full-size copy); returns the byte count. */
export function writeModelFile(path: string, spec: ModelSpec, encode: EncodeOptions = {}): number {
  const fd = openSync(path, "w");
  let total = 0;
  try {
    for (const chunk of encodeModel(spec, encode)) {
      let offset = 0;
      while (offset < chunk.byteLength) offset += writeSync(fd, chunk, offset, chunk.byteLength - offset);
      total += chunk.byteLength;
    }
  } finally {
    closeSync(fd);
  }
  return total;
}
