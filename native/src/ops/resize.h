// Resize (opsets 10, 11, 13, 18, 19) and the deprecated Upsample (7, 9): attribute parsing, output
// size and scale resolution, and the per-axis interpolation taps. Backend-independent so every
// backend's kernel computes the same coordinates as the ONNX reference implementation.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "graph/ir.h"

namespace kiln {

enum class ResizeMode { Nearest, Linear, Cubic };
enum class ResizeCoord {
  HalfPixel,
  HalfPixelSymmetric,
  PytorchHalfPixel,
  AlignCorners,
  Asymmetric,
  TfHalfPixelForNn,
  TfCropAndResize,
};
// Simple: Resize-10 and Upsample's rule (floor when upsampling, ceil when downsampling), as the
// reference runtimes implement those opsets.
enum class ResizeNearest { RoundPreferFloor, RoundPreferCeil, Floor, Ceil, Simple };
enum class ResizeAspect { Stretch, NotLarger, NotSmaller };

struct ResizeAttrs {
  ResizeMode mode = ResizeMode::Nearest;
  ResizeCoord coord = ResizeCoord::HalfPixel;
  ResizeNearest nearest = ResizeNearest::RoundPreferFloor;
  double cubicA = -0.75;
  bool excludeOutside = false;
  double extrapolation = 0;
  bool antialias = false;
  ResizeAspect aspect = ResizeAspect::Stretch;
  std::vector<int64_t> axes;  // as given (may be negative); empty: all
  // Where the op's inputs are, for this opset (-1: not an input of this version).
  int roiInput = -1, scalesInput = -1, sizesInput = -1;
  std::vector<float> scalesAttr;  // Upsample-7's scales attribute
};

// Parses a Resize or Upsample node's attributes for its opset. onError must throw.
ResizeAttrs parseResizeAttrs(const Node& node, int64_t opset, const std::function<void(const std::string&)>& onError);

// The resolved geometry of one resize: the output shape, and per input dim the scale used for
// coordinate mapping and the region of interest (tf_crop_and_resize only; default [0, 1]).
struct ResizePlan {
  Shape outShape;
  std::vector<double> scales, roiStart, roiEnd;
};
// scales/sizes/roi are the op's inputs (or Upsample's attribute) when given and non-empty.
ResizePlan planResize(const ResizeAttrs& attrs, const Shape& in, const std::optional<std::vector<double>>& scales,
                      const std::optional<std::vector<int64_t>>& sizes, const std::optional<std::vector<double>>& roi,
                      const std::function<void(const std::string&)>& onError);

// The input taps of every output index along one axis: out[j] = sum_t weight[j*taps+t] *
// in[index[j*taps+t]], or the extrapolation value where outside[j] (tf_crop_and_resize).
struct ResizeTaps {
  int64_t taps = 1;
  std::vector<int64_t> index;  // clamped to [0, inDim)
  std::vector<double> weight;
  std::vector<uint8_t> outside;
  bool anyOutside = false;
  // True when the axis maps every output index to the same input index with weight 1.
  bool identity = false;
};
ResizeTaps resizeAxisTaps(const ResizeAttrs& attrs, int64_t inDim, int64_t outDim, double scale, double roiStart,
                          double roiEnd);

}  // namespace kiln
