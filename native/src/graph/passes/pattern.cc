#include "graph/passes/pattern.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"

namespace kiln {

Rewriter::Rewriter(Graph& g) : graph(g), uses_(g.consumers()), claimed_(g.nodes.size(), false) {}

bool Rewriter::usable(int32_t node) const {
  return node >= 0 && (size_t)node < graph.nodes.size() && !graph.nodes[node].dead && !claimed_[node];
}

bool Rewriter::isOp(int32_t node, const char* opType) const {
  if (!usable(node)) return false;
  const Node& n = graph.nodes[node];
  return (n.domain.empty() || n.domain == "ai.onnx") && n.opType == opType;
}

int32_t Rewriter::producer(ValueId v) const {
  if (v < 0 || (size_t)v >= graph.values.size()) return -1;
  int32_t p = graph.values[v].producer;
  return usable(p) ? p : -1;
}

int32_t Rewriter::producerOp(ValueId v, const char* opType) const {
  int32_t p = producer(v);
  return p >= 0 && isOp(p, opType) ? p : -1;
}

const std::vector<int32_t>& Rewriter::consumers(ValueId v) const {
  static const std::vector<int32_t> none;
  if (v < 0 || (size_t)v >= uses_.size()) return none;
  return uses_[v];
}

int32_t Rewriter::soleConsumer(ValueId v) const {
  const std::vector<int32_t>& c = consumers(v);
  if (c.size() != 1 || !usable(c[0]) || graph.isGraphOutput(v)) return -1;
  return c[0];
}

int32_t Rewriter::soleConsumerOp(ValueId v, const char* opType) const {
  int32_t c = soleConsumer(v);
  return c >= 0 && isOp(c, opType) ? c : -1;
}

bool Rewriter::onlyReadBy(ValueId v, const std::vector<int32_t>& nodes) const {
  if (v < 0 || graph.isGraphOutput(v)) return false;
  for (int32_t c : consumers(v)) {
    if (!usable(c) || std::find(nodes.begin(), nodes.end(), c) == nodes.end()) return false;
  }
  return true;
}

const Tensor* Rewriter::constant(ValueId v) const {
  if (v < 0 || (size_t)v >= graph.values.size()) return nullptr;
  return graph.values[v].constant.get();
}

std::optional<double> Rewriter::scalar(ValueId v) const {
  const Tensor* t = constant(v);
  if (!t || t->data == nullptr) return std::nullopt;
  if (t->dtype == DType::String || t->dtype == DType::Undefined) return std::nullopt;
  int64_t n = 0;
  try {
    n = t->numel();
  } catch (const KilnError&) {
    return std::nullopt;
  }
  if (n != 1) return std::nullopt;
  return t->scalarAsDouble(0);
}

std::optional<ValueId> Rewriter::otherInput(int32_t node, ValueId v) const {
  const Node& n = graph.nodes[node];
  if (n.inputs.size() != 2) return std::nullopt;
  if (n.inputs[0] == v && n.inputs[1] != v) return n.inputs[1];
  if (n.inputs[1] == v && n.inputs[0] != v) return n.inputs[0];
  return std::nullopt;
}

void Rewriter::claim(int32_t node) { claimed_[node] = true; }

void Rewriter::remove(int32_t node) {
  graph.nodes[node].dead = true;
  claimed_[node] = true;
}

Node& Rewriter::becomeFused(int32_t anchor, const std::string& opType, std::vector<ValueId> inputs,
                            std::map<std::string, Attribute> attrs, const std::string& name) {
  Node& n = graph.nodes[anchor];
  n.opType = opType;
  n.domain = kKilnDomain;
  n.inputs = std::move(inputs);
  n.attrs = std::move(attrs);
  n.name = name;
  claim(anchor);
  graph.opsets[kKilnDomain] = 1;
  return n;
}

namespace {
std::string uniqueName(const Graph& graph, const std::string& base) {
  std::string name = base;
  for (int i = 1; graph.findValue(name); i++) name = base + "_" + std::to_string(i);
  return name;
}
}  // namespace

ValueId Rewriter::addConstant(const std::string& base, Tensor tensor) {
  ValueId id = graph.addConstant(uniqueName(graph, base), std::move(tensor));
  // New values are read by nothing yet: keep the snapshot's size in step with the values.
  uses_.resize(graph.values.size());
  return id;
}

ValueId Rewriter::addValue(const std::string& base, DType dtype, SymShape shape) {
  ValueId id = graph.addValue(uniqueName(graph, base), dtype, std::move(shape));
  uses_.resize(graph.values.size());
  return id;
}

Attribute intAttr(int64_t v) {
  Attribute a;
  a.kind = Attribute::Kind::Int;
  a.i = v;
  return a;
}

Attribute floatAttr(float v) {
  Attribute a;
  a.kind = Attribute::Kind::Float;
  a.f = v;
  return a;
}

Attribute stringAttr(const std::string& v) {
  Attribute a;
  a.kind = Attribute::Kind::String;
  a.s = v;
  return a;
}

Attribute intsAttr(std::vector<int64_t> v) {
  Attribute a;
  a.kind = Attribute::Kind::Ints;
  a.ints = std::move(v);
  return a;
}

Attribute floatsAttr(std::vector<float> v) {
  Attribute a;
  a.kind = Attribute::Kind::Floats;
  a.floats = std::move(v);
  return a;
}

bool isFloat32(const Graph& graph, ValueId v) {
  return v >= 0 && (size_t)v < graph.values.size() && graph.values[v].dtype == DType::Float32;
}

bool sameShape(const SymShape& a, const SymShape& b) {
  if (!a.hasRank || !b.hasRank || a.rank() != b.rank()) return false;
  for (size_t i = 0; i < a.rank(); i++) {
    const Dim& x = a.dims[i];
    const Dim& y = b.dims[i];
    if (x.isKnown() != y.isKnown()) return false;
    if (x.isKnown() ? x.value != y.value : (x.symbol.empty() || x.symbol != y.symbol)) return false;
  }
  return true;
}

std::vector<double> toDoubles(const Tensor& t) {
  int64_t n = t.numel();
  std::vector<double> out((size_t)n);
  if (t.dtype == DType::Float32) {
    const float* p = t.ptr<float>();
    for (int64_t i = 0; i < n; i++) out[i] = p[i];
  } else {
    for (int64_t i = 0; i < n; i++) out[i] = t.scalarAsDouble(i);
  }
  return out;
}

Tensor reshaped(const Tensor& t, const Shape& shape) {
  KILN_CHECK(shapeNumel(shape) == t.numel(), Internal,
             "reshaped: " + shapeToString(t.shape) + " to " + shapeToString(shape) + " changes the element count");
  Tensor out = t;
  out.shape = shape;
  return out;
}

bool near(double a, double b, double tol) { return std::fabs(a - b) <= tol * std::max(1.0, std::fabs(b)); }

}  // namespace kiln
