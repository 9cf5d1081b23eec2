// Schemas of Cast, CastLike and BitCast. Kernels: backends/cpu/ops/cast.cc.
#include "ops/elementwise_infer.h"

namespace kiln {
namespace {

// Opset 1 spelled the target as a string ("FLOAT"); later opsets use the TensorProto code.
DType castTarget(InferContext& ctx) {
  auto it = ctx.node.attrs.find("to");
  if (it == ctx.node.attrs.end()) ctx.error("attribute 'to' is required");
  const Attribute& a = it->second;
  if (a.kind == Attribute::Kind::String) {
    static const std::pair<const char*, DType> kNames[] = {
        {"FLOAT", DType::Float32}, {"UINT8", DType::UInt8},     {"INT8", DType::Int8},     {"UINT16", DType::UInt16},
        {"INT16", DType::Int16},   {"INT32", DType::Int32},     {"INT64", DType::Int64},   {"STRING", DType::String},
        {"BOOL", DType::Bool},     {"FLOAT16", DType::Float16}, {"DOUBLE", DType::Float64}, {"UINT32", DType::UInt32},
        {"UINT64", DType::UInt64}, {"BFLOAT16", DType::BFloat16}};
    for (const auto& [name, type] : kNames) {
      if (a.s == name) return type;
    }
    fail(ErrorCode::UnsupportedOp, "unsupported operator " + ctx.node.opType + " (opset " + std::to_string(ctx.opset) +
                                       ") at node '" + ctx.node.name + "': target type '" + a.s + "'");
  }
  if (a.kind != Attribute::Kind::Int) ctx.error("attribute 'to' must be an int");
  if (!isKnownDType(static_cast<int32_t>(a.i)) || a.i > INT32_MAX) {
    // Float8, int4, float4 and friends have codes the engine has no storage for.
    fail(ErrorCode::UnsupportedOp, "unsupported operator " + ctx.node.opType + " (opset " + std::to_string(ctx.opset) +
                                       ") at node '" + ctx.node.name + "': target dtype code " + std::to_string(a.i));
  }
  return static_cast<DType>(a.i);
}

void inferCast(InferContext& ctx) {
  inferRequire(ctx, 0, "input");
  ctx.setOutput(0, castTarget(ctx), ctx.inputShapes[0]);
}

// BitCast (opset 26) reinterprets the bytes of each element; Kiln supports equal element sizes, so
// the shape is unchanged.
void inferBitCast(InferContext& ctx) {
  inferRequire(ctx, 0, "input");
  DType to = castTarget(ctx);
  DType from = ctx.inputTypes[0];
  if (to == DType::String || from == DType::String) ctx.error("BitCast does not apply to strings");
  if (from != DType::Undefined && dtypeSize(from) != dtypeSize(to)) {
    fail(ErrorCode::UnsupportedOp, "unsupported operator BitCast (opset " + std::to_string(ctx.opset) + ") at node '" +
                                       ctx.node.name + "': " + dtypeName(from) + " to " + dtypeName(to) +
                                       " changes the element size");
  }
  ctx.setOutput(0, to, ctx.inputShapes[0]);
}

void inferCastLike(InferContext& ctx) {
  inferRequire(ctx, 0, "input");
  inferRequire(ctx, 1, "target_type");
  ctx.setOutput(0, ctx.inputTypes[1], ctx.inputShapes[0]);
}

}  // namespace

KILN_REGISTER_SCHEMAS(Cast, "Cast", inferCast, 1, 6, 9, 13, 19, 21, 23, 24, 25);
KILN_REGISTER_SCHEMAS(BitCast, "BitCast", inferBitCast, 26);
KILN_REGISTER_SCHEMAS(CastLike, "CastLike", inferCastLike, 15, 19, 21, 23, 24, 25);

}  // namespace kiln
