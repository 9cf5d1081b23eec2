// FP16 lowering for the CUDA backend (BuildOptions::precision = fp16), run after the optimizer:
// every float32 tensor inside the graph becomes float16 (weights converted once at build time,
// activations computed in half with fp32 accumulation inside the kernels), and float32 graph inputs
// and outputs keep their type through Cast nodes at the boundary, so the engine's signature is the
// model's. Values outside half's range are clamped to +-65504 rather than becoming infinities (an
// attention mask of float32 min times zero must stay zero, not NaN).
#include <cmath>

#include "backends/cuda/cuda_fp16.h"
#include "backends/kernel.h"
#include "core/error.h"
#include "graph/shape_inference.h"

namespace kiln::cuda {
namespace {

constexpr int64_t kOnnxFloat = 1, kOnnxFloat16 = 10;

Tensor toHalf(const Tensor& t) {
  Tensor h = Tensor::allocate(DType::Float16, t.shape);
  const float* src = t.ptr<float>();
  uint16_t* dst = h.ptr<uint16_t>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    float x = src[i];
    if (std::isfinite(x)) x = std::fmax(-65504.f, std::fmin(65504.f, x));
    dst[i] = floatToHalf(x);
  }
  return h;
}

Node castNode(const std::string& name, ValueId from, ValueId to, int64_t onnxType) {
  Node n;
  n.name = name;
  n.opType = "Cast";
  n.inputs = {from};
  n.outputs = {to};
  Attribute a;
  a.kind = Attribute::Kind::Int;
  a.i = onnxType;
  n.attrs["to"] = a;
  return n;
}

// Float inputs that are parameters of a fixed float32 type rather than data of type T.
bool keepsFloat32(const Node& node, size_t input) {
  return node.domain.empty() && node.opType == "Resize" && input == 2;
}

// Layers without a CUDA kernel run on the host (host_fallback.h) with the CPU kernels, in float32.
bool isHostLayer(const Graph& g, const Node& node) {
  return !node.dead && KernelRegistry::instance().find("cuda", node.domain, node.opType, g.opsetFor(node.domain)) == nullptr;
}

bool isFloat(DType t) { return t == DType::Float32 || t == DType::Float16; }

// Host layers take float32: their float activations are cast up from half before them and their
// float outputs cast back to half after them, so the device layers around them see half as usual.
int keepHostLayersFloat32(Graph& g) {
  int casts = 0;
  const size_t numNodes = g.nodes.size();
  for (size_t n = 0; n < numNodes; ++n) {
    if (!isHostLayer(g, g.nodes[n])) continue;
    for (size_t i = 0; i < g.nodes[n].inputs.size(); ++i) {
      ValueId v = g.nodes[n].inputs[i];
      if (v == kNoValue || g.values[v].constant || !isFloat(g.values[v].dtype)) continue;
      ValueId up = g.addValue(g.values[v].name + "/fp32_for_" + g.nodes[n].name, DType::Float32, g.values[v].shape);
      g.nodes[n].inputs[i] = up;
      g.addNode(castNode(g.values[v].name + "/to_fp32_for_" + g.nodes[n].name, v, up, kOnnxFloat));
      ++casts;
    }
    for (size_t j = 0; j < g.nodes[n].outputs.size(); ++j) {
      ValueId o = g.nodes[n].outputs[j];
      if (o == kNoValue || !isFloat(g.values[o].dtype)) continue;
      ValueId full = g.addValue(g.values[o].name + "/fp32", DType::Float32, g.values[o].shape);
      g.nodes[n].outputs[j] = full;
      g.values[full].producer = static_cast<int32_t>(n);
      g.addNode(castNode(g.values[o].name + "/to_fp16", full, o, kOnnxFloat16));
      ++casts;
    }
  }
  return casts;
}

}  // namespace

int lowerGraphToFp16(Graph& g) {
  int casts = 0;
  std::vector<char> isInput(g.values.size(), 0), isOutput(g.values.size(), 0);
  for (ValueId v : g.inputs) isInput[v] = 1;
  for (ValueId v : g.outputs) isOutput[v] = 1;

  // Constants: converted in place unless a node needs them as float32 parameters. Host layers get
  // float32 copies of their float constants (shared storage), as a device layer may use the same one.
  std::vector<char> keep(g.values.size(), 0);
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    const bool host = isHostLayer(g, g.nodes[n]);
    for (size_t i = 0; i < g.nodes[n].inputs.size(); ++i) {
      ValueId v = g.nodes[n].inputs[i];
      if (v == kNoValue) continue;
      if (keepsFloat32(g.nodes[n], i)) keep[v] = 1;
      if (host && g.values[v].constant && g.values[v].constant->dtype == DType::Float32) {
        ValueId copy = g.addValue(g.values[v].name + "/fp32_for_" + g.nodes[n].name, DType::Float32, g.values[v].shape);
        g.values[copy].constant = g.values[v].constant;
        g.nodes[n].inputs[i] = copy;
        keep.resize(g.values.size(), 0);
        keep[copy] = 1;
      }
    }
  }
  for (size_t v = 0; v < g.values.size(); ++v) {
    Value& value = g.values[v];
    if (!value.constant || value.constant->dtype != DType::Float32 || keep[v]) continue;
    value.constant = std::make_shared<Tensor>(toHalf(*value.constant));
    value.dtype = DType::Float16;
  }
  // Casts to float inside the graph now produce half.
  for (Node& node : g.nodes) {
    if (node.domain.empty() && node.opType == "Cast" && node.getInt("to", 0) == kOnnxFloat) {
      node.attrs["to"].i = kOnnxFloat16;
    }
  }
  // Boundary: float32 inputs are cast to half once, float32 outputs cast back.
  const size_t numValues = g.values.size();
  for (ValueId in : std::vector<ValueId>(g.inputs)) {
    if (g.values[in].dtype != DType::Float32) continue;
    ValueId half = g.addValue(g.values[in].name + "/fp16", DType::Float16, g.values[in].shape);
    for (Node& node : g.nodes) {
      for (ValueId& v : node.inputs) {
        if (v == in) v = half;
      }
    }
    g.addNode(castNode(g.values[in].name + "/to_fp16", in, half, kOnnxFloat16));
    ++casts;
  }
  for (ValueId out : std::vector<ValueId>(g.outputs)) {
    if (static_cast<size_t>(out) >= numValues || g.values[out].dtype != DType::Float32 || isInput[out]) continue;
    int32_t producer = g.values[out].producer;
    if (producer < 0) continue;
    ValueId half = g.addValue(g.values[out].name + "/fp16", DType::Float16, g.values[out].shape);
    for (ValueId& v : g.nodes[producer].outputs) {
      if (v == out) v = half;
    }
    g.values[half].producer = producer;
    for (Node& node : g.nodes) {
      for (ValueId& v : node.inputs) {
        if (v == out) v = half;
      }
    }
    g.addNode(castNode(g.values[out].name + "/to_fp32", half, out, kOnnxFloat));
    ++casts;
  }
  casts += keepHostLayersFloat32(g);
  g.compact();
  inferShapes(g);
  return casts;
}

}  // namespace kiln::cuda
