#include "runtime/qdq.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "graph/shape_inference.h"

namespace kiln {
namespace {

std::vector<double> valuesOf(const Tensor& t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[i] = t.scalarAsDouble(i);
  return v;
}

bool isOp(const Node& n, const char* op) { return !n.dead && n.domain.empty() && n.opType == op; }

}  // namespace

std::map<std::string, float> stripQdqPairs(Graph& g, std::vector<std::string>& warnings) {
  std::map<std::string, float> amax;
  bool changed = false;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (!isOp(g.nodes[i], "DequantizeLinear") || !g.nodes[i].hasInput(1)) continue;
    const Node& dq = g.nodes[i];
    const ValueId in = dq.inputs[0], out = dq.outputs[0];
    if (!g.values[dq.inputs[1]].constant) continue;
    const std::vector<double> scale = valuesOf(*g.values[dq.inputs[1]].constant);
    std::vector<double> zero;
    if (dq.hasInput(2) && g.values[dq.inputs[2]].constant) zero = valuesOf(*g.values[dq.inputs[2]].constant);
    if (scale.empty()) continue;
    if (g.values[in].constant) {
      // Quantized weights: one float constant (per-axis scales and zero points honoured).
      const Tensor& q = *g.values[in].constant;
      Tensor f = Tensor::allocate(DType::Float32, q.shape);
      int64_t axis = dq.getInt("axis", 1);
      const int64_t rank = static_cast<int64_t>(q.shape.size());
      if (axis < 0) axis += rank;
      int64_t inner = 1, dim = 1;
      if (scale.size() > 1 && axis >= 0 && axis < rank) {
        dim = q.shape[axis];
        for (int64_t d = axis + 1; d < rank; ++d) inner *= q.shape[d];
      }
      for (int64_t e = 0; e < q.numel(); ++e) {
        const size_t c = scale.size() > 1 ? static_cast<size_t>((e / inner) % dim) : 0;
        const double z = zero.empty() ? 0.0 : zero[std::min(c, zero.size() - 1)];
        f.ptr<float>()[e] = static_cast<float>((q.scalarAsDouble(e) - z) * scale[std::min(c, scale.size() - 1)]);
      }
      ValueId folded = g.addConstant(g.values[out].name + "/dequantized", std::move(f));
      g.replaceAllUses(out, folded);
      g.nodes[i].dead = true;
      changed = true;
      continue;
    }
    const int32_t p = g.values[in].producer;
    if (p < 0 || !isOp(g.nodes[p], "QuantizeLinear")) continue;
    const Node& q = g.nodes[p];
    const bool u8 = g.values[in].dtype == DType::UInt8;
    const double s = *std::max_element(scale.begin(), scale.end());
    const double z = zero.empty() ? 0.0 : zero[0];
    if (scale.size() > 1) warnings.push_back("Q/DQ on '" + g.values[q.inputs[0]].name + "' is per-axis: its largest scale is used");
    const double lo = ((u8 ? 0.0 : -128.0) - z) * s, hi = ((u8 ? 255.0 : 127.0) - z) * s;
    const ValueId x = q.inputs[0];
    const float range = static_cast<float>(std::max(std::fabs(lo), std::fabs(hi)));
    auto it = amax.find(g.values[x].name);
    amax[g.values[x].name] = it == amax.end() ? range : std::min(it->second, range);
    g.replaceAllUses(out, x);
    g.nodes[i].dead = true;
    changed = true;
  }
  if (!changed) return amax;
  // QuantizeLinear nodes nobody reads any more.
  std::vector<int> readers(g.values.size(), 0);
  for (const Node& n : g.nodes) {
    if (n.dead) continue;
    for (ValueId v : n.inputs) {
      if (v != kNoValue) ++readers[v];
    }
  }
  for (Node& n : g.nodes) {
    if (isOp(n, "QuantizeLinear") && readers[n.outputs[0]] == 0 && !g.isGraphOutput(n.outputs[0])) n.dead = true;
  }
  g.compact();
  inferShapes(g);
  return amax;
}

}  // namespace kiln
