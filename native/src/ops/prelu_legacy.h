// PRelu before opset 7 applied a 1-D slope of C values per channel (axis 1), the way Caffe and the
// early PyTorch exporter meant it; opset 7 switched to numpy broadcasting, under which [C] would line
// up with the last axis instead. Shared by the schema and every backend's kernel.
#pragma once
#include <cstdint>
#include <vector>

namespace kiln {

// The slope shape to broadcast with: [C, 1, ..., 1] for a legacy per-channel slope, otherwise the
// slope's own shape. Dims may be -1 (unknown), which never matches.
inline std::vector<int64_t> legacyPReluSlopeShape(int64_t opset, const std::vector<int64_t>& x,
                                                  const std::vector<int64_t>& slope) {
  if (opset >= 7 || slope.size() != 1 || x.size() < 3 || slope[0] < 0 || slope[0] != x[1]) return slope;
  if (slope[0] == x.back()) return slope;  // numpy broadcasting already lines up
  std::vector<int64_t> shape(x.size() - 1, 1);
  shape[0] = slope[0];
  return shape;
}

}  // namespace kiln
