// INT8 builds honour the QuantizeLinear/DequantizeLinear pairs a model carries (QDQ models from
// quantization-aware training or post-training tools): before the optimizer, every
// DequantizeLinear(QuantizeLinear(x)) on an activation is removed and its range (scale times the
// int8 extent around the zero point) recorded for x; DequantizeLinear of a constant (quantized
// weights) is folded into a float constant. The backend's INT8 lowering then uses these ranges as
// given, in place of calibration.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "graph/ir.h"

namespace kiln {

// Returns value name -> amax (the largest |x| the recorded int8 range represents).
std::map<std::string, float> stripQdqPairs(Graph& graph, std::vector<std::string>& warnings);

}  // namespace kiln
