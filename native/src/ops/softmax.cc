// Schemas of Softmax, LogSoftmax and Hardmax. Before opset 13 they coerce the input to 2-D at
// `axis` (default 1) and normalise over the flattened trailing block; from 13 they normalise along
// the single dim `axis` (default -1). Either way the output keeps the input's shape and type.
// Kernels: backends/cpu/ops/softmax.cc.
#include "ops/elementwise_infer.h"

namespace kiln {
namespace {

void inferSoftmax(InferContext& ctx) {
  inferRequire(ctx, 0, "input");
  const SymShape& s = ctx.inputShapes[0];
  if (s.hasRank) {
    int64_t rank = static_cast<int64_t>(s.rank());
    int64_t axis = ctx.node.getInt("axis", ctx.opset >= 13 ? -1 : 1);
    // Before 13 axis == rank is allowed (the 2-D view [N, 1]); from 13 it must name a dim.
    int64_t hi = ctx.opset >= 13 ? rank - 1 : rank;
    if (axis < -rank || axis > hi) {
      ctx.error("axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
    }
  }
  ctx.setOutput(0, ctx.inputTypes[0], s);
}

}  // namespace

KILN_REGISTER_SCHEMAS(Softmax, "Softmax", inferSoftmax, 1, 11, 13);
KILN_REGISTER_SCHEMAS(LogSoftmax, "LogSoftmax", inferSoftmax, 1, 11, 13);
KILN_REGISTER_SCHEMAS(Hardmax, "Hardmax", inferSoftmax, 1, 11, 13);

}  // namespace kiln
