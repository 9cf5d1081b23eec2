// Turns the builder's shape-only runs at the max shapes of every profile into the engine's static
// memory plan: which activations live where in one context's arena, which are views or in-place
// results of others, and each kernel's scratch. The arena algorithm itself is plan/memory_planner.
#pragma once
#include <string>
#include <vector>

#include "plan/serialize.h"
#include "runtime/context.h"

namespace kiln {

// One trace per profile (RunTrace::shapeOnly at that profile's max shapes). A value is planned only
// when every trace could size it from the input shapes; the others (data-dependent sizes) are left
// to the heap at run time and named in a warning. `enabled` is BuildOptions::planMemory.
// `ioInArena` (device backends): graph inputs and outputs get arena slots too, inputs alive from
// before the first node, outputs until after the last. Offsets are multiples of `alignment`.
EngineMemoryPlan planEngineMemory(const Graph& graph, const std::vector<RunTrace>& traces, bool enabled,
                                  std::vector<std::string>& warnings, bool ioInArena = false, size_t alignment = 64);

}  // namespace kiln
