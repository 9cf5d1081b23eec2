// Schemas of Conv, ConvTranspose, ConvInteger and QLinearConv: NCHW-style [N, C, spatial...]
// inputs with weights [M, C/group, k...] (ConvTranspose: [C, M/group, k...]); window rules in
// ops/nn_geometry.cc. Kernels: backends/cpu/ops/conv*.cc.
#include <string>

#include "ops/nn_geometry.h"
#include "ops/nn_infer.h"

namespace kiln {
namespace {

bool knownDiffer(const Dim& a, const Dim& b) { return a.isKnown() && b.isKnown() && a.value != b.value; }

void requireInput(InferContext& ctx, size_t i, const char* name) {
  if (!ctx.hasInput(i)) ctx.error(std::string("input ") + name + " is required");
}

// Shared by every conv flavour: x / w input indices, optional bias index (or -1), output type.
void inferConvGeneric(InferContext& ctx, size_t xi, size_t wi, int biasIndex, DType outType, bool transposed) {
  requireInput(ctx, xi, "X");
  requireInput(ctx, wi, "W");
  const SymShape& x = ctx.inputShapes[xi];
  const SymShape& w = ctx.inputShapes[wi];
  const int64_t group = ctx.node.getInt("group", 1);
  if (group < 1) ctx.error("group " + std::to_string(group) + " must be >= 1");
  if (!x.hasRank && !w.hasRank) {
    ctx.setOutput(0, outType, SymShape::unknown());
    return;
  }
  const size_t rank = x.hasRank ? x.rank() : w.rank();
  if (rank < 3) ctx.error("input X must be at least 3-D [N, C, spatial...], got " + x.toString());
  if (x.hasRank && w.hasRank && w.rank() != rank) {
    ctx.error("weight W " + w.toString() + " must have the rank of X " + x.toString());
  }
  if (x.hasRank && w.hasRank) {
    // Channel agreement: Conv's W[1] is C/group; ConvTranspose's W[0] is C.
    const Dim& c = x.dims[1];
    if (transposed) {
      if (knownDiffer(c, w.dims[0])) {
        ctx.error("input X " + x.toString() + " has " + c.toString() + " channels but W " + w.toString() + " expects " +
                  w.dims[0].toString());
      }
    } else if (c.isKnown() && w.dims[1].isKnown() && c.value != w.dims[1].value * group) {
      ctx.error("input X " + x.toString() + " has " + c.toString() + " channels but W " + w.toString() + " with group " +
                std::to_string(group) + " expects " + std::to_string(w.dims[1].value * group));
    }
    if (c.isKnown() && c.value % group != 0) {
      ctx.error("channels " + c.toString() + " are not divisible by group " + std::to_string(group));
    }
  }
  Dim outChannels = ctx.freshDim();
  if (w.hasRank) {
    if (transposed) {
      outChannels = ctx.mul(w.dims[1], Dim::known(group));
    } else {
      outChannels = w.dims[0];
      if (w.dims[0].isKnown() && w.dims[0].value % group != 0) {
        ctx.error("output channels " + w.dims[0].toString() + " of W are not divisible by group " + std::to_string(group));
      }
    }
  }
  if (biasIndex >= 0 && ctx.hasInput(size_t(biasIndex))) {
    const SymShape& b = ctx.inputShapes[size_t(biasIndex)];
    if (b.hasRank && (b.rank() != 1 || knownDiffer(b.dims[0], outChannels))) {
      ctx.error("bias B " + b.toString() + " must be 1-D with " + outChannels.toString() + " values");
    }
  }
  SymShape out;
  out.hasRank = true;
  out.dims.push_back(x.hasRank ? x.dims[0] : ctx.freshDim());
  out.dims.push_back(outChannels);
  const size_t spatial = rank - 2;
  std::optional<std::vector<int64_t>> kernel = knownKernel(w);
  if (!kernel && !ctx.node.has("kernel_shape")) {
    for (size_t d = 0; d < spatial; d++) out.dims.push_back(ctx.freshDim());
    ctx.setOutput(0, outType, out);
    return;
  }
  WindowParams p = readWindowParams(ctx.node, spatial, kernel ? *kernel : std::vector<int64_t>{}, transposed);
  for (size_t d = 0; d < spatial; d++) {
    if (x.hasRank && x.dims[d + 2].isKnown()) {
      WindowDim r = transposed ? transposedWindowDim(ctx.node, p, d, x.dims[d + 2].value)
                               : forwardWindowDim(ctx.node, p, d, x.dims[d + 2].value);
      out.dims.push_back(Dim::known(r.out));
    } else if (transposed && !p.outputShape.empty()) {
      out.dims.push_back(Dim::known(p.outputShape[d]));
    } else {
      out.dims.push_back(ctx.freshDim());
    }
  }
  ctx.setOutput(0, outType, out);
}

void requireSameType(InferContext& ctx, size_t a, size_t b, const char* what) {
  DType ta = ctx.inputTypes[a], tb = ctx.inputTypes[b];
  if (ta != DType::Undefined && tb != DType::Undefined && ta != tb) {
    ctx.error(std::string(what) + " types differ: " + dtypeName(ta) + " vs " + dtypeName(tb));
  }
}

void inferConvInteger(InferContext& ctx) { inferConvGeneric(ctx, 0, 1, -1, DType::Int32, false); }

void inferQLinearConv(InferContext& ctx) {
  // x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, B?
  requireInput(ctx, 7, "y_zero_point");
  inferConvGeneric(ctx, 0, 3, 8, ctx.inputTypes[7], false);
}

}  // namespace

void inferConv(InferContext& ctx) {
  requireSameType(ctx, 0, 1, "X and W");
  inferConvGeneric(ctx, 0, 1, 2, ctx.inputTypes[0], false);
}

void inferConvTranspose(InferContext& ctx) {
  requireSameType(ctx, 0, 1, "X and W");
  inferConvGeneric(ctx, 0, 1, 2, ctx.inputTypes[0], true);
}

KILN_REGISTER_SCHEMA(Conv, (OpSchema{"", "Conv", 1, inferConv}));
KILN_REGISTER_SCHEMA(ConvTranspose, (OpSchema{"", "ConvTranspose", 1, inferConvTranspose}));
KILN_REGISTER_SCHEMA(ConvInteger, (OpSchema{"", "ConvInteger", 10, inferConvInteger}));
KILN_REGISTER_SCHEMA(QLinearConv, (OpSchema{"", "QLinearConv", 10, inferQLinearConv}));

}  // namespace kiln
