// Binds the caller's named input tensors to an engine's graph inputs and checks them against the
// model (names, dtypes, ranks, fixed dims, symbolic dims shared between inputs) and the engine's
// optimization profiles, with errors that name the input and both shapes.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "runtime/engine_impl.h"

namespace kiln {

struct BoundInputs {
  std::vector<const Tensor*> tensors;  // in graph.inputs order
  std::string signature;               // all input shapes: the key of a context's shape cache
  int profile = -1;                    // the profile the shapes fit (-1 when the engine has none)
};

// Throws InvalidArgument (unknown, duplicate or missing input, no data), DTypeMismatch and
// ShapeMismatch. `requireData` is false for the builder's shape-only runs.
BoundInputs bindInputs(const EngineImpl& engine, const std::vector<std::pair<std::string, Tensor>>& inputs,
                       bool requireData);

}  // namespace kiln
