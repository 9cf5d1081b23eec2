// Schemas of GridSample (opset 16: 4-D, bilinear/nearest/bicubic; opset 20: N-D, linear/nearest/
// cubic) and Col2Im (opset 18).
#include "ops/tensor_util.h"

namespace kiln {

namespace {

void inferGridSample(InferContext& ctx) {
  expectInput(ctx, 0, "X");
  expectInput(ctx, 1, "grid");
  const SymShape& x = ctx.inputShapes[0];
  const SymShape& grid = ctx.inputShapes[1];
  const std::string mode = ctx.node.getString("mode", ctx.opset >= 20 ? "linear" : "bilinear");
  if (mode != "linear" && mode != "bilinear" && mode != "nearest" && mode != "cubic" && mode != "bicubic") {
    ctx.error("unsupported mode '" + mode + "'");
  }
  const std::string padding = ctx.node.getString("padding_mode", "zeros");
  if (padding != "zeros" && padding != "border" && padding != "reflection") ctx.error("unsupported padding_mode '" + padding + "'");
  if (!x.hasRank || !grid.hasRank) {
    ctx.setOutput(0, ctx.inputTypes[0], SymShape::unknown());
    return;
  }
  if (x.rank() < 3 || grid.rank() != x.rank()) {
    ctx.error("X " + x.toString() + " and grid " + grid.toString() + " must be [N,C,D1..Dr] and [N,D1'..Dr',r]");
  }
  if (ctx.opset < 20 && x.rank() != 4) ctx.error("GridSample-16 supports 4-D inputs only");
  const Dim& last = grid.dims.back();
  if (last.isKnown() && last.value != (int64_t)x.rank() - 2) {
    ctx.error("grid's last dim must be " + std::to_string(x.rank() - 2) + ", got " + last.toString());
  }
  if ((mode == "cubic" || mode == "bicubic") && x.rank() != 4) ctx.error("cubic mode supports 4-D inputs only");
  SymShape out{true, {x.dims[0], x.dims[1]}};
  out.dims.insert(out.dims.end(), grid.dims.begin() + 1, grid.dims.end() - 1);
  ctx.setOutput(0, ctx.inputTypes[0], out);
}

void inferCol2Im(InferContext& ctx) {
  expectInput(ctx, 0, "input");
  expectInput(ctx, 1, "image_shape");
  expectInput(ctx, 2, "block_shape");
  const SymShape& in = ctx.inputShapes[0];
  if (in.hasRank && in.rank() != 3) ctx.error("input must be [N, C*prod(block_shape), L], got " + in.toString());
  auto image = ctx.intValues(1);
  auto block = ctx.intValues(2);
  SymShape out;
  if (!in.hasRank) {
    ctx.setOutput(0, ctx.inputTypes[0], out);
    return;
  }
  out.hasRank = true;
  out.dims.push_back(in.dims[0]);
  Dim c = ctx.freshDim();
  if (block) {
    int64_t prod = 1;
    for (int64_t b : *block) {
      if (b <= 0) ctx.error("block_shape " + shapeToString(*block) + " must be positive");
      prod *= b;
    }
    if (in.dims[1].isKnown()) {
      if (in.dims[1].value % prod != 0) ctx.error("input's dim 1 is not divisible by prod(block_shape) = " + std::to_string(prod));
      c = Dim::known(in.dims[1].value / prod);
    }
  }
  out.dims.push_back(c);
  if (image) {
    for (int64_t d : *image) {
      if (d <= 0) ctx.error("image_shape " + shapeToString(*image) + " must be positive");
      out.dims.push_back(Dim::known(d));
    }
  } else {
    const SymShape& s = ctx.inputShapes[1];
    if (!(s.hasRank && s.rank() == 1 && s.dims[0].isKnown())) {
      ctx.setOutput(0, ctx.inputTypes[0], SymShape::unknown());
      return;
    }
    for (int64_t i = 0; i < s.dims[0].value; i++) out.dims.push_back(ctx.freshDim());
  }
  ctx.setOutput(0, ctx.inputTypes[0], out);
}

}  // namespace

KILN_REGISTER_SCHEMA(GridSample, (OpSchema{"", "GridSample", 16, inferGridSample}));
KILN_REGISTER_SCHEMA(GridSample, (OpSchema{"", "GridSample", 20, inferGridSample}));  // N-D, renamed modes
KILN_REGISTER_SCHEMA(Col2Im, (OpSchema{"", "Col2Im", 18, inferCol2Im}));

}  // namespace kiln
