// Shape logic of the shape ops shared by their schemas (ops/shape_ops.cc) and kernels.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "ops/schema.h"

namespace kiln {

// The output shape of Reshape(in, target): 0 copies the input dim (unless allowZero), one -1 is
// inferred (symbolically when dims are symbols). Errors name both shapes.
SymShape resolveReshape(InferContext& ctx, const SymShape& in, const std::vector<int64_t>& target, bool allowZero);

// The [start, end) range of dims Shape returns (start/end attributes from opset 15, clamped).
std::pair<int64_t, int64_t> shapeOpRange(const Node& node, int64_t opset, int64_t rank);

}  // namespace kiln
