// Schemas of the activation functions (Relu family, sigmoids, Gelu, Clip, Shrink...). All keep the
// input's shape and type except PRelu, whose slope broadcasts to X. Kernels:
// backends/cpu/ops/activation*.cc.
#include "ops/elementwise_infer.h"
#include "ops/prelu_legacy.h"

namespace kiln {
namespace {

void inferActivation(InferContext& ctx) {
  inferRequire(ctx, 0, "X");
  ctx.setOutput(0, ctx.inputTypes[0], ctx.inputShapes[0]);
}

// PRelu: slope is unidirectionally broadcastable to X (the output has X's shape).
void inferPRelu(InferContext& ctx) {
  inferRequire(ctx, 0, "X");
  inferRequire(ctx, 1, "slope");
  DType t = inferSameType(ctx);
  const SymShape& x = ctx.inputShapes[0];
  SymShape slope = ctx.inputShapes[1];
  if (ctx.opset < 7 && slope.hasRank && x.hasRank) {
    std::vector<int64_t> slopeDims;
    for (const Dim& d : slope.dims) slopeDims.push_back(d.isKnown() ? d.value : -1);
    std::vector<int64_t> xDims;
    for (const Dim& d : x.dims) xDims.push_back(d.isKnown() ? d.value : -1);
    std::vector<int64_t> legacy = legacyPReluSlopeShape(ctx.opset, xDims, slopeDims);
    if (legacy != slopeDims) slope = SymShape::of(legacy);
  }
  SymShape out = ctx.broadcast({x, slope});
  if (x.hasRank && out.hasRank && out.rank() != x.rank()) {
    ctx.error("slope " + slope.toString() + " does not broadcast to X " + x.toString());
  }
  ctx.setOutput(0, t, x.hasRank ? x : out);
}

// Clip: min/max are attributes before opset 11 and optional scalar inputs from 11.
void inferClip(InferContext& ctx) {
  inferRequire(ctx, 0, "input");
  inferSameType(ctx);
  for (size_t i = 1; i < 3 && ctx.opset >= 11; i++) {
    if (!ctx.hasInput(i)) continue;
    const SymShape& s = ctx.inputShapes[i];
    bool scalar = !s.hasRank || s.rank() == 0 || (s.rank() == 1 && (!s.dims[0].isKnown() || s.dims[0].value == 1));
    if (!scalar) ctx.error(std::string(i == 1 ? "min" : "max") + " must be a scalar, got " + s.toString());
  }
  ctx.setOutput(0, ctx.inputTypes[0], ctx.inputShapes[0]);
}

// Gelu: approximate must be "none" or "tanh".
void inferGelu(InferContext& ctx) {
  std::string approximate = ctx.node.getString("approximate", "none");
  if (approximate != "none" && approximate != "tanh") ctx.error("approximate must be 'none' or 'tanh', got '" + approximate + "'");
  inferActivation(ctx);
}

}  // namespace

KILN_REGISTER_SCHEMAS(Relu, "Relu", inferActivation, 1, 6, 13, 14);
KILN_REGISTER_SCHEMAS(LeakyRelu, "LeakyRelu", inferActivation, 1, 6, 16);
KILN_REGISTER_SCHEMAS(PRelu, "PRelu", inferPRelu, 1, 6, 7, 9, 16);
KILN_REGISTER_SCHEMAS(Elu, "Elu", inferActivation, 1, 6, 22);
KILN_REGISTER_SCHEMAS(Selu, "Selu", inferActivation, 1, 6, 22);
KILN_REGISTER_SCHEMAS(Celu, "Celu", inferActivation, 12);
KILN_REGISTER_SCHEMAS(ThresholdedRelu, "ThresholdedRelu", inferActivation, 10, 22);
KILN_REGISTER_SCHEMAS(Sigmoid, "Sigmoid", inferActivation, 1, 6, 13);
KILN_REGISTER_SCHEMAS(HardSigmoid, "HardSigmoid", inferActivation, 1, 6, 22);
KILN_REGISTER_SCHEMAS(HardSwish, "HardSwish", inferActivation, 14, 22);
KILN_REGISTER_SCHEMAS(Swish, "Swish", inferActivation, 24);
KILN_REGISTER_SCHEMAS(Softplus, "Softplus", inferActivation, 1, 22);
KILN_REGISTER_SCHEMAS(Softsign, "Softsign", inferActivation, 1, 22);
KILN_REGISTER_SCHEMAS(Tanh, "Tanh", inferActivation, 1, 6, 13);
KILN_REGISTER_SCHEMAS(Gelu, "Gelu", inferGelu, 20);
KILN_REGISTER_SCHEMAS(Mish, "Mish", inferActivation, 18, 22);
KILN_REGISTER_SCHEMAS(Clip, "Clip", inferClip, 1, 6, 11, 12, 13);
KILN_REGISTER_SCHEMAS(Shrink, "Shrink", inferActivation, 9);

}  // namespace kiln
