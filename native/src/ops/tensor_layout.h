// Parameter logic of the layout ops (Transpose, DepthToSpace, SpaceToDepth), shared by their
// schemas and kernels.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "graph/ir.h"

namespace kiln {

// Transpose's permutation for a tensor of `rank`: the `perm` attribute (validated to be a
// permutation) or the reversed dims. onError must throw.
std::vector<int64_t> transposePerm(const Node& node, int64_t rank, const std::function<void(const std::string&)>& onError);

// DepthToSpace/SpaceToDepth as a 6-D view: the input is reshaped to `inShape6` and transposed by
// `perm6`; the result reshaped to 4-D is the output.
struct BlockRearrangement {
  std::vector<int64_t> inShape6, perm6;
};
// DepthToSpace of [N,C,H,W] with block b in mode "DCR" or "CRD".
BlockRearrangement depthToSpaceView(int64_t n, int64_t c, int64_t h, int64_t w, int64_t b, bool crd);
// SpaceToDepth of [N,C,H,W] with block b.
BlockRearrangement spaceToDepthView(int64_t n, int64_t c, int64_t h, int64_t w, int64_t b);

}  // namespace kiln
