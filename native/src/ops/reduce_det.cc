// Schema of Det: the determinant of each square matrix in the trailing two dims ([*, M, M] -> [*]).
// Kernel: backends/cpu/ops/reduce_det.cc.
#include "ops/elementwise_infer.h"

namespace kiln {
namespace {

void inferDet(InferContext& ctx) {
  inferRequire(ctx, 0, "X");
  const SymShape& x = ctx.inputShapes[0];
  if (!x.hasRank) {
    ctx.setOutput(0, ctx.inputTypes[0], SymShape::unknown());
    return;
  }
  if (x.rank() < 2) ctx.error("input must have rank >= 2, got " + x.toString());
  const Dim& m = x.dims[x.rank() - 2];
  const Dim& n = x.dims[x.rank() - 1];
  if (m.isKnown() && n.isKnown() && m.value != n.value) ctx.error("matrices must be square, got " + x.toString());
  SymShape out;
  out.hasRank = true;
  out.dims.assign(x.dims.begin(), x.dims.end() - 2);
  ctx.setOutput(0, ctx.inputTypes[0], out);
}

}  // namespace

KILN_REGISTER_SCHEMAS(Det, "Det", inferDet, 11, 22);

}  // namespace kiln
