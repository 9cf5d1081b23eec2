// Schemas of the reductions (Reduce*), ArgMax/ArgMin, CumSum and CumProd. Kernels: backends/cpu/ops/reduce.cc.
//
// Reduce* take their axes from an attribute until ReduceSum-13 / the others at 18, then from an
// optional int64 input; an empty axes list reduces everything unless noop_with_empty_axes is set
// (then the op is the identity).
#include "ops/elementwise_infer.h"

namespace kiln {
namespace {

bool axesFromInput(const InferContext& ctx) {
  return ctx.opset >= (ctx.node.opType == "ReduceSum" ? 13 : 18);
}

void inferReduce(InferContext& ctx) {
  inferRequire(ctx, 0, "data");
  const SymShape& in = ctx.inputShapes[0];
  const DType t = ctx.inputTypes[0];
  const bool keepdims = ctx.node.getInt("keepdims", 1) != 0;
  std::vector<int64_t> axes;
  bool noop = false;
  if (axesFromInput(ctx)) {
    noop = ctx.node.getInt("noop_with_empty_axes", 0) != 0;
    if (ctx.hasInput(1)) {
      inferRequireType(ctx, 1, DType::Int64, "axes");
      auto values = ctx.intValues(1);
      if (!values) {
        // Axes computed at run time: with keepdims the rank survives, but not which dims are 1.
        if (keepdims && in.hasRank) {
          SymShape out;
          out.hasRank = true;
          for (size_t d = 0; d < in.rank(); d++) {
            out.dims.push_back(in.dims[d].isKnown() && in.dims[d].value == 1 ? in.dims[d] : ctx.freshDim());
          }
          ctx.setOutput(0, t, out);
        } else {
          ctx.setOutput(0, t, SymShape::unknown());
        }
        return;
      }
      axes = *values;
    }
  } else {
    axes = ctx.node.getInts("axes");
  }
  if (axes.empty() && noop) {
    ctx.setOutput(0, t, in);
    return;
  }
  if (!in.hasRank) {
    ctx.setOutput(0, t, SymShape::unknown());
    return;
  }
  int64_t rank = static_cast<int64_t>(in.rank());
  if (axes.empty()) {
    for (int64_t d = 0; d < rank; d++) axes.push_back(d);
  }
  ctx.setOutput(0, t, reducedShape(in, inferAxes(ctx, axes, rank), keepdims));
}

void inferArgReduce(InferContext& ctx) {
  inferRequire(ctx, 0, "data");
  const SymShape& in = ctx.inputShapes[0];
  if (!in.hasRank) {
    ctx.setOutput(0, DType::Int64, SymShape::unknown());
    return;
  }
  int64_t rank = static_cast<int64_t>(in.rank());
  if (rank == 0) ctx.error("input must have rank >= 1");
  auto axes = inferAxes(ctx, {ctx.node.getInt("axis", 0)}, rank);
  ctx.setOutput(0, DType::Int64, reducedShape(in, axes, ctx.node.getInt("keepdims", 1) != 0));
}

void inferCumSum(InferContext& ctx) {
  inferRequire(ctx, 0, "x");
  inferRequire(ctx, 1, "axis");
  const SymShape& axis = ctx.inputShapes[1];
  if (axis.hasRank && axis.rank() > 1) ctx.error("axis must be a scalar, got shape " + axis.toString());
  ctx.setOutput(0, ctx.inputTypes[0], ctx.inputShapes[0]);
}

}  // namespace

KILN_REGISTER_SCHEMAS(ReduceSum, "ReduceSum", inferReduce, 1, 11, 13);
KILN_REGISTER_SCHEMAS(ReduceMean, "ReduceMean", inferReduce, 1, 11, 13, 18);
KILN_REGISTER_SCHEMAS(ReduceMax, "ReduceMax", inferReduce, 1, 11, 12, 13, 18, 20);
KILN_REGISTER_SCHEMAS(ReduceMin, "ReduceMin", inferReduce, 1, 11, 12, 13, 18, 20);
KILN_REGISTER_SCHEMAS(ReduceProd, "ReduceProd", inferReduce, 1, 11, 13, 18);
KILN_REGISTER_SCHEMAS(ReduceL1, "ReduceL1", inferReduce, 1, 11, 13, 18);
KILN_REGISTER_SCHEMAS(ReduceL2, "ReduceL2", inferReduce, 1, 11, 13, 18);
KILN_REGISTER_SCHEMAS(ReduceLogSum, "ReduceLogSum", inferReduce, 1, 11, 13, 18);
KILN_REGISTER_SCHEMAS(ReduceLogSumExp, "ReduceLogSumExp", inferReduce, 1, 11, 13, 18);
KILN_REGISTER_SCHEMAS(ReduceSumSquare, "ReduceSumSquare", inferReduce, 1, 11, 13, 18);
KILN_REGISTER_SCHEMAS(ArgMax, "ArgMax", inferArgReduce, 1, 11, 12, 13);
KILN_REGISTER_SCHEMAS(ArgMin, "ArgMin", inferArgReduce, 1, 11, 12, 13);
KILN_REGISTER_SCHEMAS(CumSum, "CumSum", inferCumSum, 11, 14);
KILN_REGISTER_SCHEMAS(CumProd, "CumProd", inferCumSum, 26);

}  // namespace kiln
