// Schemas of the pooling ops: MaxPool (with optional Indices), AveragePool, LpPool, the global
// pools and MaxUnpool. Window rules (pads, auto_pad, ceil_mode, dilations) in ops/nn_geometry.cc.
// Kernels: backends/cpu/ops/pool*.cc.
#include <string>

#include "ops/nn_geometry.h"
#include "ops/nn_infer.h"

namespace kiln {
namespace {

void requireInput(InferContext& ctx, size_t i, const char* name) {
  if (!ctx.hasInput(i)) ctx.error(std::string("input ") + name + " is required");
}

void inferWindowPool(InferContext& ctx) {
  requireInput(ctx, 0, "X");
  const SymShape& x = ctx.inputShapes[0];
  const DType t = ctx.inputTypes[0];
  if (!x.hasRank) {
    ctx.setOutput(0, t, SymShape::unknown());
    ctx.setOutput(1, DType::Int64, SymShape::unknown());
    return;
  }
  if (x.rank() < 3) ctx.error("input X must be at least 3-D [N, C, spatial...], got " + x.toString());
  const size_t spatial = x.rank() - 2;
  if (!ctx.node.has("kernel_shape")) ctx.error("attribute kernel_shape is required");
  WindowParams p = readWindowParams(ctx.node, spatial, {});
  SymShape out{true, {x.dims[0], x.dims[1]}};
  for (size_t d = 0; d < spatial; d++) {
    if (x.dims[d + 2].isKnown()) {
      out.dims.push_back(Dim::known(forwardWindowDim(ctx.node, p, d, x.dims[d + 2].value).out));
    } else {
      out.dims.push_back(ctx.freshDim());
    }
  }
  ctx.setOutput(0, t, out);
  ctx.setOutput(1, DType::Int64, out);  // MaxPool's Indices
}

void inferGlobalPool(InferContext& ctx) {
  requireInput(ctx, 0, "X");
  const SymShape& x = ctx.inputShapes[0];
  if (!x.hasRank) {
    ctx.setOutput(0, ctx.inputTypes[0], SymShape::unknown());
    return;
  }
  if (x.rank() < 2) ctx.error("input X must be at least 2-D [N, C, ...], got " + x.toString());
  SymShape out = x;
  for (size_t d = 2; d < out.rank(); d++) out.dims[d] = Dim::known(1);
  ctx.setOutput(0, ctx.inputTypes[0], out);
}

void inferMaxUnpool(InferContext& ctx) {
  // X, I, output_shape?
  requireInput(ctx, 0, "X");
  requireInput(ctx, 1, "I");
  const SymShape& x = ctx.inputShapes[0];
  const DType t = ctx.inputTypes[0];
  if (ctx.inputTypes[1] != DType::Undefined && ctx.inputTypes[1] != DType::Int64) {
    ctx.error(std::string("indices I must be int64, got ") + dtypeName(ctx.inputTypes[1]));
  }
  if (ctx.hasInput(2)) {
    std::optional<std::vector<int64_t>> shape = ctx.intValues(2);
    if (!shape) {
      const SymShape& s = ctx.inputShapes[2];
      SymShape out;
      if (s.hasRank && s.rank() == 1 && s.dims[0].isKnown()) {
        out.hasRank = true;
        for (int64_t i = 0; i < s.dims[0].value; i++) out.dims.push_back(ctx.freshDim());
      }
      ctx.setOutput(0, t, out);
      return;
    }
    if (x.hasRank && shape->size() != x.rank()) {
      ctx.error("output_shape has " + std::to_string(shape->size()) + " values, X " + x.toString() + " needs " +
                std::to_string(x.rank()));
    }
    for (int64_t d : *shape) {
      if (d < 0) ctx.error("output_shape has a negative dimension");
    }
    ctx.setOutput(0, t, SymShape::of(*shape));
    return;
  }
  if (!x.hasRank) {
    ctx.setOutput(0, t, SymShape::unknown());
    return;
  }
  if (x.rank() < 3) ctx.error("input X must be at least 3-D [N, C, spatial...], got " + x.toString());
  const size_t spatial = x.rank() - 2;
  if (!ctx.node.has("kernel_shape")) ctx.error("attribute kernel_shape is required");
  WindowParams p = readWindowParams(ctx.node, spatial, {});
  SymShape out{true, {x.dims[0], x.dims[1]}};
  for (size_t d = 0; d < spatial; d++) {
    const Dim& in = x.dims[d + 2];
    if (!in.isKnown()) {
      out.dims.push_back(ctx.freshDim());
      continue;
    }
    // The inverse of a pool's output size: (in - 1) * stride + kernel - pads.
    const int64_t size = (in.value - 1) * p.strides[d] + p.kernel[d] - p.pads[d] - p.pads[d + spatial];
    if (size < 0) ctx.error("pads exceed the unpooled size in spatial dim " + std::to_string(d));
    out.dims.push_back(Dim::known(size));
  }
  ctx.setOutput(0, t, out);
}

}  // namespace

KILN_REGISTER_SCHEMA(MaxPool, (OpSchema{"", "MaxPool", 1, inferWindowPool}));
KILN_REGISTER_SCHEMA(AveragePool, (OpSchema{"", "AveragePool", 1, inferWindowPool}));
KILN_REGISTER_SCHEMA(LpPool, (OpSchema{"", "LpPool", 1, inferWindowPool}));
KILN_REGISTER_SCHEMA(GlobalAveragePool, (OpSchema{"", "GlobalAveragePool", 1, inferGlobalPool}));
KILN_REGISTER_SCHEMA(GlobalMaxPool, (OpSchema{"", "GlobalMaxPool", 1, inferGlobalPool}));
KILN_REGISTER_SCHEMA(GlobalLpPool, (OpSchema{"", "GlobalLpPool", 1, inferGlobalPool}));
KILN_REGISTER_SCHEMA(MaxUnpool, (OpSchema{"", "MaxUnpool", 9, inferMaxUnpool}));

}  // namespace kiln
