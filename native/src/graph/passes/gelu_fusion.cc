// GELU fusion. Matches the exact (erf) GELU as exporters write it,
//   u = Erf(Div(x, 1.41421356)) or Erf(Mul(x, 0.70710678))
//   a = Add(u, 1)
// and the tanh approximation used by GPT-2 / BERT-tf,
//   c = Pow(x, 3) or Mul(Mul(x, x), x) [either association]
//   u = Tanh(Mul(Add(x, Mul(c, 0.044715)), 0.7978845608))      (sqrt(2/pi))
//   a = Add(u, 1)
// each followed by one of the three ways to form 0.5 * x * a:
//   Mul(Mul(x, a), 0.5)      Mul(Mul(x, 0.5), a)      Mul(Mul(a, 0.5), x)
// (operands of every Add/Mul in either order). It becomes kiln.Gelu(x) with approximate "none" or
// "tanh". Every constant is checked (to float precision), every intermediate must be read only by
// the next node of the formula and not be a graph output, and every use of x must be the same x,
// so the fused op computes the same function; anything else is left alone.
#include <cmath>

#include "core/error.h"
#include "graph/passes/pass.h"
#include "graph/passes/pattern.h"

namespace kiln {
namespace {

constexpr double kTol = 1e-4;  // exported constants are float32 roundings of these
constexpr double kPi = 3.14159265358979323846;

struct Formula {
  ValueId x = kNoValue;
  std::vector<int32_t> nodes;  // every node of the formula
  ValueId output = kNoValue;
  int32_t last = -1;  // the node producing output
};

// Node `n` is a binary op whose inputs are `v` and a constant equal to `value`.
bool isOpWithConstant(const Rewriter& rw, int32_t n, ValueId v, double value) {
  auto other = rw.otherInput(n, v);
  if (!other) return false;
  auto c = rw.scalar(*other);
  return c && near(*c, value, kTol);
}

ValueId out0(const Rewriter& rw, int32_t n) {
  const Node& node = rw.graph.nodes[n];
  return node.outputs.size() == 1 ? node.outputs[0] : kNoValue;
}

// From a = 1 + erf(...) or 1 + tanh(...): the final 0.5 * x * a.
bool matchTail(const Rewriter& rw, ValueId a, Formula& f) {
  int32_t m1 = rw.soleConsumerOp(a, "Mul");
  if (m1 < 0) return false;
  auto other = rw.otherInput(m1, a);
  if (!other) return false;
  ValueId m1out = out0(rw, m1);
  if (m1out == kNoValue) return false;
  if (*other == f.x) {  // (x * a) * 0.5
    int32_t m2 = rw.soleConsumerOp(m1out, "Mul");
    if (m2 < 0 || !isOpWithConstant(rw, m2, m1out, 0.5)) return false;
    f.nodes.insert(f.nodes.end(), {m1, m2});
    f.last = m2;
  } else if (auto half = rw.scalar(*other); half && near(*half, 0.5, kTol)) {  // (a * 0.5) * x
    int32_t m2 = rw.soleConsumerOp(m1out, "Mul");
    if (m2 < 0 || rw.otherInput(m2, m1out) != std::optional<ValueId>(f.x)) return false;
    f.nodes.insert(f.nodes.end(), {m1, m2});
    f.last = m2;
  } else {  // (x * 0.5) * a
    int32_t h = rw.producerOp(*other, "Mul");
    if (h < 0 || rw.soleConsumer(*other) != m1 || !isOpWithConstant(rw, h, f.x, 0.5)) return false;
    f.nodes.insert(f.nodes.end(), {h, m1});
    f.last = m1;
  }
  f.output = out0(rw, f.last);
  return f.output != kNoValue;
}

// u = Erf(...) or Tanh(...) -> a = Add(u, 1) -> tail.
bool matchFromActivation(const Rewriter& rw, int32_t actNode, Formula& f) {
  ValueId u = out0(rw, actNode);
  int32_t plus = u == kNoValue ? -1 : rw.soleConsumerOp(u, "Add");
  if (plus < 0 || !isOpWithConstant(rw, plus, u, 1.0)) return false;
  ValueId a = out0(rw, plus);
  f.nodes.insert(f.nodes.end(), {actNode, plus});
  return a != kNoValue && matchTail(rw, a, f);
}

std::optional<Formula> matchErfGelu(const Rewriter& rw, int32_t erf) {
  const Node& e = rw.graph.nodes[erf];
  if (e.inputs.size() != 1) return std::nullopt;
  ValueId scaled = e.inputs[0];
  Formula f;
  int32_t s = rw.producer(scaled);
  if (s < 0 || rw.soleConsumer(scaled) != erf) return std::nullopt;
  const Node& sn = rw.graph.nodes[s];
  if (sn.inputs.size() != 2) return std::nullopt;
  if (rw.isOp(s, "Div")) {
    auto c = rw.scalar(sn.inputs[1]);
    if (!c || !near(*c, std::sqrt(2.0), kTol)) return std::nullopt;
    f.x = sn.inputs[0];
  } else if (rw.isOp(s, "Mul")) {
    for (int k = 0; k < 2 && f.x == kNoValue; k++) {
      auto c = rw.scalar(sn.inputs[k]);
      if (c && near(*c, std::sqrt(0.5), kTol)) f.x = sn.inputs[1 - k];
    }
    if (f.x == kNoValue) return std::nullopt;
  } else {
    return std::nullopt;
  }
  f.nodes.push_back(s);
  if (!matchFromActivation(rw, erf, f)) return std::nullopt;
  return f;
}

// c is x^3: Pow(x, 3) or a product of three x's in two Muls; returns x and the nodes.
std::optional<std::pair<ValueId, std::vector<int32_t>>> matchCube(const Rewriter& rw, ValueId c) {
  int32_t p = rw.producer(c);
  if (p < 0 || rw.soleConsumer(c) < 0) return std::nullopt;
  const Node& n = rw.graph.nodes[p];
  if (n.inputs.size() != 2) return std::nullopt;
  if (rw.isOp(p, "Pow")) {
    auto e = rw.scalar(n.inputs[1]);
    if (!e || *e != 3.0) return std::nullopt;
    return std::make_pair(n.inputs[0], std::vector<int32_t>{p});
  }
  if (!rw.isOp(p, "Mul")) return std::nullopt;
  // Mul(Mul(x, x), x) or Mul(x, Mul(x, x)).
  for (int k = 0; k < 2; k++) {
    ValueId sq = n.inputs[k], x = n.inputs[1 - k];
    int32_t q = rw.producerOp(sq, "Mul");
    if (q < 0 || rw.soleConsumer(sq) != p) continue;
    const Node& qn = rw.graph.nodes[q];
    if (qn.inputs.size() == 2 && qn.inputs[0] == x && qn.inputs[1] == x) {
      return std::make_pair(x, std::vector<int32_t>{q, p});
    }
  }
  return std::nullopt;
}

std::optional<Formula> matchTanhGelu(const Rewriter& rw, int32_t tanh) {
  const Node& t = rw.graph.nodes[tanh];
  if (t.inputs.size() != 1) return std::nullopt;
  // Mul(inner, sqrt(2/pi))
  ValueId scaled = t.inputs[0];
  int32_t s = rw.producerOp(scaled, "Mul");
  if (s < 0 || rw.soleConsumer(scaled) != tanh) return std::nullopt;
  ValueId inner = kNoValue;
  for (ValueId v : rw.graph.nodes[s].inputs) {
    if (inner == kNoValue && isOpWithConstant(rw, s, v, std::sqrt(2.0 / kPi))) inner = v;
  }
  // Add(x, Mul(cube, 0.044715))
  int32_t sum = inner == kNoValue ? -1 : rw.producerOp(inner, "Add");
  if (sum < 0 || rw.soleConsumer(inner) != s) return std::nullopt;
  const Node& sn = rw.graph.nodes[sum];
  if (sn.inputs.size() != 2) return std::nullopt;
  for (int k = 0; k < 2; k++) {
    ValueId x = sn.inputs[k], term = sn.inputs[1 - k];
    int32_t m = rw.producerOp(term, "Mul");
    if (m < 0 || rw.soleConsumer(term) != sum) continue;
    std::optional<ValueId> cube;
    for (ValueId v : rw.graph.nodes[m].inputs) {
      if (!cube && isOpWithConstant(rw, m, v, 0.044715)) cube = v;
    }
    if (!cube) continue;
    auto c = matchCube(rw, *cube);
    if (!c || c->first != x) continue;
    Formula f;
    f.x = x;
    f.nodes = c->second;
    f.nodes.insert(f.nodes.end(), {m, sum, s});
    if (!matchFromActivation(rw, tanh, f)) return std::nullopt;
    return f;
  }
  return std::nullopt;
}

}  // namespace

int fuseGelu(Graph& graph, PassContext&) {
  Rewriter rw(graph);
  int fused = 0;
  for (int32_t i = 0; i < (int32_t)graph.nodes.size(); i++) {
    std::optional<Formula> f;
    std::string approximate;
    if (rw.isOp(i, "Erf")) {
      f = matchErfGelu(rw, i);
      approximate = "none";
    } else if (rw.isOp(i, "Tanh")) {
      f = matchTanhGelu(rw, i);
      approximate = "tanh";
    }
    if (!f || !isFloat32(graph, f->x) || !isFloat32(graph, f->output)) continue;
    // All nodes distinct and usable (a malformed graph could route a value back into the formula).
    bool ok = true;
    for (size_t a = 0; a < f->nodes.size() && ok; a++) {
      ok = rw.usable(f->nodes[a]);
      for (size_t b = a + 1; b < f->nodes.size() && ok; b++) ok = f->nodes[a] != f->nodes[b];
    }
    // The formula's constants have one element each; equal ranks mean none of them broadcast x
    // to a larger shape.
    const SymShape& xs = graph.values[f->x].shape;
    const SymShape& ys = graph.values[f->output].shape;
    if (!ok || !xs.hasRank || !ys.hasRank || xs.rank() != ys.rank()) continue;
    const std::string name = graph.nodes[f->nodes.front()].name;
    for (int32_t n : f->nodes) {
      if (n != f->last) rw.remove(n);
    }
    std::map<std::string, Attribute> attrs;
    attrs["approximate"] = stringAttr(approximate);
    rw.becomeFused(f->last, "Gelu", {f->x}, std::move(attrs), name);
    fused++;
  }
  return fused;
}

}  // namespace kiln
