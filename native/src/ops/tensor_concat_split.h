// Split's size logic, shared by its schema and kernels.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "graph/ir.h"

namespace kiln {

// Sizes of Split's outputs along the axis for a dim of size `dim` (nullopt: unknown), given the
// explicit `split` sizes (when present), the opset and the node's num_outputs attribute (opset 18).
// Returns nullopt when the sizes depend on an unknown dim. onError must throw.
std::optional<std::vector<int64_t>> splitSizes(const Node& node, int64_t opset, std::optional<int64_t> dim,
                                               const std::optional<std::vector<int64_t>>& split, size_t numOutputs,
                                               const std::function<void(const std::string&)>& onError);

}  // namespace kiln
