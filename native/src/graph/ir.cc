#include "graph/ir.h"

#include <algorithm>
#include <functional>
#include <queue>
#include <set>
#include <sstream>
#include <unordered_map>

#include "core/error.h"

namespace kiln {

// ---- Dim / SymShape ----------------------------------------------------------------------------

std::string Dim::toString() const {
  if (isKnown()) return std::to_string(value);
  return symbol.empty() ? "?" : symbol;
}

SymShape SymShape::of(const Shape& s) {
  SymShape out;
  out.hasRank = true;
  out.dims.reserve(s.size());
  for (int64_t d : s) out.dims.push_back(Dim::known(d));
  return out;
}

bool SymShape::isConcrete() const {
  if (!hasRank) return false;
  for (const Dim& d : dims) {
    if (!d.isKnown()) return false;
  }
  return true;
}

Shape SymShape::concrete() const {
  KILN_CHECK(isConcrete(), Internal, "SymShape::concrete() called on non-concrete shape " + toString());
  Shape out;
  out.reserve(dims.size());
  for (const Dim& d : dims) out.push_back(d.value);
  return out;
}

std::string SymShape::toString() const {
  if (!hasRank) return "?";
  std::string out = "[";
  for (size_t i = 0; i < dims.size(); i++) {
    if (i) out += ",";
    out += dims[i].toString();
  }
  return out + "]";
}

// ---- Node attribute getters ---------------------------------------------------------------------

namespace {

const char* attrKindName(Attribute::Kind k) {
  switch (k) {
    case Attribute::Kind::Float: return "float";
    case Attribute::Kind::Int: return "int";
    case Attribute::Kind::String: return "string";
    case Attribute::Kind::Tensor: return "tensor";
    case Attribute::Kind::Graph: return "graph";
    case Attribute::Kind::Floats: return "floats";
    case Attribute::Kind::Ints: return "ints";
    case Attribute::Kind::Strings: return "strings";
    case Attribute::Kind::Tensors: return "tensors";
    case Attribute::Kind::Graphs: return "graphs";
  }
  return "unknown";
}

// An attribute of the wrong kind is a malformed model, not a bug: the bytes came from a user.
[[noreturn]] void wrongKind(const Node& n, const std::string& attr, const Attribute& a, const char* want) {
  fail(ErrorCode::InvalidModel, "node '" + n.name + "' (" + n.opType + ") attribute '" + attr + "' is " +
                                    attrKindName(a.kind) + ", expected " + want);
}

}  // namespace

int64_t Node::getInt(const std::string& attr, int64_t fallback) const {
  auto it = attrs.find(attr);
  if (it == attrs.end()) return fallback;
  if (it->second.kind != Attribute::Kind::Int) wrongKind(*this, attr, it->second, "int");
  return it->second.i;
}

float Node::getFloat(const std::string& attr, float fallback) const {
  auto it = attrs.find(attr);
  if (it == attrs.end()) return fallback;
  // Some exporters write integral float attributes (alpha=1) as ints; accept them.
  if (it->second.kind == Attribute::Kind::Int) return static_cast<float>(it->second.i);
  if (it->second.kind != Attribute::Kind::Float) wrongKind(*this, attr, it->second, "float");
  return it->second.f;
}

std::string Node::getString(const std::string& attr, const std::string& fallback) const {
  auto it = attrs.find(attr);
  if (it == attrs.end()) return fallback;
  if (it->second.kind != Attribute::Kind::String) wrongKind(*this, attr, it->second, "string");
  return it->second.s;
}

std::vector<int64_t> Node::getInts(const std::string& attr, std::vector<int64_t> fallback) const {
  auto it = attrs.find(attr);
  if (it == attrs.end()) return fallback;
  if (it->second.kind != Attribute::Kind::Ints) wrongKind(*this, attr, it->second, "ints");
  return it->second.ints;
}

std::vector<float> Node::getFloats(const std::string& attr, std::vector<float> fallback) const {
  auto it = attrs.find(attr);
  if (it == attrs.end()) return fallback;
  if (it->second.kind == Attribute::Kind::Ints) {
    return std::vector<float>(it->second.ints.begin(), it->second.ints.end());
  }
  if (it->second.kind != Attribute::Kind::Floats) wrongKind(*this, attr, it->second, "floats");
  return it->second.floats;
}

// ---- Graph ----------------------------------------------------------------------------------------

ValueId Graph::addValue(const std::string& valueName, DType dtype, SymShape shape) {
  KILN_CHECK(values.size() < static_cast<size_t>(INT32_MAX), InvalidModel, "graph '" + name + "' has too many values");
  Value v;
  v.name = valueName;
  v.dtype = dtype;
  v.shape = std::move(shape);
  values.push_back(std::move(v));
  return static_cast<ValueId>(values.size() - 1);
}

ValueId Graph::addConstant(const std::string& valueName, Tensor tensor) {
  ValueId id = addValue(valueName, tensor.dtype, SymShape::of(tensor.shape));
  values[id].constant = std::make_shared<Tensor>(std::move(tensor));
  return id;
}

int32_t Graph::addNode(Node node) {
  KILN_CHECK(nodes.size() < static_cast<size_t>(INT32_MAX), InvalidModel, "graph '" + name + "' has too many nodes");
  auto inRange = [&](ValueId v) { return v == kNoValue || (v >= 0 && static_cast<size_t>(v) < values.size()); };
  for (ValueId v : node.inputs) {
    KILN_CHECK(inRange(v), Internal, "node '" + node.name + "' (" + node.opType + ") has an input id out of range");
  }
  for (ValueId v : node.outputs) {
    KILN_CHECK(inRange(v), Internal, "node '" + node.name + "' (" + node.opType + ") has an output id out of range");
  }
  int32_t index = static_cast<int32_t>(nodes.size());
  for (ValueId v : node.outputs) {
    if (v != kNoValue) values[v].producer = index;
  }
  nodes.push_back(std::move(node));
  return index;
}

std::optional<ValueId> Graph::findValue(const std::string& valueName) const {
  for (size_t i = 0; i < values.size(); i++) {
    if (values[i].name == valueName) return static_cast<ValueId>(i);
  }
  return std::nullopt;
}

int64_t Graph::opsetFor(const std::string& domain) const {
  const std::string& key = domain == "ai.onnx" ? std::string() : domain;
  auto it = opsets.find(key);
  if (it != opsets.end()) return it->second;
  if (key.empty()) {
    auto alias = opsets.find("ai.onnx");
    if (alias != opsets.end()) return alias->second;
  }
  // Subgraphs run under their enclosing model's opset imports.
  return parent ? parent->opsetFor(key) : 0;
}

bool Graph::isGraphOutput(ValueId v) const {
  return std::find(outputs.begin(), outputs.end(), v) != outputs.end();
}

// ---- outer-scope captures --------------------------------------------------------------------------

namespace {

bool isCapture(const Graph& g, ValueId id) {
  const Value& v = g.values[id];
  return v.producer < 0 && !v.constant &&
         std::find(g.inputs.begin(), g.inputs.end(), id) == g.inputs.end();
}

void collectOuterNames(const Graph& body, std::set<std::string>& out) {
  // Names defined in this body shadow the enclosing scopes for its nested bodies.
  std::set<std::string> defined;
  std::vector<bool> used(body.values.size(), false);
  for (const Node& n : body.nodes) {
    if (n.dead) continue;
    for (ValueId v : n.inputs) {
      if (v >= 0 && static_cast<size_t>(v) < used.size()) used[v] = true;
    }
  }
  for (ValueId v : body.outputs) {
    if (v >= 0 && static_cast<size_t>(v) < used.size()) used[v] = true;
  }
  for (size_t i = 0; i < body.values.size(); i++) {
    if (isCapture(body, static_cast<ValueId>(i))) {
      if (used[i]) out.insert(body.values[i].name);
    } else {
      defined.insert(body.values[i].name);
    }
  }
  for (const Node& n : body.nodes) {
    if (n.dead) continue;
    for (const auto& [attrName, a] : n.attrs) {
      std::vector<const Graph*> subs;
      if (a.kind == Attribute::Kind::Graph && a.g) subs.push_back(a.g.get());
      if (a.kind == Attribute::Kind::Graphs) {
        for (const auto& g : a.graphs) {
          if (g) subs.push_back(g.get());
        }
      }
      for (const Graph* sub : subs) {
        std::set<std::string> inner;
        collectOuterNames(*sub, inner);
        for (const std::string& s : inner) {
          if (!defined.count(s)) out.insert(s);
        }
      }
    }
  }
}

// Values of `g` that node `n` reads implicitly through its subgraphs (If/Loop/Scan bodies capture
// outer values by name). They are real dependencies for ordering and liveness.
std::vector<ValueId> implicitInputs(const Graph& g, const Node& n,
                                    const std::unordered_map<std::string, ValueId>& byName) {
  std::vector<ValueId> out;
  for (const auto& [attrName, a] : n.attrs) {
    if (a.kind != Attribute::Kind::Graph && a.kind != Attribute::Kind::Graphs) continue;
    std::vector<const Graph*> subs;
    if (a.g) subs.push_back(a.g.get());
    for (const auto& sub : a.graphs) {
      if (sub) subs.push_back(sub.get());
    }
    for (const Graph* sub : subs) {
      for (const std::string& s : outerScopeNames(*sub)) {
        auto it = byName.find(s);
        if (it != byName.end()) out.push_back(it->second);
      }
    }
  }
  return out;
}

std::unordered_map<std::string, ValueId> nameIndex(const Graph& g) {
  std::unordered_map<std::string, ValueId> byName;
  byName.reserve(g.values.size());
  for (size_t i = 0; i < g.values.size(); i++) byName.emplace(g.values[i].name, static_cast<ValueId>(i));
  return byName;
}

bool hasSubgraph(const Node& n) {
  for (const auto& [attrName, a] : n.attrs) {
    if (a.kind == Attribute::Kind::Graph || a.kind == Attribute::Kind::Graphs) return true;
  }
  return false;
}

}  // namespace

std::vector<std::string> outerScopeNames(const Graph& body) {
  std::set<std::string> names;
  collectOuterNames(body, names);
  return std::vector<std::string>(names.begin(), names.end());
}

void linkSubgraphs(Graph& graph) {
  for (Node& n : graph.nodes) {
    for (auto& [attrName, a] : n.attrs) {
      if (a.kind == Attribute::Kind::Graph && a.g) {
        a.g->parent = &graph;
        linkSubgraphs(*a.g);
      }
      if (a.kind == Attribute::Kind::Graphs) {
        for (auto& g : a.graphs) {
          if (!g) continue;
          g->parent = &graph;
          linkSubgraphs(*g);
        }
      }
    }
  }
}

std::vector<std::vector<int32_t>> Graph::consumers() const {
  std::vector<std::vector<int32_t>> out(values.size());
  auto add = [&](ValueId v, int32_t node) {
    if (v < 0 || static_cast<size_t>(v) >= out.size()) return;
    auto& list = out[v];
    if (list.empty() || list.back() != node) list.push_back(node);  // a node reading x twice counts once
  };
  std::unordered_map<std::string, ValueId> byName;
  bool indexed = false;
  for (size_t i = 0; i < nodes.size(); i++) {
    const Node& n = nodes[i];
    if (n.dead) continue;
    for (ValueId v : n.inputs) add(v, static_cast<int32_t>(i));
    if (hasSubgraph(n)) {
      if (!indexed) {
        byName = nameIndex(*this);
        indexed = true;
      }
      for (ValueId v : implicitInputs(*this, n, byName)) add(v, static_cast<int32_t>(i));
    }
  }
  return out;
}

void Graph::compact() {
  linkSubgraphs(*this);
  // Drop dead nodes, keeping the survivors' relative order.
  std::vector<Node> live;
  live.reserve(nodes.size());
  for (Node& n : nodes) {
    if (!n.dead) live.push_back(std::move(n));
  }
  nodes = std::move(live);
  const size_t numNodes = nodes.size();
  const std::string where = name.empty() ? std::string("graph") : "graph '" + name + "'";
  auto nodeLabel = [&](size_t i) { return "node '" + nodes[i].name + "' (" + nodes[i].opType + ")"; };
  auto inRange = [&](ValueId v) { return v >= 0 && static_cast<size_t>(v) < values.size(); };

  // Who produces each value (in the pre-sort numbering); two producers break SSA.
  std::vector<int32_t> producerOf(values.size(), -1);
  std::vector<bool> isInput(values.size(), false);
  for (ValueId v : inputs) {
    KILN_CHECK(inRange(v), Internal, where + " has an input id out of range");
    isInput[v] = true;
  }
  for (size_t i = 0; i < numNodes; i++) {
    for (ValueId v : nodes[i].outputs) {
      if (v == kNoValue) continue;
      KILN_CHECK(inRange(v), Internal, nodeLabel(i) + " has an output id out of range");
      KILN_CHECK(producerOf[v] < 0, InvalidModel,
                 "value '" + values[v].name + "' is produced by both " + nodeLabel(producerOf[v]) + " and " +
                     nodeLabel(i));
      KILN_CHECK(!isInput[v], InvalidModel,
                 "value '" + values[v].name + "' is a graph input but is also produced by " + nodeLabel(i));
      producerOf[v] = static_cast<int32_t>(i);
    }
  }

  // Dependency edges producer -> consumer, including captures by subgraphs.
  std::unordered_map<std::string, ValueId> byName;
  bool indexed = false;
  std::vector<std::vector<int32_t>> succ(numNodes);
  std::vector<int32_t> indegree(numNodes, 0);
  std::vector<std::vector<int32_t>> preds(numNodes);
  for (size_t i = 0; i < numNodes; i++) {
    std::vector<ValueId> deps;
    for (ValueId v : nodes[i].inputs) {
      if (v == kNoValue) continue;
      KILN_CHECK(inRange(v), Internal, nodeLabel(i) + " has an input id out of range");
      deps.push_back(v);
      // In the top-level graph every input must come from somewhere; a subgraph may also read
      // values of enclosing scopes by name.
      if (producerOf[v] < 0 && !values[v].constant && !isInput[v] && parent == nullptr) {
        fail(ErrorCode::InvalidModel, nodeLabel(i) + " input '" + values[v].name + "' is not defined");
      }
    }
    if (hasSubgraph(nodes[i])) {
      if (!indexed) {
        byName = nameIndex(*this);
        indexed = true;
      }
      for (ValueId v : implicitInputs(*this, nodes[i], byName)) deps.push_back(v);
    }
    std::sort(deps.begin(), deps.end());
    deps.erase(std::unique(deps.begin(), deps.end()), deps.end());
    for (ValueId v : deps) {
      int32_t p = producerOf[v];
      if (p < 0) continue;
      succ[p].push_back(static_cast<int32_t>(i));
      preds[i].push_back(p);
      indegree[i]++;
    }
  }

  // Kahn's algorithm, always taking the ready node that came first, so an already sorted graph keeps
  // its order exactly and passes see stable node positions.
  std::priority_queue<int32_t, std::vector<int32_t>, std::greater<int32_t>> ready;
  for (size_t i = 0; i < numNodes; i++) {
    if (indegree[i] == 0) ready.push(static_cast<int32_t>(i));
  }
  std::vector<int32_t> order;
  order.reserve(numNodes);
  while (!ready.empty()) {
    int32_t i = ready.top();
    ready.pop();
    order.push_back(i);
    for (int32_t s : succ[i]) {
      if (--indegree[s] == 0) ready.push(s);
    }
  }
  if (order.size() != numNodes) {
    // Every unsorted node is on a cycle or downstream of one. Walking predecessors that are still
    // unsorted must revisit a node, and the first revisited node lies on a cycle.
    int32_t start = -1;
    for (size_t i = 0; i < numNodes; i++) {
      if (indegree[i] > 0) {
        start = static_cast<int32_t>(i);
        break;
      }
    }
    std::vector<bool> seen(numNodes, false);
    int32_t cur = start;
    while (cur >= 0 && !seen[cur]) {
      seen[cur] = true;
      int32_t next = -1;
      for (int32_t p : preds[cur]) {
        if (indegree[p] > 0) {
          next = p;
          break;
        }
      }
      cur = next;
    }
    int32_t onCycle = cur >= 0 ? cur : start;
    fail(ErrorCode::InvalidModel, where + " has a cycle through " + nodeLabel(onCycle));
  }

  std::vector<Node> sorted;
  sorted.reserve(numNodes);
  for (int32_t i : order) sorted.push_back(std::move(nodes[i]));
  nodes = std::move(sorted);
  for (Value& v : values) v.producer = -1;
  for (size_t i = 0; i < nodes.size(); i++) {
    for (ValueId v : nodes[i].outputs) {
      if (v != kNoValue) values[v].producer = static_cast<int32_t>(i);
    }
  }
}

namespace {

// Renames captures of `from` to `to` inside a body (and its nested bodies) unless a body defines
// its own value named `from`, which shadows the outer one.
void renameCaptures(Graph& body, const std::string& from, const std::string& to) {
  std::optional<ValueId> local = body.findValue(from);
  if (local && !isCapture(body, *local)) return;
  if (local) body.values[*local].name = to;
  for (Node& n : body.nodes) {
    for (auto& [attrName, a] : n.attrs) {
      if (a.kind == Attribute::Kind::Graph && a.g) renameCaptures(*a.g, from, to);
      if (a.kind == Attribute::Kind::Graphs) {
        for (auto& g : a.graphs) {
          if (g) renameCaptures(*g, from, to);
        }
      }
    }
  }
}

}  // namespace

void Graph::replaceAllUses(ValueId from, ValueId to) {
  auto inRange = [&](ValueId v) { return v >= 0 && static_cast<size_t>(v) < values.size(); };
  KILN_CHECK(inRange(from) && inRange(to), Internal, "replaceAllUses: value id out of range");
  if (from == to) return;
  for (Node& n : nodes) {
    for (ValueId& v : n.inputs) {
      if (v == from) v = to;
    }
    // Subgraphs read outer values by name: point their captures at the replacement's name.
    if (hasSubgraph(n) && values[from].name != values[to].name) {
      for (auto& [attrName, a] : n.attrs) {
        if (a.kind == Attribute::Kind::Graph && a.g) renameCaptures(*a.g, values[from].name, values[to].name);
        if (a.kind == Attribute::Kind::Graphs) {
          for (auto& g : a.graphs) {
            if (g) renameCaptures(*g, values[from].name, values[to].name);
          }
        }
      }
    }
  }
  for (ValueId& v : outputs) {
    if (v == from) v = to;
  }
}

}  // namespace kiln
