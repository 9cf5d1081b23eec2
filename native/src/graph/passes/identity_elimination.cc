// Identity elimination. Matches Identity, and Dropout in inference mode (no training_mode input, or
// a constant false one; opsets before 12 have no training mode in inference engines), whose mask
// output is omitted or read by nobody. Both return their input unchanged, so every reader of the
// output can read the input instead.
//
// Graph outputs keep their names: when the output Y is a graph output, the node producing the input
// X is made to write Y directly (X's other readers switch to Y); that is only done when X is an
// ordinary intermediate (not a graph input, constant or graph output itself), else the node stays.
#include <algorithm>

#include "graph/passes/pass.h"
#include "graph/passes/pattern.h"

namespace kiln {
namespace {

bool isPassThrough(const Rewriter& rw, int32_t i) {
  const Node& n = rw.graph.nodes[i];
  if (n.inputs.empty() || n.inputs[0] == kNoValue || n.outputs.empty() || n.outputs[0] == kNoValue) return false;
  if (rw.isOp(i, "Identity")) return n.inputs.size() == 1 && n.outputs.size() == 1;
  if (!rw.isOp(i, "Dropout")) return false;
  if (n.hasInput(2)) {
    // training_mode: only a known false makes Dropout the identity.
    auto training = rw.scalar(n.inputs[2]);
    if (!training || *training != 0) return false;
  }
  // Dropout-1/6 with is_test=0 describes training; an inference engine runs it as the identity
  // (as ONNX Runtime does), so the attribute is not consulted.
  for (size_t k = 1; k < n.outputs.size(); k++) {
    ValueId mask = n.outputs[k];
    if (mask != kNoValue && (!rw.consumers(mask).empty() || rw.graph.isGraphOutput(mask))) return false;
  }
  return true;
}

}  // namespace

int eliminateIdentities(Graph& graph, PassContext&) {
  Rewriter rw(graph);
  int removed = 0;
  for (int32_t i = 0; i < (int32_t)graph.nodes.size(); i++) {
    if (!rw.usable(i) || !isPassThrough(rw, i)) continue;
    const ValueId x = graph.nodes[i].inputs[0];
    const ValueId y = graph.nodes[i].outputs[0];
    if (x == y) continue;
    if (!graph.isGraphOutput(y)) {
      graph.replaceAllUses(y, x);
      rw.remove(i);
      removed++;
      continue;
    }
    // y names a graph output: let x's producer write y instead.
    int32_t p = rw.producer(x);
    bool xIsInput = std::find(graph.inputs.begin(), graph.inputs.end(), x) != graph.inputs.end();
    if (p < 0 || xIsInput || graph.values[x].constant || graph.isGraphOutput(x)) continue;
    graph.replaceAllUses(x, y);  // the identity itself now reads y; it is removed below
    for (ValueId& out : graph.nodes[p].outputs) {
      if (out == x) out = y;
    }
    graph.values[y].producer = p;
    rw.claim(p);
    rw.remove(i);
    removed++;
  }
  return removed;
}

}  // namespace kiln
