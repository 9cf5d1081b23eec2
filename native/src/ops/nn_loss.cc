// Schemas of NegativeLogLikelihoodLoss (13, 22) and SoftmaxCrossEntropyLoss (13): input
// [N, C, d1...], target [N, d1...]; the loss has the target's shape with reduction "none", else is a
// scalar; SoftmaxCrossEntropyLoss may also return the log-probabilities (input's shape).
// Kernel: backends/cpu/ops/loss.cc.
#include "ops/elementwise_infer.h"

namespace kiln {
namespace {

void inferLoss(InferContext& ctx) {
  inferRequire(ctx, 0, "input");
  inferRequire(ctx, 1, "target");
  const DType t = ctx.inputTypes[0];
  const DType target = ctx.inputTypes[1];
  if (target != DType::Undefined && target != DType::Int32 && target != DType::Int64) ctx.error("target must be int32 or int64");
  const std::string reduction = ctx.node.getString("reduction", "mean");
  if (reduction != "none" && reduction != "sum" && reduction != "mean") {
    ctx.error("reduction must be none, sum or mean, got '" + reduction + "'");
  }
  const SymShape& x = ctx.inputShapes[0];
  if (x.hasRank && x.rank() < 2) ctx.error("input must have rank >= 2, got " + x.toString());
  const SymShape& y = ctx.inputShapes[1];
  if (x.hasRank && y.hasRank && y.rank() + 1 != x.rank()) {
    ctx.error("target " + y.toString() + " must have one dim less than input " + x.toString());
  }
  ctx.setOutput(0, t, reduction == "none" ? y : SymShape{true, {}});
  ctx.setOutput(1, t, x);
}

}  // namespace

KILN_REGISTER_SCHEMAS(NegativeLogLikelihoodLoss, "NegativeLogLikelihoodLoss", inferLoss, 12, 13, 22);
KILN_REGISTER_SCHEMAS(SoftmaxCrossEntropyLoss, "SoftmaxCrossEntropyLoss", inferLoss, 12, 13);

}  // namespace kiln
