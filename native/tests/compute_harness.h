// Runs one compute op the way the runtime does (schema inference on concrete inputs, output
// allocation, kernel creation from the CPU registry with constant inputs marked, run with a
// workspace) so gemm/conv/pool/norm/attention/fused tests exercise schema and kernel together.
// Inputs flagged constant reach the kernel through KernelCreateInfo::constantInputs, which is
// what takes the pre-packed weight paths.
#pragma once
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "backends/kernel.h"
#include "core/error.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "graph/ir.h"
#include "ops/schema.h"
#include "test.h"

namespace compute_test {

using kiln::Attribute;
using kiln::DType;
using kiln::Shape;
using kiln::Tensor;

inline Attribute attrInt(int64_t v) { Attribute a; a.kind = Attribute::Kind::Int; a.i = v; return a; }
inline Attribute attrFloat(float v) { Attribute a; a.kind = Attribute::Kind::Float; a.f = v; return a; }
inline Attribute attrString(const std::string& v) { Attribute a; a.kind = Attribute::Kind::String; a.s = v; return a; }
inline Attribute attrInts(const std::vector<int64_t>& v) { Attribute a; a.kind = Attribute::Kind::Ints; a.ints = v; return a; }
inline Attribute attrFloats(const std::vector<float>& v) { Attribute a; a.kind = Attribute::Kind::Floats; a.floats = v; return a; }

inline Tensor floats(const Shape& shape, const std::vector<float>& v) {
  Tensor t = Tensor::allocate(DType::Float32, shape);
  if (int64_t(v.size()) != t.numel()) throw kiln_test::Failure("floats: wrong value count for " + kiln::shapeToString(shape));
  for (size_t i = 0; i < v.size(); i++) t.ptr<float>()[i] = v[i];
  return t;
}

inline Tensor randomFloats(const Shape& shape, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  Tensor t = Tensor::allocate(DType::Float32, shape);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  for (int64_t i = 0; i < t.numel(); i++) t.ptr<float>()[i] = dist(rng);
  return t;
}

// Smooth "images" [n, c, h, w]: per channel a low-frequency sine pattern plus noise, so that INT8
// calibration ranges and activations look like a real network's (the CUDA INT8 tests use them).
inline Tensor smoothImageBatch(const Shape& shape, uint32_t seed) {
  Tensor t = Tensor::allocate(DType::Float32, shape);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  float* p = t.ptr<float>();
  for (int64_t i = 0; i < shape[0] * shape[1]; ++i) {
    const float fx = 0.1f + 0.3f * (u(rng) + 1.f), fy = 0.1f + 0.3f * (u(rng) + 1.f), ph = 3.f * u(rng), a = u(rng);
    for (int64_t y = 0; y < shape[2]; ++y)
      for (int64_t x = 0; x < shape[3]; ++x) *p++ = a * std::sin(fx * float(x) + fy * float(y) + ph) + 0.1f * u(rng);
  }
  return t;
}

struct Input {
  std::optional<Tensor> tensor;  // nullopt: omitted optional input
  bool constant = false;
};
inline Input in(const Tensor& t) { return Input{t, false}; }
inline Input constant(const Tensor& t) { return Input{t, true}; }
inline Input none() { return Input{std::nullopt, false}; }

struct Call {
  std::string op;
  std::string domain;
  int64_t opset = 18;
  std::vector<Input> inputs;
  std::map<std::string, Attribute> attrs;
  size_t numOutputs = 1;
  std::vector<bool> outputPresent;  // default: all present
  // For ops without a registered schema (none expected, but kiln ops land separately): the
  // output shapes to allocate.
  std::vector<Shape> fallbackShapes;
  kiln::ThreadPool* pool = nullptr;
  std::string nodeName = "n0";
};

struct Result {
  std::vector<Tensor> outputs;
  std::string kernelName;
};

inline Result run(const Call& call) {
  kiln::Node node;
  node.name = call.nodeName;
  node.opType = call.op;
  node.domain = call.domain;
  node.attrs = call.attrs;
  kiln::Graph graph;
  graph.opsets[call.domain] = call.opset;
  std::vector<const Tensor*> inputs;
  for (size_t i = 0; i < call.inputs.size(); i++) {
    const Input& input = call.inputs[i];
    if (!input.tensor) {
      node.inputs.push_back(kiln::kNoValue);
      inputs.push_back(nullptr);
      continue;
    }
    node.inputs.push_back(graph.addValue("in" + std::to_string(i), input.tensor->dtype, kiln::SymShape::of(input.tensor->shape)));
    inputs.push_back(&*input.tensor);
  }
  for (size_t i = 0; i < call.numOutputs; i++) {
    bool present = i >= call.outputPresent.size() || call.outputPresent[i];
    node.outputs.push_back(present ? graph.addValue("out" + std::to_string(i)) : kiln::kNoValue);
  }
  std::vector<DType> outTypes(call.numOutputs, DType::Undefined);
  std::vector<kiln::SymShape> outShapes(call.numOutputs);
  const kiln::OpSchema* schema = kiln::SchemaRegistry::instance().find(call.domain, call.op, call.opset);
  if (schema) {
    kiln::InferContext ictx(node, call.opset, inputs.size(), call.numOutputs);
    for (size_t i = 0; i < inputs.size(); i++) {
      if (!inputs[i]) continue;
      ictx.inputTypes[i] = inputs[i]->dtype;
      ictx.inputShapes[i] = kiln::SymShape::of(inputs[i]->shape);
      ictx.inputValues[i] = inputs[i];
    }
    schema->infer(ictx);
    outTypes = ictx.outputTypes;
    outShapes = ictx.outputShapes;
  } else {
    if (call.fallbackShapes.size() != call.numOutputs) throw kiln_test::Failure("no schema for " + call.op);
    for (size_t i = 0; i < call.numOutputs; i++) {
      outTypes[i] = inputs[0]->dtype;
      outShapes[i] = kiln::SymShape::of(call.fallbackShapes[i]);
    }
  }
  const kiln::KernelDef* def = kiln::KernelRegistry::instance().find("cpu", call.domain, call.op, call.opset);
  if (!def) throw kiln_test::Failure("no cpu kernel for " + call.op);
  kiln::KernelCreateInfo info{node, call.opset, graph, {}, {}, {}, outTypes, outShapes};
  for (size_t i = 0; i < inputs.size(); i++) {
    info.inputTypes.push_back(inputs[i] ? inputs[i]->dtype : DType::Undefined);
    info.inputShapes.push_back(inputs[i] ? kiln::SymShape::of(inputs[i]->shape) : kiln::SymShape{});
    info.constantInputs.push_back(inputs[i] && call.inputs[i].constant ? inputs[i] : nullptr);
  }
  std::unique_ptr<kiln::Kernel> kernel = def->create(info);
  Result result;
  result.outputs.resize(call.numOutputs);
  std::vector<Tensor*> outPtrs;
  for (size_t i = 0; i < call.numOutputs; i++) {
    if (node.outputs[i] == kiln::kNoValue) {
      outPtrs.push_back(nullptr);
      continue;
    }
    if (outTypes[i] == DType::Undefined || !outShapes[i].isConcrete()) {
      throw kiln_test::Failure("output " + std::to_string(i) + " was not inferred");
    }
    result.outputs[i] = Tensor::allocate(outTypes[i], outShapes[i].concrete());
    // Poison the output: kernels must write every element.
    if (outTypes[i] == DType::Float32) {
      for (int64_t k = 0; k < result.outputs[i].numel(); k++) result.outputs[i].ptr<float>()[k] = std::nanf("");
    }
    outPtrs.push_back(&result.outputs[i]);
  }
  kiln::KernelContext kctx{node, inputs, outPtrs};
  kctx.pool = call.pool;
  // The runtime sizes workspaces in shape-only passes, where inputs carry no data: do the same so
  // a kernel whose workspaceBytes looks at data (or needs it) fails here.
  std::vector<Tensor> shapeOnly;
  shapeOnly.reserve(inputs.size());
  std::vector<const Tensor*> shapeOnlyPtrs;
  for (const Tensor* t : inputs) {
    if (!t) {
      shapeOnlyPtrs.push_back(nullptr);
      continue;
    }
    Tensor v;
    v.dtype = t->dtype;
    v.shape = t->shape;
    shapeOnly.push_back(v);
    shapeOnlyPtrs.push_back(&shapeOnly.back());
  }
  kiln::KernelContext sizing{node, shapeOnlyPtrs, outPtrs};
  sizing.pool = call.pool;
  size_t ws = kernel->workspaceBytes(sizing);
  std::shared_ptr<void> workspace(std::aligned_alloc(64, (ws + 64 + 63) / 64 * 64), [](void* p) { std::free(p); });
  // Poison the workspace too: kernels must not rely on it being zeroed.
  std::memset(workspace.get(), 0xff, ws);
  kctx.workspace = workspace.get();
  kctx.workspaceSize = ws;
  kernel->run(kctx);
  result.kernelName = kernel->name();
  return result;
}

inline Tensor run1(const Call& call) { return run(call).outputs[0]; }

// Element-wise comparison with |got - want| <= atol + rtol * |want|, naming the first bad index.
inline void expectClose(const Tensor& got, const Shape& shape, const std::vector<float>& want, double atol = 1e-4,
                        double rtol = 1e-4, const std::string& what = "") {
  if (got.shape != shape) {
    throw kiln_test::Failure(what + ": shape " + kiln::shapeToString(got.shape) + " != " + kiln::shapeToString(shape));
  }
  if (int64_t(want.size()) != got.numel()) throw kiln_test::Failure(what + ": element count differs");
  for (size_t i = 0; i < want.size(); i++) {
    double g = got.ptr<float>()[i];
    if (!(std::fabs(g - want[i]) <= atol + rtol * std::fabs(want[i]))) {
      throw kiln_test::Failure(what + ": element " + std::to_string(i) + " got " + std::to_string(g) + " want " +
                               std::to_string(want[i]));
    }
  }
}

inline std::vector<float> valuesOf(const Tensor& t) { return std::vector<float>(t.ptr<float>(), t.ptr<float>() + t.numel()); }

}  // namespace compute_test
