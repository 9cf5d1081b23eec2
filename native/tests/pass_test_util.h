// Helpers for the pass tests: load a model built with onnx_builder, count ops, make random inputs,
// and compare a graph's outputs before and after a rewrite.
//
// The optimized graph is evaluated with a reference interpreter that runs ONNX nodes through
// evaluateNode (the CPU kernels) and kiln fused nodes through the naive definitions below, written
// from graph/fused_ops.h alone. That makes the pass tests independent of the fused kernels (and
// gives those kernels an oracle): a pass test fails only when the rewrite changes the math.
#pragma once
#include <cmath>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "backends/kernel.h"
#include "core/error.h"
#include "graph/fused_ops.h"
#include "graph/passes/pass.h"
#include "graph/shape_inference.h"
#include "onnx/model_reader.h"
#include "onnx_builder.h"
#include "test.h"

namespace pass_test {

using namespace kiln;
using onnx_builder::Attr;
using onnx_builder::ModelBuilder;

inline Graph load(const ModelBuilder& m) {
  std::vector<uint8_t> bytes = m.bytes();
  Graph g = readModel(bytes.data(), bytes.size());
  inferShapes(g);
  return g;
}

inline int countOps(const Graph& g, const std::string& opType, const std::string& domain = "") {
  int n = 0;
  for (const Node& node : g.nodes) {
    if (!node.dead && node.opType == opType && node.domain == domain) n++;
  }
  return n;
}

inline int liveNodes(const Graph& g) {
  int n = 0;
  for (const Node& node : g.nodes) n += node.dead ? 0 : 1;
  return n;
}

inline const Node* findOp(const Graph& g, const std::string& opType, const std::string& domain = kKilnDomain) {
  for (const Node& node : g.nodes) {
    if (!node.dead && node.opType == opType && node.domain == domain) return &node;
  }
  return nullptr;
}

inline std::vector<float> randomFloats(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

inline Tensor floatTensor(const Shape& shape, const std::vector<float>& values) {
  Tensor t = Tensor::allocate(DType::Float32, shape);
  KILN_CHECK((int64_t)values.size() == t.numel(), Internal, "floatTensor: wrong value count");
  std::copy(values.begin(), values.end(), t.ptr<float>());
  return t;
}

inline Tensor randomTensor(const Shape& shape, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  return floatTensor(shape, randomFloats((size_t)shapeNumel(shape), seed, lo, hi));
}

// Runs one pass the way the pipeline does.
inline int run(Graph& g, const char* passName) {
  const Pass* p = findPass(passName);
  KILN_CHECK(p != nullptr, Internal, std::string("no pass ") + passName);
  PassContext ctx;
  return runPass(g, *p, ctx);
}

// ---- reference semantics of the kiln ops (graph/fused_ops.h) -------------------------------------

inline float activate(Activation a, const std::vector<float>& p, float x) {
  switch (a) {
    case Activation::None: return x;
    case Activation::Relu: return x > 0 ? x : 0;
    case Activation::LeakyRelu: return x >= 0 ? x : p.at(0) * x;
    case Activation::Sigmoid: return 1.f / (1.f + std::exp(-x));
    case Activation::Tanh: return std::tanh(x);
    case Activation::Clip: return std::min(std::max(x, p.at(0)), p.at(1));
    case Activation::HardSigmoid: return std::max(0.f, std::min(1.f, p.at(0) * x + p.at(1)));
    case Activation::HardSwish: return x * std::max(0.f, std::min(1.f, x / 6.f + 0.5f));
    case Activation::Gelu: return 0.5f * x * (1.f + std::erf(x / std::sqrt(2.f)));
    case Activation::GeluTanh:
      return 0.5f * x * (1.f + std::tanh(std::sqrt(2.f / 3.14159265f) * (x + 0.044715f * x * x * x)));
    case Activation::Silu: return x / (1.f + std::exp(-x));
  }
  return x;
}

inline void applyActivation(const Node& n, Tensor& t) {
  Activation a = parseActivation(n.getString("activation", ""));
  std::vector<float> p = n.getFloats("activation_params");
  float* d = t.ptr<float>();
  for (int64_t i = 0; i < t.numel(); i++) d[i] = activate(a, p, d[i]);
}

// Index of element `i` of a tensor of shape `out` in a tensor of shape `in` broadcast onto it.
inline int64_t broadcastIndex(int64_t i, const Shape& out, const Shape& in) {
  int64_t idx = 0, stride = 1;
  for (int d = (int)out.size() - 1, e = (int)in.size() - 1; d >= 0; d--, e--) {
    int64_t coord = i % out[d];
    i /= out[d];
    if (e >= 0) {
      if (in[e] != 1) idx += coord * stride;
      stride *= in[e];
    }
  }
  return idx;
}

// Evaluates the ONNX op `opType` on inputs with the node's attributes minus the fused ones.
inline Tensor evaluateAs(const Graph& g, const Node& fused, const std::string& opType,
                         const std::vector<const Tensor*>& inputs) {
  Node n;
  n.name = fused.name + "_reference";
  n.opType = opType;
  n.attrs = fused.attrs;
  n.attrs.erase("activation");
  n.attrs.erase("activation_params");
  for (size_t i = 0; i < inputs.size(); i++) n.inputs.push_back(inputs[i] ? (ValueId)i : kNoValue);
  n.outputs = {0};
  return evaluateNode(g, n, inputs).at(0);
}

inline Tensor referenceKilnOp(const Graph& g, const Node& n, const std::vector<const Tensor*>& in) {
  auto at = [&](size_t i) -> const Tensor* { return i < in.size() ? in[i] : nullptr; };
  if (n.opType == "FusedConv" || n.opType == "FusedGemm" || n.opType == "FusedMatMul") {
    const char* base = n.opType == "FusedConv" ? "Conv" : n.opType == "FusedGemm" ? "Gemm" : "MatMul";
    size_t baseInputs = n.opType == "FusedMatMul" ? 2 : 3;
    Tensor y = evaluateAs(g, n, base, std::vector<const Tensor*>(in.begin(), in.begin() + std::min(baseInputs, in.size())));
    float* d = y.ptr<float>();
    if (n.opType == "FusedConv" && at(3)) {  // residual, same shape
      for (int64_t i = 0; i < y.numel(); i++) d[i] += at(3)->ptr<float>()[i];
    }
    if (n.opType == "FusedMatMul" && at(2)) {  // bias over the last dim
      int64_t last = y.shape.back();
      for (int64_t i = 0; i < y.numel(); i++) d[i] += at(2)->ptr<float>()[i % last];
    }
    applyActivation(n, y);
    return y;
  }
  if (n.opType == "Gelu") {
    Tensor y = in[0]->clone();
    Activation a = n.getString("approximate", "none") == "tanh" ? Activation::GeluTanh : Activation::Gelu;
    for (int64_t i = 0; i < y.numel(); i++) y.ptr<float>()[i] = activate(a, {}, y.ptr<float>()[i]);
    return y;
  }
  if (n.opType == "LayerNormalization") {
    const Tensor& x = *in[0];
    int64_t rank = (int64_t)x.shape.size(), axis = n.getInt("axis", -1);
    if (axis < 0) axis += rank;
    int64_t inner = 1;
    for (int64_t d = axis; d < rank; d++) inner *= x.shape[d];
    int64_t outer = x.numel() / inner;
    double eps = n.getFloat("epsilon", 1e-5f);
    Tensor y = Tensor::allocate(DType::Float32, x.shape);
    for (int64_t o = 0; o < outer; o++) {
      const float* row = x.ptr<float>() + o * inner;
      double mean = 0, var = 0;
      for (int64_t i = 0; i < inner; i++) mean += row[i];
      mean /= inner;
      for (int64_t i = 0; i < inner; i++) var += (row[i] - mean) * (row[i] - mean);
      var /= inner;
      for (int64_t i = 0; i < inner; i++) {
        double v = (row[i] - mean) / std::sqrt(var + eps) * in[1]->ptr<float>()[i];
        if (at(2)) v += at(2)->ptr<float>()[i];
        y.ptr<float>()[o * inner + i] = (float)v;
      }
    }
    return y;
  }
  if (n.opType == "Attention") {
    const Tensor &q = *in[0], &k = *in[1], &v = *in[2];
    const int64_t B = q.shape[0], H = q.shape[1], Sq = q.shape[2], D = q.shape[3], Sk = k.shape[2], Dv = v.shape[3];
    const double scale = n.getFloat("scale", 1.f);
    const bool causal = n.getInt("causal", 0) != 0;
    Tensor out = Tensor::allocate(DType::Float32, {B, H, Sq, Dv});
    Shape scoreShape = {B, H, Sq, Sk};
    std::vector<double> s((size_t)Sk);
    for (int64_t b = 0; b < B; b++)
      for (int64_t h = 0; h < H; h++)
        for (int64_t i = 0; i < Sq; i++) {
          double mx = -INFINITY;
          for (int64_t j = 0; j < Sk; j++) {
            double dot = 0;
            for (int64_t d = 0; d < D; d++) {
              dot += q.ptr<float>()[((b * H + h) * Sq + i) * D + d] * k.ptr<float>()[((b * H + h) * Sk + j) * D + d];
            }
            dot *= scale;
            if (at(3)) dot += at(3)->ptr<float>()[broadcastIndex(((b * H + h) * Sq + i) * Sk + j, scoreShape, at(3)->shape)];
            if (causal && j > i + (Sk - Sq)) dot = -INFINITY;
            s[j] = dot;
            mx = std::max(mx, dot);
          }
          double sum = 0;
          for (int64_t j = 0; j < Sk; j++) sum += (s[j] = std::exp(s[j] - mx));
          for (int64_t e = 0; e < Dv; e++) {
            double acc = 0;
            for (int64_t j = 0; j < Sk; j++) acc += s[j] / sum * v.ptr<float>()[((b * H + h) * Sk + j) * Dv + e];
            out.ptr<float>()[((b * H + h) * Sq + i) * Dv + e] = (float)acc;
          }
        }
    return out;
  }
  fail(ErrorCode::UnsupportedOp, "no reference for kiln." + n.opType);
}

// Runs the graph node by node: ONNX nodes on the CPU kernels, kiln nodes on the references above.
inline std::vector<Tensor> referenceRun(const Graph& g, const std::vector<std::pair<std::string, Tensor>>& inputs) {
  std::vector<std::optional<Tensor>> vals(g.values.size());
  for (size_t v = 0; v < g.values.size(); v++) {
    if (g.values[v].constant) vals[v] = *g.values[v].constant;
  }
  for (auto& [name, t] : inputs) vals[*g.findValue(name)] = t;
  for (const Node& n : g.nodes) {
    if (n.dead) continue;
    std::vector<const Tensor*> in;
    for (ValueId v : n.inputs) {
      if (v != kNoValue && !vals[v]) fail(ErrorCode::Internal, "reference run: value " + g.values[v].name + " missing");
      in.push_back(v == kNoValue ? nullptr : &*vals[v]);
    }
    std::vector<Tensor> out;
    if (n.domain == kKilnDomain) {
      out.push_back(referenceKilnOp(g, n, in));
    } else {
      out = evaluateNode(g, n, in);
    }
    for (size_t k = 0; k < n.outputs.size() && k < out.size(); k++) {
      if (n.outputs[k] != kNoValue) vals[n.outputs[k]] = out[k];
    }
  }
  std::vector<Tensor> result;
  for (ValueId v : g.outputs) result.push_back(*vals[v]);
  return result;
}

inline double maxAbsDiff(const Tensor& a, const Tensor& b) {
  KILN_CHECK(a.shape == b.shape && a.dtype == b.dtype, Internal,
             "outputs differ in shape: " + shapeToString(a.shape) + " vs " + shapeToString(b.shape));
  double worst = 0;
  for (int64_t i = 0; i < a.numel(); i++) worst = std::max(worst, std::fabs(a.scalarAsDouble(i) - b.scalarAsDouble(i)));
  return worst;
}

// Every kiln node of g has a CPU kernel registered (the fused kernels are written elsewhere).
inline bool hasFusedKernels(const Graph& g) {
  for (const Node& n : g.nodes) {
    if (!n.dead && n.domain == kKilnDomain && !KernelRegistry::instance().find("cpu", n.domain, n.opType, 1)) {
      return false;
    }
  }
  return true;
}

// Outputs of `before` (interpretGraph: ONNX ops only) and `after` (referenceRun) agree within tol.
// When the CPU backend has kernels for the fused ops, `after` run on them must agree as well.
inline void expectSameOutputs(const Graph& before, const Graph& after,
                              const std::vector<std::pair<std::string, Tensor>>& inputs, double tol = 1e-4) {
  std::vector<Tensor> want = interpretGraph(before, inputs);
  std::vector<Tensor> got = referenceRun(after, inputs);
  EXPECT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size(); i++) EXPECT_NEAR(maxAbsDiff(want[i], got[i]), 0.0, tol);
  if (!hasFusedKernels(after)) return;
  std::vector<Tensor> kernels = interpretGraph(after, inputs);
  for (size_t i = 0; i < want.size(); i++) EXPECT_NEAR(maxAbsDiff(want[i], kernels[i]), 0.0, tol * 10);
}

}  // namespace pass_test
