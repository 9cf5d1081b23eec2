// Recognises the activations the fused kiln ops can apply in their epilogue (graph/fused_ops.h).
// Each is matched only when its parameters are known constants, so the fused op computes exactly
// what the removed node did: Clip needs constant bounds (ReLU6 in MobileNet is Clip(x, 0, 6)),
// LeakyRelu/HardSigmoid take their attributes (ONNX defaults when absent), Gelu keeps its
// approximation, and SiLU/Swish is the two-node form x * Sigmoid(x) (EfficientNet, YOLO).
#include <cmath>
#include <limits>

#include "graph/passes/pattern.h"

namespace kiln {
namespace {

bool isKilnGelu(const Rewriter& rw, int32_t node) {
  if (!rw.usable(node)) return false;
  const Node& n = rw.graph.nodes[node];
  return n.domain == kKilnDomain && n.opType == "Gelu";
}

// Clip bounds: attributes before opset 11, optional constant inputs from 11 on. An omitted bound
// is unbounded; ONNX-6 defaults are the float range, the same thing for float32 data.
std::optional<std::pair<float, float>> clipBounds(const Rewriter& rw, const Node& n) {
  float lo = -std::numeric_limits<float>::infinity();
  float hi = std::numeric_limits<float>::infinity();
  if (n.has("min")) lo = n.getFloat("min", lo);
  if (n.has("max")) hi = n.getFloat("max", hi);
  if (n.hasInput(1)) {
    auto v = rw.scalar(n.inputs[1]);
    if (!v) return std::nullopt;
    lo = (float)*v;
  }
  if (n.hasInput(2)) {
    auto v = rw.scalar(n.inputs[2]);
    if (!v) return std::nullopt;
    hi = (float)*v;
  }
  if (n.inputs.size() > 3 || std::isnan(lo) || std::isnan(hi) || lo > hi) return std::nullopt;
  return std::make_pair(lo, hi);
}

std::optional<ActivationMatch> matchSilu(const Rewriter& rw, ValueId v) {
  // v feeds exactly a Sigmoid and a Mul, and the Mul multiplies v by that Sigmoid's result.
  const std::vector<int32_t>& readers = rw.consumers(v);
  if (readers.size() != 2 || rw.graph.isGraphOutput(v)) return std::nullopt;
  for (int k = 0; k < 2; k++) {
    int32_t sig = readers[k], mul = readers[1 - k];
    if (!rw.isOp(sig, "Sigmoid") || !rw.isOp(mul, "Mul")) continue;
    const Node& s = rw.graph.nodes[sig];
    if (s.inputs.size() != 1 || s.outputs.size() != 1) continue;
    ValueId sv = s.outputs[0];
    if (rw.soleConsumer(sv) != mul || rw.otherInput(mul, sv) != std::optional<ValueId>(v)) continue;
    const Node& m = rw.graph.nodes[mul];
    if (m.outputs.size() != 1) continue;
    ActivationMatch out;
    out.kind = Activation::Silu;
    out.nodes = {sig, mul};
    out.output = m.outputs[0];
    return out;
  }
  return std::nullopt;
}

}  // namespace

std::optional<ActivationMatch> matchActivation(const Rewriter& rw, ValueId v) {
  if (auto silu = matchSilu(rw, v)) return silu;
  int32_t node = rw.soleConsumer(v);
  if (node < 0) return std::nullopt;
  const Node& n = rw.graph.nodes[node];
  if (n.inputs.empty() || n.inputs[0] != v || n.outputs.size() != 1 || n.outputs[0] == kNoValue) return std::nullopt;
  ActivationMatch out;
  out.nodes = {node};
  out.output = n.outputs[0];
  auto unary = [&]() { return n.inputs.size() == 1; };
  if (rw.isOp(node, "Relu") && unary()) {
    out.kind = Activation::Relu;
  } else if (rw.isOp(node, "LeakyRelu") && unary()) {
    out.kind = Activation::LeakyRelu;
    out.params = {n.getFloat("alpha", 0.01f)};
  } else if (rw.isOp(node, "Sigmoid") && unary()) {
    out.kind = Activation::Sigmoid;
  } else if (rw.isOp(node, "Tanh") && unary()) {
    out.kind = Activation::Tanh;
  } else if (rw.isOp(node, "Clip")) {
    auto bounds = clipBounds(rw, n);
    if (!bounds) return std::nullopt;
    out.kind = Activation::Clip;
    out.params = {bounds->first, bounds->second};
  } else if (rw.isOp(node, "HardSigmoid") && unary()) {
    out.kind = Activation::HardSigmoid;
    out.params = {n.getFloat("alpha", 0.2f), n.getFloat("beta", 0.5f)};
  } else if (rw.isOp(node, "HardSwish") && unary()) {
    out.kind = Activation::HardSwish;
  } else if ((rw.isOp(node, "Gelu") || isKilnGelu(rw, node)) && unary()) {
    std::string approximate = n.getString("approximate", "none");
    if (approximate == "none") {
      out.kind = Activation::Gelu;
    } else if (approximate == "tanh") {
      out.kind = Activation::GeluTanh;
    } else {
      return std::nullopt;
    }
  } else {
    return std::nullopt;
  }
  for (float p : out.params) {
    if (std::isnan(p)) return std::nullopt;
  }
  return out;
}

void addActivationAttrs(std::map<std::string, Attribute>& attrs, const ActivationMatch& act) {
  if (act.kind == Activation::None) return;
  attrs["activation"] = stringAttr(activationName(act.kind));
  if (!act.params.empty()) attrs["activation_params"] = floatsAttr(act.params);
}

}  // namespace kiln
