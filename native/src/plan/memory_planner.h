// Static memory planning: given every activation tensor's size and lifetime over the execution
// order, assign each an offset in one arena so that tensors alive at the same time never overlap,
// and report the arena's exact size. This is what lets an engine state its memory need before it
// runs. The planner knows nothing about graphs: the runtime turns its node order into steps.
//
// Steps and lifetimes. Nodes run in order 0, 1, 2, ... A tensor lives from the step that writes it
// (firstUse) to the last step that reads it (lastUse), both inclusive, so a node's output never
// shares memory with that node's own inputs unless an in-place alias says so. A tensor nobody
// reads has lastUse == firstUse. Scratch workspaces fit the same model: firstUse == lastUse == the
// step that uses them.
//
// What belongs in the arena. Graph inputs, graph outputs and constants are owned by the runtime and
// are NOT given to the planner; a view of one of them (a Reshape of a graph input) is the runtime's
// business too.
//
// Aliases. A tensor may ask to share the buffer of an earlier tensor (aliasOf, by id):
//  - AliasKind::View: the tensor is a reinterpretation of the same bytes (Reshape, Squeeze,
//    Unsqueeze, Flatten, Identity). Nothing writes either buffer after it is produced, so sharing
//    is always safe; the shared buffer simply lives until the last reader of any of its names.
//    Granted whenever the view is not larger than the source.
//  - AliasKind::InPlace: the producing kernel writes its output over its input (elementwise ops).
//    Safe only when no other name of that buffer is read after this step and no other output of
//    this step writes it, and the output fits. Otherwise the tensor gets its own buffer.
// The plan says which aliases were granted (MemoryPlan::sharesWith); for a refused one the runtime
// must copy (view) or run out of place (in-place).
//
// Placement is greedy by size with best fit, as in TensorRT/ONNX Runtime and "Efficient Memory
// Management for Deep Neural Net Inference" (Pisarchyk & Lee, 2020): buffers in decreasing size
// order each take the smallest gap, among buffers overlapping them in time, that fits them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace kiln {

enum class AliasKind { None, View, InPlace };

struct PlannedTensor {
  int32_t id = -1;       // the caller's name for the tensor (a ValueId); unique within one plan
  size_t bytes = 0;      // exact size; 0 is allowed (an empty tensor takes no space)
  int32_t firstUse = 0;  // step that writes it
  int32_t lastUse = 0;   // last step that reads it (>= firstUse)
  AliasKind aliasKind = AliasKind::None;
  int32_t aliasOf = -1;  // id of an earlier tensor in the same plan, when aliasKind != None
};

struct MemoryPlanOptions {
  // Offsets are multiples of this and every buffer is padded to it (SIMD loads, cache lines).
  // Must be a power of two.
  size_t alignment = 64;
  // The off switch (BuildOptions::planMemory): when false every tensor gets its own region, laid
  // out one after another, and no alias is granted. Slower to start and bigger, but it rules the
  // planner out when chasing a memory-corruption bug.
  bool enabled = true;
};

struct MemoryPlan {
  std::vector<size_t> offsets;       // byte offset of tensors[i] in the arena (parallel to input)
  std::vector<int32_t> sharesWith;   // index of the tensor whose buffer tensors[i] reuses through
                                     // a granted alias, or -1 (parallel to input)
  size_t peakBytes = 0;              // arena size: max over buffers of offset + padded size
  size_t alignment = 64;
};

// Plans the arena. Throws KilnError(InvalidArgument) for malformed requests: duplicate ids,
// lastUse < firstUse, negative steps, an alias naming an unknown id or a tensor that is not
// produced strictly before the aliasing one, a non-power-of-two alignment.
MemoryPlan planMemory(const std::vector<PlannedTensor>& tensors, const MemoryPlanOptions& options = {});

// Independent check of a plan (tests, and debug builds of the runtime): every offset aligned,
// every tensor inside the arena, two tensors alive at the same step never overlap in memory unless
// one reuses the other's buffer through an alias that was requested and is legal. Throws
// KilnError(Internal) naming the two tensors on a violation.
void verifyMemoryPlan(const std::vector<PlannedTensor>& tensors, const MemoryPlan& plan);

// A human-readable dump ("id 7: [0, 4096) steps 2..5 (view of 3)") for `kiln inspect`.
std::string describeMemoryPlan(const std::vector<PlannedTensor>& tensors, const MemoryPlan& plan);

}  // namespace kiln
