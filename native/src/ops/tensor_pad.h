// Pad's parameter logic (modes, per-axis pads, CenterCropPad's equivalent pads), shared by the
// schemas of Pad, CenterCropPad and Tile and by their kernels.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace kiln {

enum class PadMode { Constant, Reflect, Edge, Wrap };

// Parses Pad's mode attribute ("wrap" exists from opset 19). onError must throw.
PadMode parsePadMode(const std::string& mode, int64_t opset, const std::function<void(const std::string&)>& onError);

// Per-dim pads of a tensor of `rank`: pads lists the begin pads then the end pads of each axis in
// `axes` (all dims when axes is empty). Negative pads crop.
struct Pads {
  std::vector<int64_t> begin, end;
};
Pads resolvePads(int64_t rank, const std::vector<int64_t>& pads, const std::vector<int64_t>& axes,
                 const std::function<void(const std::string&)>& onError);

// CenterCropPad as pads: per axis, crop (negative) or pad (positive) so the dim becomes target,
// centred, the odd element going to the end.
Pads centerCropPads(const std::vector<int64_t>& dims, const std::vector<int64_t>& target,
                    const std::vector<int64_t>& axes, const std::function<void(const std::string&)>& onError);

}  // namespace kiln
