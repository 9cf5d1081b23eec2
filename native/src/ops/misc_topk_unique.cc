// Schemas of TopK and Unique.
#include "ops/tensor_util.h"

namespace kiln {

namespace {

void inferTopK(InferContext& ctx) {
  expectInput(ctx, 0, "X");
  const SymShape& x = ctx.inputShapes[0];
  const DType type = ctx.inputTypes[0];
  if (!x.hasRank) {
    ctx.setOutput(0, type, SymShape::unknown());
    ctx.setOutput(1, DType::Int64, SymShape::unknown());
    return;
  }
  if (x.rank() == 0) ctx.error("X must have rank >= 1");
  const int64_t axis = inferAxis(ctx, ctx.node.getInt("axis", -1), (int64_t)x.rank());
  // TopK-1 takes k as an attribute; from opset 10 it is a 1-element int64 input.
  IntsArg k = readIntsArg(ctx, "k", 1, 10);
  if (!k.present) ctx.error("k is required");
  SymShape out = x;
  if (k.known) {
    if (k.values.size() != 1) ctx.error("k must have exactly one element");
    const int64_t kv = k.values[0];
    const Dim& d = x.dims[(size_t)axis];
    if (kv < 0 || (d.isKnown() && kv > d.value)) {
      ctx.error("k = " + std::to_string(kv) + " is outside [0, " + d.toString() + "] for X " + x.toString());
    }
    out.dims[(size_t)axis] = Dim::known(kv);
  } else {
    out.dims[(size_t)axis] = ctx.freshDim();
  }
  ctx.setOutput(0, type, out);
  ctx.setOutput(1, DType::Int64, out);
}

void inferUnique(InferContext& ctx) {
  expectInput(ctx, 0, "X");
  const SymShape& x = ctx.inputShapes[0];
  const Dim n = ctx.freshDim();
  SymShape y{true, {n}};
  SymShape inverse{true, {ctx.freshDim()}};
  if (ctx.node.has("axis")) {
    if (x.hasRank) {
      const int64_t axis = inferAxis(ctx, ctx.node.getInt("axis", 0), (int64_t)x.rank());
      y = x;
      y.dims[(size_t)axis] = n;
      inverse.dims[0] = x.dims[(size_t)axis];
    } else {
      y = SymShape::unknown();
    }
  } else if (x.isConcrete()) {
    inverse.dims[0] = Dim::known(inferNumel(ctx, x.concrete()));
  }
  ctx.setOutput(0, ctx.inputTypes[0], y);
  ctx.setOutput(1, DType::Int64, SymShape{true, {n}});
  ctx.setOutput(2, DType::Int64, inverse);
  ctx.setOutput(3, DType::Int64, SymShape{true, {n}});
}

}  // namespace

KILN_REGISTER_SCHEMA(TopK, (OpSchema{"", "TopK", 1, inferTopK}));
KILN_REGISTER_SCHEMA(TopK, (OpSchema{"", "TopK", 10, inferTopK}));  // k attr -> input
KILN_REGISTER_SCHEMA(TopK, (OpSchema{"", "TopK", 11, inferTopK}));  // largest, sorted, negative axis
KILN_REGISTER_SCHEMA(Unique, (OpSchema{"", "Unique", 11, inferUnique, true}));

}  // namespace kiln
