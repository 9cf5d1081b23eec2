// Dead node elimination. Matches nodes none of whose outputs is needed, where a value is needed when
// it is a graph output, an input of a needed node, or a name a needed node's subgraph (If/Loop/Scan
// body) reads from the enclosing scope. Ops have no side effects in ONNX, so such nodes cannot change
// any graph output. One backward sweep over the topological order finds them all.
//
// Constants (weights) no needed node reads lose their tensor as well, so weights replaced by folding
// (BatchNorm) or unused initializers do not end up in the engine. Their Value entries stay, since
// ValueIds are positions; nothing refers to them.
#include <unordered_map>

#include "graph/passes/pass.h"

namespace kiln {

int eliminateDeadNodes(Graph& graph, PassContext&) {
  std::vector<bool> needed(graph.values.size(), false);
  for (ValueId v : graph.outputs) {
    if (v >= 0 && (size_t)v < needed.size()) needed[v] = true;
  }
  std::unordered_map<std::string, ValueId> byName;
  bool indexed = false;
  int removed = 0;
  for (int32_t i = (int32_t)graph.nodes.size() - 1; i >= 0; i--) {
    Node& n = graph.nodes[i];
    if (n.dead) continue;
    bool live = false;
    for (ValueId v : n.outputs) live = live || (v != kNoValue && needed[v]);
    if (!live) {
      n.dead = true;
      removed++;
      continue;
    }
    for (ValueId v : n.inputs) {
      if (v != kNoValue) needed[v] = true;
    }
    for (auto& [attrName, a] : n.attrs) {
      std::vector<const Graph*> bodies;
      if (a.kind == Attribute::Kind::Graph && a.g) bodies.push_back(a.g.get());
      if (a.kind == Attribute::Kind::Graphs) {
        for (auto& g : a.graphs) {
          if (g) bodies.push_back(g.get());
        }
      }
      for (const Graph* body : bodies) {
        if (!indexed) {
          for (size_t v = 0; v < graph.values.size(); v++) byName.emplace(graph.values[v].name, (ValueId)v);
          indexed = true;
        }
        for (const std::string& name : outerScopeNames(*body)) {
          auto it = byName.find(name);
          if (it != byName.end()) needed[it->second] = true;
        }
      }
    }
  }
  for (size_t v = 0; v < graph.values.size(); v++) {
    if (graph.values[v].constant && !needed[v]) graph.values[v].constant.reset();
  }
  return removed;
}

}  // namespace kiln
