// Multi-head self-attention as transformers' PyTorch code exports it: per-head Reshape with a
// shape built at run time (Shape -> Gather -> Unsqueeze -> Concat), Transpose, MatMul, Div by
// sqrt(head_dim), an optional additive mask or a boolean causal mask applied with Where, Softmax,
// MatMul with V, Transpose back and Reshape to [batch, seq, hidden].
import { attr, type GraphBuilder } from "../graph-builder.ts";

/** torch.finfo(torch.float32).min, the fill value transformers uses for masked scores. */
export const FLOAT32_MIN = -3.4028234663852886e38;

export interface AttentionCore {
  hidden: number;
  heads: number;
  /** Additive mask broadcastable to [batch, heads, seq, seq] (0 keeps, very negative drops). */
  additiveMask?: string;
  /** Boolean mask broadcastable to [batch, heads, seq, seq] (true keeps); masked scores become FLOAT32_MIN. */
  keepMask?: string;
}

/** [batch, seq, hidden] -> [batch, heads, seq, headDim] (or [batch, heads, headDim, seq] for keys). */
function splitHeads(g: GraphBuilder, t: string, heads: number, headDim: number, transposeForKeys: boolean): string {
  const reshaped = g.reshapeDynamic(t, [g.dim(t, 0), g.dim(t, 1), heads, headDim]);
  return g.op("Transpose", [reshaped], { perm: attr.ints(transposeForKeys ? [0, 2, 3, 1] : [0, 2, 1, 3]) });
}

/** The attention core on already-projected q, k, v ([batch, seq, hidden] each); returns [batch, seq, hidden]. */
export function attentionCore(g: GraphBuilder, q: string, k: string, v: string, o: AttentionCore): string {
  if (o.hidden % o.heads !== 0) throw new Error(`hidden ${o.hidden} is not divisible by heads ${o.heads}`);
  const headDim = o.hidden / o.heads;
  const qh = splitHeads(g, q, o.heads, headDim, false);
  const kt = splitHeads(g, k, o.heads, headDim, true);
  const vh = splitHeads(g, v, o.heads, headDim, false);
  let scores = g.op("Div", [g.op("MatMul", [qh, kt]), g.constFloat([Math.sqrt(headDim)])]);
  if (o.keepMask !== undefined) scores = g.op("Where", [o.keepMask, scores, g.constFloat([FLOAT32_MIN])]);
  if (o.additiveMask !== undefined) scores = g.op("Add", [scores, o.additiveMask]);
  const probs = g.op("Softmax", [scores], { axis: attr.int(-1) });
  const context = g.op("Transpose", [g.op("MatMul", [probs, vh])], { perm: attr.ints([0, 2, 1, 3]) });
  return g.reshapeDynamic(context, [g.dim(context, 0), g.dim(context, 1), o.hidden]);
}
