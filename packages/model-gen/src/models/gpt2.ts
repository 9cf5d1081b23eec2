// A GPT-2 decoder (gpt2-small's architecture by default), without KV cache, exported the way
// transformers' GPT2LMHeadModel is: token + position Gather embeddings, pre-LN blocks whose
// attention projects q/k/v with one MatMul then Split, a causal mask sliced from a registered
// [1, 1, maxPositions, maxPositions] buffer (applied with Where, or as an additive mask),
// tanh-GELU, a final LayerNorm and an LM head tied to the token embedding (MatMul by its Transpose).
import { attr, type GraphBuilder, tensorFromBool, tensorFromFloat32 } from "../graph-builder.ts";
import { geluTanh, layerNorm, matmulLinear } from "../layers.ts";
import { DataType, type Dim } from "../onnx/types.ts";
import { attentionCore } from "./attention.ts";

export type CausalMaskStyle = "where" | "add";

export interface Gpt2Options {
  layers: number;
  hidden: number;
  heads: number;
  vocabSize: number;
  maxPositions: number;
  causalMask: CausalMaskStyle;
  batch: Dim;
  sequence: Dim;
}

export const GPT2_SMALL: Gpt2Options = {
  layers: 12,
  hidden: 768,
  heads: 12,
  vocabSize: 50257,
  maxPositions: 1024,
  causalMask: "where",
  batch: "batch",
  sequence: "sequence",
};

const LN_EPS = 1e-5;
const INIT_STD = 0.02;
// The additive variant uses the -1e4 fill of transformers' older GPT-2 code.
const ADDITIVE_MASK_FILL = -10000;

function causalMaskBuffer(g: GraphBuilder, o: Gpt2Options): string {
  const n = o.maxPositions;
  if (o.causalMask === "where") {
    const keep = new Uint8Array(n * n);
    for (let r = 0; r < n; r++) keep.fill(1, r * n, r * n + r + 1);
    return g.initializer(tensorFromBool("causal_mask", [1, 1, n, n], keep));
  }
  const additive = new Float32Array(n * n);
  for (let r = 0; r < n; r++) additive.fill(ADDITIVE_MASK_FILL, r * n + r + 1, (r + 1) * n);
  return g.initializer(tensorFromFloat32("causal_mask", [1, 1, n, n], additive));
}

export function buildGpt2(g: GraphBuilder, o: Gpt2Options): void {
  const inputIds = g.input("input_ids", DataType.INT64, [o.batch, o.sequence], {
    kind: "int",
    low: 0,
    high: o.vocabSize,
  });
  const wte = g.scope("transformer.wte", () =>
    g.parameter(
      "weight",
      [o.vocabSize, o.hidden],
      g.rng.fillTruncatedNormal(new Float32Array(o.vocabSize * o.hidden), INIT_STD),
    ),
  );

  let h = g.scope("transformer", () => {
    const seqLen = g.dim(inputIds, 1);
    // position_ids = arange(seq).unsqueeze(0), exported as Range over the run-time length.
    const seqScalar = g.op("Squeeze", [seqLen, g.constInt64([0])]);
    const positionIds = g.unsqueeze(g.op("Range", [g.constInt64([0], []), seqScalar, g.constInt64([1], [])]), [0]);
    const tokens = g.op("Gather", [wte, inputIds], { axis: attr.int(0) });
    const positions = g.scope("wpe", () => {
      const table = g.parameter(
        "weight",
        [o.maxPositions, o.hidden],
        g.rng.fillTruncatedNormal(new Float32Array(o.maxPositions * o.hidden), 0.01),
      );
      return g.op("Gather", [table, positionIds], { axis: attr.int(0) });
    });
    return g.op("Add", [tokens, positions]);
  });

  const maskBuffer = causalMaskBuffer(g, o);
  g.scope("transformer", () => {
    // mask[:, :, :seq, :seq]
    const seqLen = g.dim(inputIds, 1);
    const zero = g.constInt64([0]);
    const rows = g.op("Slice", [maskBuffer, zero, seqLen, g.constInt64([2]), g.constInt64([1])]);
    const mask = g.op("Slice", [rows, zero, seqLen, g.constInt64([3]), g.constInt64([1])]);
    for (let i = 0; i < o.layers; i++) h = g.scope(`h.${i}`, () => gpt2Block(g, h, mask, o));
    h = g.scope("ln_f", () => layerNorm(g, h, o.hidden, LN_EPS));
  });

  const logits = g.scope("lm_head", () => g.op("MatMul", [h, g.op("Transpose", [wte], { perm: attr.ints([1, 0]) })]));
  g.output("logits", logits, DataType.FLOAT, [o.batch, o.sequence, o.vocabSize]);
}

function gpt2Block(g: GraphBuilder, x: string, mask: string, o: Gpt2Options): string {
  const normed = g.scope("ln_1", () => layerNorm(g, x, o.hidden, LN_EPS));
  const attended = g.scope("attn", () => {
    const qkv = g.scope("c_attn", () => matmulLinear(g, normed, o.hidden, 3 * o.hidden, INIT_STD));
    const [q, k, v] = g.split(qkv, [o.hidden, o.hidden, o.hidden], 2) as [string, string, string];
    const context = attentionCore(g, q, k, v, {
      hidden: o.hidden,
      heads: o.heads,
      ...(o.causalMask === "where" ? { keepMask: mask } : { additiveMask: mask }),
    });
    // GPT-2 scales the residual projections' init by 1/sqrt(2 * layers).
    return g.scope("c_proj", () => matmulLinear(g, context, o.hidden, o.hidden, INIT_STD / Math.sqrt(2 * o.layers)));
  });
  const afterAttention = g.op("Add", [attended, x]);
  const normed2 = g.scope("ln_2", () => layerNorm(g, afterAttention, o.hidden, LN_EPS));
  const mlp = g.scope("mlp", () => {
    const up = geluTanh(
      g,
      g.scope("c_fc", () => matmulLinear(g, normed2, o.hidden, 4 * o.hidden, INIT_STD)),
    );
    return g.scope("c_proj", () => matmulLinear(g, up, 4 * o.hidden, o.hidden, INIT_STD / Math.sqrt(2 * o.layers)));
  });
  return g.op("Add", [afterAttention, mlp]);
}
