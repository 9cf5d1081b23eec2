// Sliding-window geometry shared by the Conv / ConvTranspose / pooling schemas and their kernels:
// attribute reading with defaults and validation (kernel_shape, strides, dilations, pads, auto_pad,
// ceil_mode, output_padding, output_shape) and the per-dimension output size and padding rules.
// Schemas and kernels call the same functions, so build-time shapes and run-time shapes agree.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "graph/ir.h"

namespace kiln {

enum class AutoPad { NotSet, SameUpper, SameLower, Valid };

// Throws KilnError(code) with "node 'name' (Op): what", the format InferContext::error uses.
[[noreturn]] void failAt(const Node& node, ErrorCode code, const std::string& what);

// a * b for non-negative sizes, or OutOfMemory naming the node when it exceeds 2^40 (no tensor or
// buffer can be that large, and hostile attributes must not overflow the arithmetic).
int64_t checkedProduct(const Node& node, int64_t a, int64_t b, const char* what);

// Window attributes for `rank` spatial dims, defaults applied, values validated (strides and
// dilations >= 1, pads >= 0, kernel >= 1, list lengths equal to rank).
struct WindowParams {
  size_t rank = 0;
  AutoPad autoPad = AutoPad::NotSet;
  std::vector<int64_t> kernel, strides, dilations;
  std::vector<int64_t> pads;  // 2*rank: all begins, then all ends (explicit pads; NOTSET only)
  bool ceilMode = false;
  // ConvTranspose only.
  std::vector<int64_t> outputPadding;  // rank values
  std::vector<int64_t> outputShape;    // rank values, or empty when not given
};

// kernel: the kernel extent per spatial dim (from W for convs, kernel_shape for pools). For convs
// a kernel_shape attribute, when present, must agree with it.
WindowParams readWindowParams(const Node& node, size_t rank, const std::vector<int64_t>& kernel,
                              bool transposed = false);

// Output extent and pads of one spatial dim of a forward window op (Conv, pools).
struct WindowDim {
  int64_t out = 0;
  int64_t padBegin = 0, padEnd = 0;
};
WindowDim forwardWindowDim(const Node& node, const WindowParams& p, size_t d, int64_t in);
// Output extent and pads of one spatial dim of ConvTranspose (pads here crop the full output).
WindowDim transposedWindowDim(const Node& node, const WindowParams& p, size_t d, int64_t in);

// The kernel extents of a conv weight's spatial dims (W is [M, C/group, k1, ..., kn] or, for
// ConvTranspose, [C, M/group, k1, ..., kn]); nullopt when some are not known yet.
std::optional<std::vector<int64_t>> knownKernel(const SymShape& w);

}  // namespace kiln
