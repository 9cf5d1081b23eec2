// Schemas of the ops that make tensors from attributes or scalars: Constant, ConstantOfShape,
// Range and EyeLike. Constant always publishes its value so constant propagation sees it.
#include "ops/tensor_generate.h"

#include <cmath>

#include "ops/tensor_util.h"

namespace kiln {

std::shared_ptr<Tensor> constantNodeValue(const Node& node) {
  static const char* const kNames[] = {"value",       "sparse_value", "value_float",  "value_floats",
                                       "value_int",   "value_ints",   "value_string", "value_strings"};
  const Attribute* found = nullptr;
  std::string which;
  for (const char* name : kNames) {
    auto it = node.attrs.find(name);
    if (it == node.attrs.end()) continue;
    if (found) nodeFail(node, ErrorCode::InvalidModel, "has both '" + which + "' and '" + name + "'");
    found = &it->second;
    which = name;
  }
  if (!found) nodeFail(node, ErrorCode::InvalidModel, "has no value attribute");
  const Attribute& a = *found;
  if (which == "value" || which == "sparse_value") {
    if (a.kind != Attribute::Kind::Tensor || !a.t) nodeFail(node, ErrorCode::InvalidModel, "'" + which + "' is not a tensor");
    return a.t;
  }
  std::shared_ptr<Tensor> t;
  if (which == "value_float") {
    t = std::make_shared<Tensor>(Tensor::allocate(DType::Float32, {}));
    t->ptr<float>()[0] = a.f;
  } else if (which == "value_floats") {
    t = std::make_shared<Tensor>(Tensor::allocate(DType::Float32, {(int64_t)a.floats.size()}));
    std::copy(a.floats.begin(), a.floats.end(), t->ptr<float>());
  } else if (which == "value_int") {
    t = std::make_shared<Tensor>(Tensor::allocate(DType::Int64, {}));
    t->ptr<int64_t>()[0] = a.i;
  } else if (which == "value_ints") {
    t = std::make_shared<Tensor>(Tensor::allocate(DType::Int64, {(int64_t)a.ints.size()}));
    std::copy(a.ints.begin(), a.ints.end(), t->ptr<int64_t>());
  } else if (which == "value_string") {
    t = std::make_shared<Tensor>(Tensor::allocate(DType::String, {}));
    t->ptr<std::string>()[0] = a.s;
  } else {
    t = std::make_shared<Tensor>(Tensor::allocate(DType::String, {(int64_t)a.strings.size()}));
    std::copy(a.strings.begin(), a.strings.end(), t->ptr<std::string>());
  }
  return t;
}

int64_t rangeCount(const Node& node, double start, double limit, double delta) {
  if (delta == 0 || std::isnan(delta) || std::isnan(start) || std::isnan(limit)) {
    nodeFail(node, ErrorCode::InvalidArgument, "delta must be non-zero and all inputs numbers");
  }
  const double n = std::ceil((limit - start) / delta);
  if (!(n <= double(int64_t(1) << 40))) {
    nodeFail(node, ErrorCode::InvalidArgument, "range of " + std::to_string(n) + " elements is too large");
  }
  return n > 0 ? (int64_t)n : 0;
}

namespace {

void inferConstant(InferContext& ctx) {
  std::shared_ptr<Tensor> v = constantNodeValue(ctx.node);
  ctx.setOutput(0, v->dtype, SymShape::of(v->shape));
  ctx.outputValues[0] = v;
}

void inferConstantOfShape(InferContext& ctx) {
  expectInput(ctx, 0, "input");
  if (ctx.inputTypes[0] != DType::Int64) ctx.error("input must be an int64 shape");
  DType type = DType::Float32;
  if (ctx.node.has("value")) {
    auto it = ctx.node.attrs.find("value");
    if (it->second.kind != Attribute::Kind::Tensor || !it->second.t || it->second.t->numel() != 1) {
      ctx.error("value must be a one-element tensor");
    }
    type = it->second.t->dtype;
  }
  SymShape out;
  if (auto shape = ctx.intValues(0)) {
    for (int64_t d : *shape) {
      if (d < 0) ctx.error("shape " + shapeToString(*shape) + " has a negative dimension");
    }
    out = SymShape::of(*shape);
  } else {
    const SymShape& s = ctx.inputShapes[0];
    if (s.hasRank && s.rank() == 1 && s.dims[0].isKnown()) {
      out.hasRank = true;
      for (int64_t i = 0; i < s.dims[0].value; i++) out.dims.push_back(ctx.freshDim());
    }
  }
  ctx.setOutput(0, type, out);
}

void inferRange(InferContext& ctx) {
  for (size_t i = 0; i < 3; i++) {
    expectInput(ctx, i, i == 0 ? "start" : i == 1 ? "limit" : "delta");
    if (ctx.inputTypes[i] != ctx.inputTypes[0]) ctx.error("start, limit and delta must have the same type");
    const SymShape& s = ctx.inputShapes[i];
    if (s.isConcrete() && inferNumel(ctx, s.concrete()) != 1) ctx.error("start, limit and delta must be scalars");
  }
  Dim n = ctx.freshDim();
  if (ctx.inputValues[0] && ctx.inputValues[1] && ctx.inputValues[2]) {
    n = Dim::known(rangeCount(ctx.node, ctx.inputValues[0]->scalarAsDouble(0), ctx.inputValues[1]->scalarAsDouble(0),
                              ctx.inputValues[2]->scalarAsDouble(0)));
  }
  ctx.setOutput(0, ctx.inputTypes[0], SymShape{true, {n}});
}

void inferEyeLike(InferContext& ctx) {
  expectInput(ctx, 0, "input");
  const SymShape& in = ctx.inputShapes[0];
  if (in.hasRank && in.rank() != 2) ctx.error("input must be 2-D, got " + in.toString());
  DType type = ctx.inputTypes[0];
  if (ctx.node.has("dtype")) {
    const int64_t code = ctx.node.getInt("dtype", 0);
    if (!isKnownDType((int32_t)code) || code == (int64_t)DType::String || code == (int64_t)DType::Undefined) {
      ctx.error("unsupported dtype " + std::to_string(code));
    }
    type = (DType)code;
  }
  ctx.setOutput(0, type, in);
}

}  // namespace

KILN_REGISTER_SCHEMA(Constant, (OpSchema{"", "Constant", 1, inferConstant}));
KILN_REGISTER_SCHEMA(Constant, (OpSchema{"", "Constant", 11, inferConstant}));  // sparse_value
KILN_REGISTER_SCHEMA(Constant, (OpSchema{"", "Constant", 12, inferConstant}));  // value_* attributes
KILN_REGISTER_SCHEMA(ConstantOfShape, (OpSchema{"", "ConstantOfShape", 9, inferConstantOfShape}));
KILN_REGISTER_SCHEMA(Range, (OpSchema{"", "Range", 11, inferRange}));
KILN_REGISTER_SCHEMA(EyeLike, (OpSchema{"", "EyeLike", 9, inferEyeLike}));

}  // namespace kiln
