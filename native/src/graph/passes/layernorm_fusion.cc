// LayerNorm fusion. Matches the decomposition PyTorch exports below opset 17, on float32 tensors:
//   mean = ReduceMean(X, axes)            keepdims 1, axes the trailing dims [r-k, r)
//   d    = Sub(X, mean)
//   sq   = Pow(d, 2) or Mul(d, d)
//   var  = ReduceMean(sq, axes)           the same axes, keepdims 1
//   std  = Sqrt(Add(var, eps))            eps a constant >= 0 (either operand order)
//   n    = Div(d, std) or Mul(d, Reciprocal(std))
//   y    = Mul(n, scale)                  optional, scale constant (either order)
//   out  = Add(y, bias)                   optional, bias constant (either order)
// and replaces it with kiln.LayerNormalization(X, scale, bias?) {axis = r-k, epsilon = eps}, which
// computes exactly this: normalization over the trailing k dims with the biased variance and eps
// inside the square root, then the affine map. Scale and bias must be per normalized element (their
// dims right-aligned with X's trailing dims, leading ones 1) and the result must keep X's rank, so
// nothing broadcasts differently; missing scale becomes ones. The exponent must be exactly 2, the
// axes of both ReduceMeans equal, and every intermediate read only inside the pattern (d by the
// square and the division, the rest by their one successor) and not a graph output. ONNX's own
// LayerNormalization (opset >= 17) is left as it is.
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "graph/passes/pass.h"
#include "graph/passes/pattern.h"

namespace kiln {
namespace {

ValueId out0(const Rewriter& rw, int32_t n) {
  const Node& node = rw.graph.nodes[n];
  return node.outputs.size() == 1 ? node.outputs[0] : kNoValue;
}

// Normalized reduce axes of a ReduceMean with keepdims 1, or nullopt.
std::optional<std::vector<int64_t>> reduceAxes(const Rewriter& rw, const Node& n, int64_t rank) {
  if (n.getInt("keepdims", 1) != 1 || n.outputs.size() != 1) return std::nullopt;
  std::vector<int64_t> axes;
  if (n.hasInput(1)) {  // ReduceMean-18: axes input
    const Tensor* t = rw.constant(n.inputs[1]);
    if (!t || (t->dtype != DType::Int64 && t->dtype != DType::Int32)) return std::nullopt;
    axes = t->toInt64Vector();
  } else {
    axes = n.getInts("axes");
  }
  if (axes.empty()) return std::nullopt;  // all axes, or a no-op with noop_with_empty_axes
  for (int64_t& a : axes) {
    if (a < -rank || a >= rank) return std::nullopt;
    if (a < 0) a += rank;
  }
  std::sort(axes.begin(), axes.end());
  if (std::adjacent_find(axes.begin(), axes.end()) != axes.end()) return std::nullopt;
  return axes;
}

// A constant scale/bias as a tensor of exactly `normalized` shape, or nullopt.
std::optional<Tensor> perElement(const Tensor& t, const Shape& normalized, size_t rank) {
  if (t.dtype != DType::Float32 || t.shape.size() > rank) return std::nullopt;
  const int64_t count = shapeNumel(normalized);
  if (t.numel() == 1 && count != 1) {  // a scalar: the same factor for every element
    Tensor out = Tensor::allocate(DType::Float32, normalized);
    std::fill(out.ptr<float>(), out.ptr<float>() + count, t.ptr<float>()[0]);
    return out;
  }
  if (t.numel() != count) return std::nullopt;
  // Right-aligned, t's dims must match the normalized dims; dims left of them must be 1.
  const size_t k = normalized.size();
  for (size_t i = 0; i < t.shape.size(); i++) {
    size_t fromRight = t.shape.size() - 1 - i;
    if (fromRight < k ? t.shape[i] != normalized[k - 1 - fromRight] : t.shape[i] != 1) return std::nullopt;
  }
  return reshaped(t, normalized);
}

struct LayerNormMatch {
  ValueId x = kNoValue, scale = kNoValue, bias = kNoValue;
  Tensor scaleValue, biasValue;
  bool newScale = false, newBias = false;
  int64_t axis = 0;
  float epsilon = 0;
  std::vector<int32_t> nodes;
  int32_t last = -1;
};

std::optional<LayerNormMatch> match(const Rewriter& rw, int32_t rm1) {
  const Graph& g = rw.graph;
  LayerNormMatch m;
  const Node& r1 = g.nodes[rm1];
  if (r1.inputs.empty()) return std::nullopt;
  m.x = r1.inputs[0];
  const SymShape& xs = g.values[m.x].shape;
  if (!isFloat32(g, m.x) || !xs.hasRank || xs.rank() == 0) return std::nullopt;
  const int64_t rank = (int64_t)xs.rank();
  auto axes = reduceAxes(rw, r1, rank);
  if (!axes || axes->back() != rank - 1 || axes->front() != rank - (int64_t)axes->size()) return std::nullopt;
  m.axis = axes->front();
  Shape normalized;
  for (int64_t d = m.axis; d < rank; d++) {
    if (!xs.dims[d].isKnown()) return std::nullopt;
    normalized.push_back(xs.dims[d].value);
  }

  ValueId mean = out0(rw, rm1);
  int32_t sub = rw.soleConsumerOp(mean, "Sub");
  if (sub < 0 || g.nodes[sub].inputs != std::vector<ValueId>{m.x, mean}) return std::nullopt;
  ValueId d = out0(rw, sub);
  if (d == kNoValue || rw.consumers(d).size() != 2 || g.isGraphOutput(d)) return std::nullopt;
  // d's two readers: the square and the division.
  int32_t square = -1, divide = -1;
  for (int32_t c : rw.consumers(d)) {
    const Node& n = g.nodes[c];
    if (rw.isOp(c, "Pow") && n.inputs.size() == 2 && n.inputs[0] == d) {
      auto e = rw.scalar(n.inputs[1]);
      if (e && *e == 2.0) square = c;
    } else if (rw.isOp(c, "Mul") && n.inputs == std::vector<ValueId>{d, d}) {
      square = c;
    } else if (rw.isOp(c, "Div") && n.inputs.size() == 2 && n.inputs[0] == d) {
      divide = c;
    } else if (rw.isOp(c, "Mul") && rw.otherInput(c, d)) {
      divide = c;
    }
  }
  if (square < 0 || divide < 0) return std::nullopt;
  ValueId sq = out0(rw, square);
  int32_t rm2 = sq == kNoValue ? -1 : rw.soleConsumerOp(sq, "ReduceMean");
  if (rm2 < 0 || g.nodes[rm2].inputs.empty() || g.nodes[rm2].inputs[0] != sq) return std::nullopt;
  auto axes2 = reduceAxes(rw, g.nodes[rm2], rank);
  if (!axes2 || *axes2 != *axes) return std::nullopt;
  ValueId var = out0(rw, rm2);
  int32_t addEps = rw.soleConsumerOp(var, "Add");
  if (addEps < 0) return std::nullopt;
  auto epsValue = rw.otherInput(addEps, var);
  auto eps = epsValue ? rw.scalar(*epsValue) : std::nullopt;
  if (!eps || !(*eps >= 0) || !std::isfinite(*eps)) return std::nullopt;
  m.epsilon = (float)*eps;
  int32_t sqrtNode = rw.soleConsumerOp(out0(rw, addEps), "Sqrt");
  if (sqrtNode < 0) return std::nullopt;
  ValueId stddev = out0(rw, sqrtNode);
  m.nodes = {rm1, sub, square, rm2, addEps, sqrtNode};
  // d / std, or d * (1 / std)
  const Node& dv = g.nodes[divide];
  if (rw.isOp(divide, "Div")) {
    if (dv.inputs[1] != stddev || rw.soleConsumer(stddev) != divide) return std::nullopt;
  } else {
    int32_t recip = rw.soleConsumerOp(stddev, "Reciprocal");
    if (recip < 0 || rw.soleConsumer(out0(rw, recip)) != divide || rw.otherInput(divide, d) != out0(rw, recip)) {
      return std::nullopt;
    }
    m.nodes.push_back(recip);
  }
  m.nodes.push_back(divide);
  m.last = divide;
  ValueId cur = out0(rw, divide);

  int32_t mul = cur == kNoValue ? -1 : rw.soleConsumerOp(cur, "Mul");
  if (mul >= 0) {
    auto other = rw.otherInput(mul, cur);
    const Tensor* s = other ? rw.constant(*other) : nullptr;
    auto scale = s ? perElement(*s, normalized, (size_t)rank) : std::nullopt;
    if (scale) {
      m.scale = *other;
      m.newScale = s->shape != normalized;
      m.scaleValue = *scale;
      m.nodes.push_back(mul);
      m.last = mul;
      cur = out0(rw, mul);
    }
  }
  int32_t add = (m.scale != kNoValue && cur != kNoValue) ? rw.soleConsumerOp(cur, "Add") : -1;
  if (add >= 0) {
    auto other = rw.otherInput(add, cur);
    const Tensor* b = other ? rw.constant(*other) : nullptr;
    auto bias = b ? perElement(*b, normalized, (size_t)rank) : std::nullopt;
    if (bias) {
      m.bias = *other;
      m.newBias = b->shape != normalized;
      m.biasValue = *bias;
      m.nodes.push_back(add);
      m.last = add;
      cur = out0(rw, add);
    }
  }
  // Equal rank means no constant of the pattern (eps, the exponent: one element each, any rank)
  // broadcast the result larger; scale and bias were checked element for element above.
  if (cur == kNoValue || !isFloat32(g, cur) || !g.values[cur].shape.hasRank || g.values[cur].shape.rank() != xs.rank()) {
    return std::nullopt;
  }
  return m;
}

}  // namespace

int fuseLayerNorm(Graph& graph, PassContext&) {
  Rewriter rw(graph);
  int fused = 0;
  for (int32_t i = 0; i < (int32_t)graph.nodes.size(); i++) {
    if (!rw.isOp(i, "ReduceMean")) continue;
    auto m = match(rw, i);
    if (!m) continue;
    const std::string name = graph.nodes[i].name;
    if (m->scale == kNoValue) {
      const SymShape& xs = graph.values[m->x].shape;
      Shape normalized;
      for (size_t d = (size_t)m->axis; d < xs.rank(); d++) normalized.push_back(xs.dims[d].value);
      Tensor ones = Tensor::allocate(DType::Float32, normalized);
      std::fill(ones.ptr<float>(), ones.ptr<float>() + ones.numel(), 1.0f);
      m->scale = rw.addConstant(name + "_scale", std::move(ones));
    } else if (m->newScale) {
      m->scale = rw.addConstant(graph.values[m->scale].name + "_ln", m->scaleValue);
    }
    if (m->bias != kNoValue && m->newBias) m->bias = rw.addConstant(graph.values[m->bias].name + "_ln", m->biasValue);
    std::vector<ValueId> inputs = {m->x, m->scale};
    if (m->bias != kNoValue) inputs.push_back(m->bias);
    for (int32_t n : m->nodes) {
      if (n != m->last) rw.remove(n);
    }
    std::map<std::string, Attribute> attrs;
    attrs["axis"] = intAttr(m->axis);
    attrs["epsilon"] = floatAttr(m->epsilon);
    Node& ln = rw.becomeFused(m->last, "LayerNormalization", inputs, std::move(attrs), name);
    ln.outputs.resize(1);
    fused++;
  }
  return fused;
}

}  // namespace kiln
