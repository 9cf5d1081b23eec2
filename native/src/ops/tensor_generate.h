// Value logic of the generator ops (Constant, Range), shared by their schemas and kernels.
#pragma once
#include <cstdint>
#include <memory>

#include "core/tensor.h"
#include "graph/ir.h"

namespace kiln {

// The tensor a Constant node produces, from whichever of its value attributes is set (value,
// sparse_value (read densely by the ONNX reader), value_float(s), value_int(s), value_string(s)).
// Throws InvalidModel naming the node unless exactly one is set.
std::shared_ptr<Tensor> constantNodeValue(const Node& node);

// Number of elements Range(start, limit, delta) produces: max(ceil((limit - start) / delta), 0).
// Throws InvalidArgument naming the node for delta == 0 or absurd counts.
int64_t rangeCount(const Node& node, double start, double limit, double delta);

}  // namespace kiln
