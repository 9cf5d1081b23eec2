// Schemas of comparisons, boolean logic, bitwise ops and Where. Kernels: backends/cpu/ops/logic.cc.
#include "ops/elementwise_infer.h"

namespace kiln {
namespace {

// Equal, Less, Greater, LessOrEqual, GreaterOrEqual: same-typed operands, bool result.
void inferComparison(InferContext& ctx) {
  inferRequire(ctx, 0, "A");
  inferRequire(ctx, 1, "B");
  inferSameType(ctx);
  SymShape b = legacyAlignedShape(ctx.node, ctx.opset, ctx.inputShapes[0].rank(), ctx.inputShapes[1]);
  ctx.setOutput(0, DType::Bool, ctx.broadcast({ctx.inputShapes[0], b}));
}

// And, Or, Xor: bool operands, bool result.
void inferLogical(InferContext& ctx) {
  inferRequire(ctx, 0, "A");
  inferRequire(ctx, 1, "B");
  inferRequireType(ctx, 0, DType::Bool, "A");
  inferRequireType(ctx, 1, DType::Bool, "B");
  SymShape b = legacyAlignedShape(ctx.node, ctx.opset, ctx.inputShapes[0].rank(), ctx.inputShapes[1]);
  ctx.setOutput(0, DType::Bool, ctx.broadcast({ctx.inputShapes[0], b}));
}

void inferNot(InferContext& ctx) {
  inferRequire(ctx, 0, "X");
  inferRequireType(ctx, 0, DType::Bool, "X");
  ctx.setOutput(0, DType::Bool, ctx.inputShapes[0]);
}

// BitShift, BitwiseAnd/Or/Xor: same-typed integer operands, result of that type.
void inferBitwise(InferContext& ctx) {
  inferRequire(ctx, 0, "A");
  inferRequire(ctx, 1, "B");
  DType t = inferSameType(ctx);
  if (ctx.node.opType == "BitShift") {
    std::string direction = ctx.node.getString("direction", "");
    if (direction != "LEFT" && direction != "RIGHT") ctx.error("direction must be LEFT or RIGHT, got '" + direction + "'");
  }
  ctx.setOutput(0, t, ctx.broadcast({ctx.inputShapes[0], ctx.inputShapes[1]}));
}

void inferBitwiseNot(InferContext& ctx) {
  inferRequire(ctx, 0, "X");
  ctx.setOutput(0, ctx.inputTypes[0], ctx.inputShapes[0]);
}

// Where(condition, X, Y): bool condition, X and Y of one type, all three broadcast.
void inferWhere(InferContext& ctx) {
  inferRequire(ctx, 0, "condition");
  inferRequire(ctx, 1, "X");
  inferRequire(ctx, 2, "Y");
  inferRequireType(ctx, 0, DType::Bool, "condition");
  DType t = inferSameType(ctx, 1, 3);
  ctx.setOutput(0, t, inferBroadcastShape(ctx));
}

}  // namespace

KILN_REGISTER_SCHEMAS(Equal, "Equal", inferComparison, 1, 7, 11, 13, 19);
KILN_REGISTER_SCHEMAS(Less, "Less", inferComparison, 1, 7, 9, 13);
KILN_REGISTER_SCHEMAS(Greater, "Greater", inferComparison, 1, 7, 9, 13);
KILN_REGISTER_SCHEMAS(LessOrEqual, "LessOrEqual", inferComparison, 12, 16);
KILN_REGISTER_SCHEMAS(GreaterOrEqual, "GreaterOrEqual", inferComparison, 12, 16);
KILN_REGISTER_SCHEMAS(And, "And", inferLogical, 1, 7);
KILN_REGISTER_SCHEMAS(Or, "Or", inferLogical, 1, 7);
KILN_REGISTER_SCHEMAS(Xor, "Xor", inferLogical, 1, 7);
KILN_REGISTER_SCHEMAS(Not, "Not", inferNot, 1);
KILN_REGISTER_SCHEMAS(BitShift, "BitShift", inferBitwise, 11);
KILN_REGISTER_SCHEMAS(BitwiseAnd, "BitwiseAnd", inferBitwise, 18);
KILN_REGISTER_SCHEMAS(BitwiseOr, "BitwiseOr", inferBitwise, 18);
KILN_REGISTER_SCHEMAS(BitwiseXor, "BitwiseXor", inferBitwise, 18);
KILN_REGISTER_SCHEMAS(BitwiseNot, "BitwiseNot", inferBitwiseNot, 18);
KILN_REGISTER_SCHEMAS(Where, "Where", inferWhere, 9, 16);

}  // namespace kiln
