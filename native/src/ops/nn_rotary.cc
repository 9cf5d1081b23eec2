// Schema of RotaryEmbedding-23: rotates pairs of features of X by the angles whose cos/sin the
// caches hold (looked up by position_ids when given). Y has X's shape. Kernel:
// backends/cpu/ops/rotary.cc.
#include "ops/elementwise_infer.h"

namespace kiln {
namespace {

void inferRotaryEmbedding(InferContext& ctx) {
  inferRequire(ctx, 0, "X");
  inferRequire(ctx, 1, "cos_cache");
  inferRequire(ctx, 2, "sin_cache");
  const DType t = inferSameType(ctx, 0, 3);
  const SymShape& x = ctx.inputShapes[0];
  if (x.hasRank && x.rank() != 3 && x.rank() != 4) ctx.error("X must have rank 3 or 4, got " + x.toString());
  if (x.hasRank && x.rank() == 3 && ctx.node.getInt("num_heads", 0) <= 0) ctx.error("3-D X needs the num_heads attribute");
  if (ctx.hasInput(3) && ctx.inputTypes[3] != DType::Undefined && ctx.inputTypes[3] != DType::Int64) {
    ctx.error("position_ids must be int64");
  }
  ctx.setOutput(0, t, x);
}

}  // namespace

KILN_REGISTER_SCHEMAS(RotaryEmbedding, "RotaryEmbedding", inferRotaryEmbedding, 23);

}  // namespace kiln
