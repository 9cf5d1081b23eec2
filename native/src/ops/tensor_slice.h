// Slice's index arithmetic, shared by its schema and kernels.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace kiln {

// One axis of a slice after ONNX's clamping rules: elements start, start+step, ... (count of them).
struct AxisSlice {
  int64_t start = 0, step = 1, count = 0;
};
AxisSlice resolveSliceAxis(int64_t dim, int64_t start, int64_t end, int64_t step);

// The slice of every dim of a tensor of shape `dims` (unsliced dims: whole range, step 1).
// axes may be empty (meaning 0..n-1), steps may be empty (all 1). onError must throw.
std::vector<AxisSlice> resolveSlice(const std::vector<int64_t>& dims, const std::vector<int64_t>& starts,
                                    const std::vector<int64_t>& ends, const std::vector<int64_t>& axes,
                                    const std::vector<int64_t>& steps,
                                    const std::function<void(const std::string&)>& onError);

}  // namespace kiln
