// A BERT encoder (bert-base-uncased's architecture by default) exported as transformers' BertModel
// is: Gather embeddings (word + position + token type), post-LN encoder layers, GELU as the Erf
// pattern, an additive attention mask (1 - mask) * finfo.min built from the attention_mask input,
// and the tanh pooler. Outputs last_hidden_state [batch, sequence, hidden] and pooler_output.
import { attr, type GraphBuilder, tensorFromInt64 } from "../graph-builder.ts";
import { geluErf, gemmLinear, layerNorm, matmulLinear } from "../layers.ts";
import { DataType, type Dim } from "../onnx/types.ts";
import { attentionCore, FLOAT32_MIN } from "./attention.ts";

export interface BertOptions {
  layers: number;
  hidden: number;
  heads: number;
  intermediate: number;
  vocabSize: number;
  maxPositions: number;
  typeVocabSize: number;
  batch: Dim;
  sequence: Dim;
}

export const BERT_BASE: BertOptions = {
  layers: 12,
  hidden: 768,
  heads: 12,
  intermediate: 3072,
  vocabSize: 30522,
  maxPositions: 512,
  typeVocabSize: 2,
  batch: "batch",
  sequence: "sequence",
};

const LN_EPS = 1e-12;
const INIT_STD = 0.02;

function embedding(g: GraphBuilder, name: string, rows: number, cols: number, ids: string): string {
  return g.scope(name, () => {
    const table = g.parameter(
      "weight",
      [rows, cols],
      g.rng.fillTruncatedNormal(new Float32Array(rows * cols), INIT_STD),
    );
    return g.op("Gather", [table, ids], { axis: attr.int(0) });
  });
}

export function buildBert(g: GraphBuilder, o: BertOptions): void {
  const inputIds = g.input("input_ids", DataType.INT64, [o.batch, o.sequence], {
    kind: "int",
    low: 0,
    high: o.vocabSize,
  });
  const attentionMask = g.input("attention_mask", DataType.INT64, [o.batch, o.sequence], { kind: "mask" });
  const tokenTypeIds = g.input("token_type_ids", DataType.INT64, [o.batch, o.sequence], {
    kind: "int",
    low: 0,
    high: o.typeVocabSize,
  });

  const hiddenStates = g.scope("embeddings", () => {
    // position_ids is a registered buffer [1, maxPositions] sliced to the sequence length.
    const positionBuffer = g.initializer(
      tensorFromInt64(
        "embeddings.position_ids",
        [1, o.maxPositions],
        Array.from({ length: o.maxPositions }, (_, i) => i),
      ),
    );
    const seqLen = g.dim(inputIds, 1);
    const positionIds = g.op("Slice", [
      positionBuffer,
      g.constInt64([0]),
      seqLen,
      g.constInt64([1]),
      g.constInt64([1]),
    ]);
    const words = embedding(g, "word_embeddings", o.vocabSize, o.hidden, inputIds);
    const types = embedding(g, "token_type_embeddings", o.typeVocabSize, o.hidden, tokenTypeIds);
    const positions = embedding(g, "position_embeddings", o.maxPositions, o.hidden, positionIds);
    const sum = g.op("Add", [g.op("Add", [words, types]), positions]);
    return g.scope("LayerNorm", () => layerNorm(g, sum, o.hidden, LN_EPS));
  });

  // get_extended_attention_mask: [batch, 1, 1, seq] float, 0 where attended, finfo.min where masked.
  const additiveMask = g.op("Mul", [
    g.op("Sub", [
      g.constFloat([1]),
      g.op("Cast", [g.unsqueeze(attentionMask, [1, 2])], { to: attr.int(DataType.FLOAT) }),
    ]),
    g.constFloat([FLOAT32_MIN]),
  ]);

  let h = hiddenStates;
  g.scope("encoder", () => {
    for (let i = 0; i < o.layers; i++) {
      h = g.scope(`layer.${i}`, () => bertLayer(g, h, additiveMask, o));
    }
  });
  const lastHidden = g.output("last_hidden_state", h, DataType.FLOAT, [o.batch, o.sequence, o.hidden]);

  const pooled = g.scope("pooler", () => {
    const first = g.op("Gather", [lastHidden, g.constInt64([0], [])], { axis: attr.int(1) });
    return g.op("Tanh", [g.scope("dense", () => gemmLinear(g, first, o.hidden, o.hidden, INIT_STD))]);
  });
  g.output("pooler_output", pooled, DataType.FLOAT, [o.batch, o.hidden]);
}

function bertLayer(g: GraphBuilder, x: string, mask: string, o: BertOptions): string {
  const attended = g.scope("attention", () => {
    const context = g.scope("self", () => {
      const q = g.scope("query", () => matmulLinear(g, x, o.hidden, o.hidden, INIT_STD));
      const k = g.scope("key", () => matmulLinear(g, x, o.hidden, o.hidden, INIT_STD));
      const v = g.scope("value", () => matmulLinear(g, x, o.hidden, o.hidden, INIT_STD));
      return attentionCore(g, q, k, v, { hidden: o.hidden, heads: o.heads, additiveMask: mask });
    });
    return g.scope("output", () => {
      const projected = g.scope("dense", () => matmulLinear(g, context, o.hidden, o.hidden, INIT_STD));
      return g.scope("LayerNorm", () => layerNorm(g, g.op("Add", [projected, x]), o.hidden, LN_EPS));
    });
  });
  const intermediate = g.scope("intermediate", () =>
    geluErf(
      g,
      g.scope("dense", () => matmulLinear(g, attended, o.hidden, o.intermediate, INIT_STD)),
    ),
  );
  return g.scope("output", () => {
    const projected = g.scope("dense", () => matmulLinear(g, intermediate, o.intermediate, o.hidden, INIT_STD));
    return g.scope("LayerNorm", () => layerNorm(g, g.op("Add", [projected, attended]), o.hidden, LN_EPS));
  });
}
