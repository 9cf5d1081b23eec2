#include "runtime/build_memory.h"

#include <algorithm>

#include "plan/memory_planner.h"
#include "runtime/engine_impl.h"

namespace kiln {

EngineMemoryPlan planEngineMemory(const Graph& graph, const std::vector<RunTrace>& traces, bool enabled,
                                  std::vector<std::string>& warnings, bool ioInArena, size_t alignment) {
  const size_t numValues = graph.values.size();
  const size_t numNodes = graph.nodes.size();
  EngineMemoryPlan mem;
  mem.slots.assign(numValues, EngineSlot{});
  mem.workspaces.assign(numNodes, EngineSlot{});

  // The runtime owns graph inputs, graph outputs and constants; strings are objects, not bytes.
  // With ioInArena, graph inputs and outputs are placed too (node steps shift by one so that the
  // inputs are written at step 0, before the first node, and outputs are read after the last).
  std::vector<char> arenaValue(numValues, 1), isInput(numValues, 0);
  for (ValueId v : graph.inputs) isInput[v] = 1;
  for (size_t v = 0; v < numValues; ++v) {
    if (graph.values[v].constant || (graph.values[v].producer < 0 && !(ioInArena && isInput[v]))) arenaValue[v] = 0;
  }
  if (!ioInArena) {
    for (ValueId v : graph.inputs) arenaValue[v] = 0;
    for (ValueId v : graph.outputs) arenaValue[v] = 0;
  }
  const int32_t stepShift = ioInArena ? 1 : 0;
  const int32_t endStep = static_cast<int32_t>(numNodes) + stepShift;

  // Size of each value: the largest over the profiles' max shapes.
  std::vector<size_t> bytes(numValues, 0);
  std::vector<char> plannable(numValues, traces.empty() ? 0 : 1);
  for (const RunTrace& t : traces) {
    for (size_t v = 0; v < numValues; ++v) {
      if (!arenaValue[v] || !plannable[v]) continue;
      const bool sized = v < t.plannable.size() && (t.plannable[v] || (isInput[v] && t.shapeKnown[v]));
      if (!sized || t.types[v] == DType::String) {
        plannable[v] = 0;
        continue;
      }
      bytes[v] = std::max(bytes[v], static_cast<size_t>(shapeNumel(t.shapes[v])) * dtypeSize(t.types[v]));
    }
  }
  std::vector<std::string> unplanned;
  for (size_t v = 0; v < numValues; ++v) {
    if (arenaValue[v] && !plannable[v]) unplanned.push_back(graph.values[v].name);
  }
  if (!unplanned.empty()) {
    std::string names;
    for (size_t i = 0; i < unplanned.size() && i < 5; ++i) names += (i ? ", '" : "'") + unplanned[i] + "'";
    if (unplanned.size() > 5) names += ", ...";
    warnings.push_back(std::to_string(unplanned.size()) +
                       " tensor(s) have data-dependent sizes and are allocated at run time, outside "
                       "deviceMemoryBytes: " + names);
  }

  // Lifetimes over the node order; a body's captures count as reads by the node owning the body.
  std::vector<std::vector<int32_t>> consumers = graph.consumers();
  std::vector<PlannedTensor> tensors;
  std::vector<int32_t> indexOf(numValues, -1);
  for (ValueId v : graph.inputs) {
    if (!arenaValue[v] || !plannable[v] || indexOf[v] >= 0) continue;
    PlannedTensor t;
    t.id = v;
    t.bytes = bytes[v];
    t.firstUse = 0;
    t.lastUse = graph.isGraphOutput(v) ? endStep : 0;
    for (int32_t c : consumers[v]) t.lastUse = std::max(t.lastUse, c + stepShift);
    indexOf[v] = static_cast<int32_t>(tensors.size());
    tensors.push_back(t);
  }
  for (size_t n = 0; n < numNodes; ++n) {
    const Node& node = graph.nodes[n];
    for (size_t j = 0; j < node.outputs.size(); ++j) {
      ValueId v = node.outputs[j];
      if (v == kNoValue || !arenaValue[v] || !plannable[v]) continue;
      PlannedTensor t;
      t.id = v;
      t.bytes = bytes[v];
      t.firstUse = static_cast<int32_t>(n) + stepShift;
      t.lastUse = ioInArena && graph.isGraphOutput(v) ? endStep : t.firstUse;
      for (int32_t c : consumers[v]) t.lastUse = std::max(t.lastUse, c + stepShift);
      ValueId src = node.inputs.empty() ? kNoValue : node.inputs[0];
      if (j == 0 && src != kNoValue && indexOf[src] >= 0) {
        if (isViewOp(node)) {
          t.aliasKind = AliasKind::View;
          t.aliasOf = src;
        } else if (isInPlaceOp(node) && bytes[src] == bytes[v]) {
          t.aliasKind = AliasKind::InPlace;
          t.aliasOf = src;
        }
      }
      indexOf[v] = static_cast<int32_t>(tensors.size());
      tensors.push_back(t);
    }
  }
  // Each kernel's scratch lives during its own step only; ids after the values keep them unique.
  std::vector<int32_t> workspaceIndex(numNodes, -1);
  for (size_t n = 0; n < numNodes; ++n) {
    size_t ws = 0;
    for (const RunTrace& t : traces) ws = std::max(ws, n < t.workspaceBytes.size() ? t.workspaceBytes[n] : 0);
    if (ws == 0) continue;
    PlannedTensor t;
    t.id = static_cast<int32_t>(numValues + n);
    t.bytes = ws;
    t.firstUse = t.lastUse = static_cast<int32_t>(n) + stepShift;
    workspaceIndex[n] = static_cast<int32_t>(tensors.size());
    tensors.push_back(t);
  }

  MemoryPlanOptions options;
  options.enabled = enabled;
  options.alignment = alignment;
  MemoryPlan plan = planMemory(tensors, options);
  verifyMemoryPlan(tensors, plan);
  mem.arenaBytes = plan.peakBytes;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const PlannedTensor& t = tensors[i];
    EngineSlot slot;
    slot.offset = static_cast<int64_t>(plan.offsets[i]);
    slot.bytes = t.bytes;
    if (plan.sharesWith[i] >= 0) slot.aliasOf = tensors[plan.sharesWith[i]].id;
    if (static_cast<size_t>(t.id) < numValues) {
      mem.slots[t.id] = slot;
    } else {
      mem.workspaces[t.id - numValues] = slot;
    }
  }
  return mem;
}

}  // namespace kiln
