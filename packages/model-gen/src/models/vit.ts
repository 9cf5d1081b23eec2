// A Vision Transformer (ViT-B/16 by default) exported as transformers' ViTForImageClassification
// is: a patch Conv (kernel = stride = patch), Reshape + Transpose to tokens, a cls token Expanded to
// the batch and Concatenated in front, learned position embeddings, pre-LN encoder layers with
// Erf-GELU, a final LayerNorm and a Gemm classifier on the cls token.
import { attr, type GraphBuilder } from "../graph-builder.ts";
import { conv2d, geluErf, gemmLinear, layerNorm, matmulLinear } from "../layers.ts";
import { DataType, type Dim } from "../onnx/types.ts";
import { attentionCore } from "./attention.ts";
import { IMAGE } from "./inputs.ts";

export interface VitOptions {
  layers: number;
  hidden: number;
  heads: number;
  intermediate: number;
  imageSize: number;
  patchSize: number;
  channels: number;
  classes: number;
  batch: Dim;
}

export const VIT_BASE: VitOptions = {
  layers: 12,
  hidden: 768,
  heads: 12,
  intermediate: 3072,
  imageSize: 224,
  patchSize: 16,
  channels: 3,
  classes: 1000,
  batch: "batch",
};

const LN_EPS = 1e-12;
const INIT_STD = 0.02;

export function buildVit(g: GraphBuilder, o: VitOptions): void {
  if (o.imageSize % o.patchSize !== 0)
    throw new Error(`image size ${o.imageSize} is not a multiple of patch size ${o.patchSize}`);
  const patchesPerSide = o.imageSize / o.patchSize;
  const tokens = patchesPerSide * patchesPerSide + 1;
  const pixels = g.input("pixel_values", DataType.FLOAT, [o.batch, o.channels, o.imageSize, o.imageSize], IMAGE);

  let h = g.scope("vit", () =>
    g.scope("embeddings", () => {
      const projected = g.scope("patch_embeddings.projection", () =>
        conv2d(g, pixels, o.channels, o.hidden, { kernel: o.patchSize, stride: o.patchSize, pad: 0, bias: true }),
      );
      // flatten(2).transpose(1, 2): [batch, hidden, p, p] -> [batch, p*p, hidden]
      const flat = g.reshapeDynamic(projected, [g.dim(projected, 0), o.hidden, -1]);
      const patches = g.op("Transpose", [flat], { perm: attr.ints([0, 2, 1]) });
      const cls = g.parameter(
        "cls_token",
        [1, 1, o.hidden],
        g.rng.fillTruncatedNormal(new Float32Array(o.hidden), INIT_STD),
      );
      const clsShape = g.op("Concat", [g.dim(pixels, 0), g.constInt64([1]), g.constInt64([1])], { axis: attr.int(0) });
      const clsTokens = g.op("Expand", [cls, clsShape]);
      const sequence = g.op("Concat", [clsTokens, patches], { axis: attr.int(1) });
      const positions = g.parameter(
        "position_embeddings",
        [1, tokens, o.hidden],
        g.rng.fillTruncatedNormal(new Float32Array(tokens * o.hidden), INIT_STD),
      );
      return g.op("Add", [sequence, positions]);
    }),
  );

  g.scope("vit", () => {
    g.scope("encoder", () => {
      for (let i = 0; i < o.layers; i++) h = g.scope(`layer.${i}`, () => vitLayer(g, h, o));
    });
    h = g.scope("layernorm", () => layerNorm(g, h, o.hidden, LN_EPS));
  });
  const first = g.op("Gather", [h, g.constInt64([0], [])], { axis: attr.int(1) });
  const logits = g.scope("classifier", () => gemmLinear(g, first, o.hidden, o.classes, INIT_STD));
  g.output("logits", logits, DataType.FLOAT, [o.batch, o.classes]);
}

function vitLayer(g: GraphBuilder, x: string, o: VitOptions): string {
  const normed = g.scope("layernorm_before", () => layerNorm(g, x, o.hidden, LN_EPS));
  const attended = g.scope("attention", () => {
    const context = g.scope("attention", () => {
      const q = g.scope("query", () => matmulLinear(g, normed, o.hidden, o.hidden, INIT_STD));
      const k = g.scope("key", () => matmulLinear(g, normed, o.hidden, o.hidden, INIT_STD));
      const v = g.scope("value", () => matmulLinear(g, normed, o.hidden, o.hidden, INIT_STD));
      return attentionCore(g, q, k, v, { hidden: o.hidden, heads: o.heads });
    });
    return g.scope("output.dense", () => matmulLinear(g, context, o.hidden, o.hidden, INIT_STD));
  });
  const residual = g.op("Add", [attended, x]);
  const normed2 = g.scope("layernorm_after", () => layerNorm(g, residual, o.hidden, LN_EPS));
  const up = g.scope("intermediate", () =>
    geluErf(
      g,
      g.scope("dense", () => matmulLinear(g, normed2, o.hidden, o.intermediate, INIT_STD)),
    ),
  );
  const down = g.scope("output.dense", () => matmulLinear(g, up, o.intermediate, o.hidden, INIT_STD));
  return g.op("Add", [down, residual]);
}
