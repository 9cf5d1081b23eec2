// Schemas of QuantizeLinear and DequantizeLinear: per-tensor (scalar scale), per-axis (1-D scale
// along `axis`, opset 13) and blocked (scale of x's rank with dim axis = ceil(n / block_size),
// opset 21). Kernels: backends/cpu/ops/quantize.cc.
#include "ops/elementwise_infer.h"

namespace kiln {
namespace {

DType attrDType(InferContext& ctx, const char* attr) {
  int64_t code = ctx.node.getInt(attr, 0);
  if (code == 0) return DType::Undefined;
  if (code > INT32_MAX || !isKnownDType(static_cast<int32_t>(code))) {
    fail(ErrorCode::UnsupportedOp, "unsupported operator " + ctx.node.opType + " (opset " + std::to_string(ctx.opset) +
                                       ") at node '" + ctx.node.name + "': " + attr + " dtype code " +
                                       std::to_string(code));
  }
  return static_cast<DType>(code);
}

void inferQuantize(InferContext& ctx) {
  inferRequire(ctx, 0, "x");
  inferRequire(ctx, 1, "y_scale");
  DType out = DType::UInt8;
  DType requested = ctx.opset >= 21 ? attrDType(ctx, "output_dtype") : DType::Undefined;
  if (ctx.hasInput(2)) {
    out = ctx.inputTypes[2];
    if (requested != DType::Undefined && requested != out) {
      ctx.error(std::string("output_dtype ") + dtypeName(requested) + " differs from y_zero_point's type " + dtypeName(out));
    }
  } else if (requested != DType::Undefined) {
    out = requested;
  }
  ctx.setOutput(0, out, ctx.inputShapes[0]);
}

void inferDequantize(InferContext& ctx) {
  inferRequire(ctx, 0, "x");
  inferRequire(ctx, 1, "x_scale");
  if (ctx.hasInput(2)) inferRequireType(ctx, 2, ctx.inputTypes[0], "x_zero_point");
  DType out = ctx.opset >= 19 ? ctx.inputTypes[1] : DType::Float32;
  DType requested = ctx.opset >= 23 ? attrDType(ctx, "output_dtype") : DType::Undefined;
  if (requested != DType::Undefined) out = requested;
  ctx.setOutput(0, out, ctx.inputShapes[0]);
}

// DynamicQuantizeLinear-11: x (float) -> y (uint8, x's shape), y_scale and y_zero_point (scalars).
void inferDynamicQuantize(InferContext& ctx) {
  if (!ctx.hasInput(0)) ctx.error("input 0 (x) is required");
  if (ctx.inputTypes[0] != DType::Undefined && ctx.inputTypes[0] != DType::Float32) ctx.error("x must be float32");
  ctx.setOutput(0, DType::UInt8, ctx.inputShapes[0]);
  ctx.setOutput(1, DType::Float32, SymShape{true, {}});
  ctx.setOutput(2, DType::UInt8, SymShape{true, {}});
}

}  // namespace

KILN_REGISTER_SCHEMAS(DynamicQuantizeLinear, "DynamicQuantizeLinear", inferDynamicQuantize, 11);
KILN_REGISTER_SCHEMAS(QuantizeLinear, "QuantizeLinear", inferQuantize, 10, 13, 19, 21, 23, 24, 25);
KILN_REGISTER_SCHEMAS(DequantizeLinear, "DequantizeLinear", inferDequantize, 10, 13, 19, 21, 23, 24, 25);

}  // namespace kiln
