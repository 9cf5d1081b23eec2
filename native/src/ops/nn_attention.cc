// Schema of the ONNX Attention operator (opset 23, 24): scaled dot-product attention over Q, K, V
// given as 4-D [batch, heads, sequence, head_size] or 3-D [batch, sequence, heads * head_size]
// (then q_num_heads and kv_num_heads are required), with an optional mask, a KV cache (past_key,
// past_value -> present_key, present_value), grouped-query heads, causal masking, softcap and an
// optional copy of the attention scores. Kernel: backends/cpu/ops/attention_onnx.cc. (Kiln's own
// fused kiln.Attention, which passes recognise in exported graphs, is separate: graph/fused_ops.h.)
#include "ops/elementwise_infer.h"

namespace kiln {
namespace {

// Dim a / b when both are known and divide, else a fresh symbol.
Dim divide(InferContext& ctx, const Dim& a, int64_t b) {
  if (a.isKnown() && b > 0 && a.value % b == 0) return Dim::known(a.value / b);
  return ctx.freshDim();
}

void inferAttention(InferContext& ctx) {
  inferRequire(ctx, 0, "Q");
  inferRequire(ctx, 1, "K");
  inferRequire(ctx, 2, "V");
  const DType t = inferSameType(ctx, 0, 3);
  if (t != DType::Undefined && t != DType::Float32 && t != DType::Float16) {
    fail(ErrorCode::UnsupportedOp, "unsupported operator Attention (opset " + std::to_string(ctx.opset) +
                                       ") at node '" + ctx.node.name + "': dtype " + dtypeName(t));
  }
  const SymShape& q = ctx.inputShapes[0];
  const SymShape& k = ctx.inputShapes[1];
  const SymShape& v = ctx.inputShapes[2];
  for (const SymShape* s : {&q, &k, &v}) {
    if (s->hasRank && s->rank() != 3 && s->rank() != 4) ctx.error("Q, K and V must have rank 3 or 4, got " + s->toString());
  }
  if (q.hasRank && k.hasRank && v.hasRank && (q.rank() != k.rank() || q.rank() != v.rank())) {
    ctx.error("Q, K and V must have the same rank, got " + q.toString() + ", " + k.toString() + ", " + v.toString());
  }
  const int64_t qHeads = ctx.node.getInt("q_num_heads", 0), kvHeads = ctx.node.getInt("kv_num_heads", 0);
  const bool threeD = q.hasRank && q.rank() == 3;
  if (threeD && (qHeads <= 0 || kvHeads <= 0)) ctx.error("3-D Q, K and V need the q_num_heads and kv_num_heads attributes");
  if (qHeads > 0 && kvHeads > 0 && qHeads % kvHeads != 0) {
    ctx.error("q_num_heads " + std::to_string(qHeads) + " is not a multiple of kv_num_heads " + std::to_string(kvHeads));
  }
  const DType out = t == DType::Undefined ? DType::Float32 : t;
  if (!q.hasRank || !k.hasRank || !v.hasRank) {
    for (size_t i = 0; i < 4; i++) ctx.setOutput(i, out, SymShape::unknown());
    return;
  }
  Dim batch = q.dims[0], qSeq = q.dims[threeD ? 1 : 2], kvSeq = k.dims[threeD ? 1 : 2];
  Dim hq = threeD ? Dim::known(qHeads) : q.dims[1];
  Dim hkv = threeD ? Dim::known(kvHeads) : k.dims[1];
  Dim headK = threeD ? divide(ctx, k.dims[2], kvHeads) : k.dims[3];
  Dim headV = threeD ? divide(ctx, v.dims[2], kvHeads) : v.dims[3];
  Dim total = kvSeq;
  if (ctx.hasInput(4)) {
    const SymShape& past = ctx.inputShapes[4];
    if (past.hasRank && past.rank() != 4) ctx.error("past_key must have rank 4, got " + past.toString());
    total = past.hasRank ? ctx.add(past.dims[2], kvSeq) : ctx.freshDim();
  }
  if (threeD) {
    Dim hidden = hq.isKnown() && headV.isKnown() ? Dim::known(hq.value * headV.value) : ctx.freshDim();
    ctx.setOutput(0, out, SymShape{true, {batch, qSeq, hidden}});
  } else {
    ctx.setOutput(0, out, SymShape{true, {batch, hq, qSeq, headV}});
  }
  ctx.setOutput(1, out, SymShape{true, {batch, hkv, total, headK}});
  ctx.setOutput(2, out, SymShape{true, {batch, hkv, total, headV}});
  ctx.setOutput(3, out, SymShape{true, {batch, hq, qSeq, total}});
}

}  // namespace

KILN_REGISTER_SCHEMAS(Attention, "Attention", inferAttention, 23, 24);

}  // namespace kiln
