// Schemas of the elementwise math ops: unary math, binary arithmetic (Add Sub Mul Div Pow Mod),
// the variadic Sum/Mean/Max/Min, and Dropout (identity at inference). Kernels:
// backends/cpu/ops/elementwise*.cc.
#include "ops/elementwise_infer.h"

namespace kiln {
namespace {

void inferUnary(InferContext& ctx) {
  inferRequire(ctx, 0, "X");
  ctx.setOutput(0, ctx.inputTypes[0], ctx.inputShapes[0]);
}

// IsNaN, IsInf: same shape, bool result.
void inferPredicate(InferContext& ctx) {
  inferRequire(ctx, 0, "X");
  ctx.setOutput(0, DType::Bool, ctx.inputShapes[0]);
}

// Add, Sub, Mul, Div, Mod: both operands of one type, numpy broadcasting (legacy alignment < 7).
void inferArithmetic(InferContext& ctx) {
  inferRequire(ctx, 0, "A");
  inferRequire(ctx, 1, "B");
  DType t = inferSameType(ctx);
  SymShape b = legacyAlignedShape(ctx.node, ctx.opset, ctx.inputShapes[0].rank(), ctx.inputShapes[1]);
  ctx.setOutput(0, t, ctx.broadcast({ctx.inputShapes[0], b}));
}

// Pow: from opset 12 the exponent may have another numeric type; the result has the base's type.
void inferPow(InferContext& ctx) {
  inferRequire(ctx, 0, "X");
  inferRequire(ctx, 1, "Y");
  if (ctx.opset < 12) inferSameType(ctx);
  SymShape b = legacyAlignedShape(ctx.node, ctx.opset, ctx.inputShapes[0].rank(), ctx.inputShapes[1]);
  ctx.setOutput(0, ctx.inputTypes[0], ctx.broadcast({ctx.inputShapes[0], b}));
}

// Sum, Mean, Max, Min: one or more inputs of one type (multidirectional broadcasting from opset 8).
void inferVariadic(InferContext& ctx) {
  if (ctx.numInputs() == 0) ctx.error("needs at least one input");
  for (size_t i = 0; i < ctx.numInputs(); i++) inferRequire(ctx, i, "data");
  DType t = inferSameType(ctx);
  ctx.setOutput(0, t, inferBroadcastShape(ctx));
}

// Dropout: output = data; the optional mask has data's shape and is bool from opset 10 (before,
// it had data's type). ratio (input 1 from opset 12) must be a float scalar in [0, 1).
void inferDropout(InferContext& ctx) {
  inferRequire(ctx, 0, "data");
  ctx.setOutput(0, ctx.inputTypes[0], ctx.inputShapes[0]);
  ctx.setOutput(1, ctx.opset >= 10 ? DType::Bool : ctx.inputTypes[0], ctx.inputShapes[0]);
  if (ctx.opset >= 12 && ctx.hasInput(2)) inferRequireType(ctx, 2, DType::Bool, "training_mode");
}

}  // namespace

KILN_REGISTER_SCHEMAS(Abs, "Abs", inferUnary, 1, 6, 13);
KILN_REGISTER_SCHEMAS(Neg, "Neg", inferUnary, 1, 6, 13);
KILN_REGISTER_SCHEMAS(Floor, "Floor", inferUnary, 1, 6, 13);
KILN_REGISTER_SCHEMAS(Ceil, "Ceil", inferUnary, 1, 6, 13);
KILN_REGISTER_SCHEMAS(Round, "Round", inferUnary, 11, 22);
KILN_REGISTER_SCHEMAS(Sqrt, "Sqrt", inferUnary, 1, 6, 13);
KILN_REGISTER_SCHEMAS(Reciprocal, "Reciprocal", inferUnary, 1, 6, 13);
KILN_REGISTER_SCHEMAS(Exp, "Exp", inferUnary, 1, 6, 13);
KILN_REGISTER_SCHEMAS(Log, "Log", inferUnary, 1, 6, 13);
KILN_REGISTER_SCHEMAS(Sin, "Sin", inferUnary, 7, 22);
KILN_REGISTER_SCHEMAS(Cos, "Cos", inferUnary, 7, 22);
KILN_REGISTER_SCHEMAS(Tan, "Tan", inferUnary, 7, 22);
KILN_REGISTER_SCHEMAS(Asin, "Asin", inferUnary, 7, 22);
KILN_REGISTER_SCHEMAS(Acos, "Acos", inferUnary, 7, 22);
KILN_REGISTER_SCHEMAS(Atan, "Atan", inferUnary, 7, 22);
KILN_REGISTER_SCHEMAS(Sinh, "Sinh", inferUnary, 9, 22);
KILN_REGISTER_SCHEMAS(Cosh, "Cosh", inferUnary, 9, 22);
KILN_REGISTER_SCHEMAS(Asinh, "Asinh", inferUnary, 9, 22);
KILN_REGISTER_SCHEMAS(Acosh, "Acosh", inferUnary, 9, 22);
KILN_REGISTER_SCHEMAS(Atanh, "Atanh", inferUnary, 9, 22);
KILN_REGISTER_SCHEMAS(Sign, "Sign", inferUnary, 9, 13);
KILN_REGISTER_SCHEMAS(Erf, "Erf", inferUnary, 9, 13);
KILN_REGISTER_SCHEMAS(IsNaN, "IsNaN", inferPredicate, 9, 13, 20);
KILN_REGISTER_SCHEMAS(IsInf, "IsInf", inferPredicate, 10, 20);

KILN_REGISTER_SCHEMAS(Add, "Add", inferArithmetic, 1, 6, 7, 13, 14);
KILN_REGISTER_SCHEMAS(Sub, "Sub", inferArithmetic, 1, 6, 7, 13, 14);
KILN_REGISTER_SCHEMAS(Mul, "Mul", inferArithmetic, 1, 6, 7, 13, 14);
KILN_REGISTER_SCHEMAS(Div, "Div", inferArithmetic, 1, 6, 7, 13, 14);
KILN_REGISTER_SCHEMAS(Mod, "Mod", inferArithmetic, 10, 13);
KILN_REGISTER_SCHEMAS(Pow, "Pow", inferPow, 1, 7, 12, 13, 15);

KILN_REGISTER_SCHEMAS(Sum, "Sum", inferVariadic, 1, 6, 8, 13);
KILN_REGISTER_SCHEMAS(Mean, "Mean", inferVariadic, 1, 6, 8, 13);
KILN_REGISTER_SCHEMAS(Max, "Max", inferVariadic, 1, 6, 8, 12, 13);
KILN_REGISTER_SCHEMAS(Min, "Min", inferVariadic, 1, 6, 8, 12, 13);

KILN_REGISTER_SCHEMAS(Dropout, "Dropout", inferDropout, 1, 6, 7, 10, 12, 13, 22);

}  // namespace kiln
