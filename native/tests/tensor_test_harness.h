// Runs one op the way the runtime does: schema inference over the concrete inputs (shapes and
// values), output allocation from the inferred shapes (or by the kernel for data-dependent ops),
// kernel creation from the CPU registry, run. Used by the tensor_*_test.cc and control_*_test.cc
// op tests so that each test exercises the schema and the kernel together.
#pragma once
#include <cctype>
#include <cmath>
#include <cstring>
#include <sstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backends/kernel.h"
#include "core/error.h"
#include "core/tensor.h"
#include "graph/ir.h"
#include "ops/schema.h"
#include "test.h"

namespace kiln_test {

using kiln::Attribute;
using kiln::DType;
using kiln::Shape;
using kiln::Tensor;

template <class T>
constexpr DType dtypeOf();
template <> constexpr DType dtypeOf<float>() { return DType::Float32; }
template <> constexpr DType dtypeOf<double>() { return DType::Float64; }
template <> constexpr DType dtypeOf<int8_t>() { return DType::Int8; }
template <> constexpr DType dtypeOf<uint8_t>() { return DType::UInt8; }
template <> constexpr DType dtypeOf<int16_t>() { return DType::Int16; }
template <> constexpr DType dtypeOf<int32_t>() { return DType::Int32; }
template <> constexpr DType dtypeOf<int64_t>() { return DType::Int64; }
template <> constexpr DType dtypeOf<uint32_t>() { return DType::UInt32; }
template <> constexpr DType dtypeOf<uint64_t>() { return DType::UInt64; }
template <> constexpr DType dtypeOf<std::string>() { return DType::String; }

template <class T>
Tensor make(const Shape& shape, const std::vector<T>& values) {
  Tensor t = Tensor::allocate(dtypeOf<T>(), shape);
  if ((int64_t)values.size() != t.numel()) throw Failure("make: " + std::to_string(values.size()) + " values for shape " + kiln::shapeToString(shape));
  for (size_t i = 0; i < values.size(); i++) t.ptr<T>()[i] = values[i];
  return t;
}
inline Tensor makeBool(const Shape& shape, const std::vector<int>& values) {
  Tensor t = make<uint8_t>(shape, std::vector<uint8_t>(values.begin(), values.end()));
  t.dtype = DType::Bool;
  return t;
}
// 0, 1, 2, ... as T.
template <class T>
Tensor iota(const Shape& shape) {
  std::vector<T> v((size_t)kiln::shapeNumel(shape));
  for (size_t i = 0; i < v.size(); i++) v[i] = (T)i;
  return make<T>(shape, v);
}
inline Tensor ints(const std::vector<int64_t>& v) { return make<int64_t>({(int64_t)v.size()}, v); }
inline Tensor scalarInt(int64_t v) { return make<int64_t>({}, {v}); }

template <class T>
std::vector<T> values(const Tensor& t) {
  if (t.dtype != dtypeOf<T>() && !(t.dtype == DType::Bool && dtypeOf<T>() == DType::UInt8)) {
    throw Failure(std::string("values: tensor is ") + kiln::dtypeName(t.dtype));
  }
  return std::vector<T>(t.ptr<T>(), t.ptr<T>() + t.numel());
}

inline Attribute attrInt(int64_t v) { Attribute a; a.kind = Attribute::Kind::Int; a.i = v; return a; }
inline Attribute attrFloat(float v) { Attribute a; a.kind = Attribute::Kind::Float; a.f = v; return a; }
inline Attribute attrString(const std::string& v) { Attribute a; a.kind = Attribute::Kind::String; a.s = v; return a; }
inline Attribute attrInts(const std::vector<int64_t>& v) { Attribute a; a.kind = Attribute::Kind::Ints; a.ints = v; return a; }
inline Attribute attrFloats(const std::vector<float>& v) { Attribute a; a.kind = Attribute::Kind::Floats; a.floats = v; return a; }
inline Attribute attrStrings(const std::vector<std::string>& v) { Attribute a; a.kind = Attribute::Kind::Strings; a.strings = v; return a; }
inline Attribute attrTensor(const Tensor& t) { Attribute a; a.kind = Attribute::Kind::Tensor; a.t = std::make_shared<Tensor>(t); return a; }
inline Attribute attrGraph(std::shared_ptr<kiln::Graph> g) { Attribute a; a.kind = Attribute::Kind::Graph; a.g = std::move(g); return a; }

using Attrs = std::map<std::string, Attribute>;

// One op invocation. Inputs left as nullopt are omitted optional inputs.
struct OpCall {
  std::string op;
  int64_t opset = 18;
  std::vector<std::optional<Tensor>> inputs;
  Attrs attrs;
  size_t numOutputs = 1;
  std::string domain;
  kiln::SubgraphRunner* subgraphs = nullptr;
};

inline kiln::Node makeNode(const OpCall& call) {
  kiln::Node node;
  node.name = "n0";
  node.opType = call.op;
  node.domain = call.domain;
  node.attrs = call.attrs;
  return node;
}

// Schema inference only, over the inputs' given symbolic shapes (values: optional known values).
struct InferResult {
  std::vector<DType> types;
  std::vector<kiln::SymShape> shapes;
  std::vector<std::shared_ptr<Tensor>> values;
};
inline InferResult inferOp(const std::string& op, int64_t opset, const std::vector<kiln::SymShape>& shapes,
                           const std::vector<DType>& types, const std::vector<const Tensor*>& knownValues,
                           const Attrs& attrs, size_t numOutputs = 1) {
  kiln::Node node;
  node.name = "n0";
  node.opType = op;
  node.attrs = attrs;
  for (size_t i = 0; i < shapes.size(); i++) node.inputs.push_back(types[i] == DType::Undefined ? kiln::kNoValue : (int)i);
  for (size_t i = 0; i < numOutputs; i++) node.outputs.push_back((int)(shapes.size() + i));
  const kiln::OpSchema* schema = kiln::SchemaRegistry::instance().find("", op, opset);
  if (!schema) throw Failure("no schema for " + op);
  kiln::InferContext ctx(node, opset, shapes.size(), numOutputs);
  for (size_t i = 0; i < shapes.size(); i++) {
    ctx.inputTypes[i] = types[i];
    ctx.inputShapes[i] = shapes[i];
    ctx.inputValues[i] = i < knownValues.size() ? knownValues[i] : nullptr;
  }
  schema->infer(ctx);
  return {ctx.outputTypes, ctx.outputShapes, ctx.outputValues};
}

inline kiln::SymShape symShape(const std::vector<std::string>& dims) {
  kiln::SymShape s;
  s.hasRank = true;
  for (const std::string& d : dims) {
    if (!d.empty() && (std::isdigit((unsigned char)d[0]))) s.dims.push_back(kiln::Dim::known(std::stoll(d)));
    else s.dims.push_back(kiln::Dim::sym(d));
  }
  return s;
}

// Infers, allocates, creates the CPU kernel and runs it; returns the outputs.
inline std::vector<Tensor> runOp(const OpCall& call) {
  kiln::Node node = makeNode(call);
  kiln::Graph graph;
  graph.opsets[""] = call.opset;
  for (size_t i = 0; i < call.inputs.size(); i++) {
    if (!call.inputs[i]) {
      node.inputs.push_back(kiln::kNoValue);
      continue;
    }
    node.inputs.push_back(graph.addValue("in" + std::to_string(i), call.inputs[i]->dtype,
                                         kiln::SymShape::of(call.inputs[i]->shape)));
  }
  for (size_t i = 0; i < call.numOutputs; i++) node.outputs.push_back(graph.addValue("out" + std::to_string(i)));
  const kiln::OpSchema* schema = kiln::SchemaRegistry::instance().find(call.domain, call.op, call.opset);
  if (!schema) throw Failure("no schema for " + call.op + " at opset " + std::to_string(call.opset));
  kiln::InferContext ictx(node, call.opset, call.inputs.size(), call.numOutputs);
  std::vector<const Tensor*> inputPtrs;
  for (size_t i = 0; i < call.inputs.size(); i++) {
    const Tensor* t = call.inputs[i] ? &*call.inputs[i] : nullptr;
    inputPtrs.push_back(t);
    if (!t) continue;
    ictx.inputTypes[i] = t->dtype;
    ictx.inputShapes[i] = kiln::SymShape::of(t->shape);
    ictx.inputValues[i] = t;
  }
  schema->infer(ictx);
  const kiln::KernelDef* def = kiln::KernelRegistry::instance().find("cpu", call.domain, call.op, call.opset);
  if (!def) throw Failure("no cpu kernel for " + call.op + " at opset " + std::to_string(call.opset));
  kiln::KernelCreateInfo info{node, call.opset, graph, {}, {}, {}, ictx.outputTypes, ictx.outputShapes};
  for (const Tensor* t : inputPtrs) {
    info.inputTypes.push_back(t ? t->dtype : DType::Undefined);
    info.inputShapes.push_back(t ? kiln::SymShape::of(t->shape) : kiln::SymShape{});
    info.constantInputs.push_back(nullptr);
  }
  std::unique_ptr<kiln::Kernel> kernel = def->create(info);
  std::vector<Tensor> outputs(call.numOutputs);
  std::vector<Tensor*> outPtrs;
  for (size_t i = 0; i < call.numOutputs; i++) {
    if (ictx.outputTypes[i] == DType::Undefined) throw Failure("output " + std::to_string(i) + " has no type");
    if (!schema->dataDependentShape) {
      if (!ictx.outputShapes[i].isConcrete()) {
        throw Failure("output " + std::to_string(i) + " shape " + ictx.outputShapes[i].toString() + " is not concrete");
      }
      outputs[i] = Tensor::allocate(ictx.outputTypes[i], ictx.outputShapes[i].concrete());
    }
    outPtrs.push_back(&outputs[i]);
  }
  kiln::KernelContext kctx{node, inputPtrs, outPtrs};
  kctx.subgraphs = call.subgraphs;
  std::vector<uint8_t> workspace;
  workspace.resize(kernel->workspaceBytes(kctx) + 64);
  kctx.workspace = workspace.data();
  kctx.workspaceSize = workspace.size() - 64;
  kernel->run(kctx);
  for (size_t i = 0; i < call.numOutputs; i++) {
    if (schema->dataDependentShape && outputs[i].data == nullptr && outputs[i].numel() != 0) {
      throw Failure("kernel did not allocate data-dependent output " + std::to_string(i));
    }
    if (!schema->dataDependentShape && ictx.outputShapes[i].concrete() != outputs[i].shape) {
      throw Failure("kernel changed output " + std::to_string(i) + " shape");
    }
  }
  return outputs;
}

inline Tensor run1(const OpCall& call) { return runOp(call)[0]; }

template <class T>
void expectValues(const Tensor& t, const Shape& shape, const std::vector<T>& expected, double tol = 1e-5) {
  if (t.shape != shape) throw Failure("shape " + kiln::shapeToString(t.shape) + " != expected " + kiln::shapeToString(shape));
  std::vector<T> got = values<T>(t);
  if (got.size() != expected.size()) throw Failure("element count differs");
  for (size_t i = 0; i < got.size(); i++) {
    bool ok;
    if constexpr (std::is_floating_point<T>::value) ok = std::fabs((double)got[i] - (double)expected[i]) <= tol;
    else ok = got[i] == expected[i];
    if (!ok) {
      std::ostringstream msg;
      msg << "element " << i << ": got " << got[i] << ", expected " << expected[i];
      throw Failure(msg.str());
    }
  }
}

}  // namespace kiln_test
