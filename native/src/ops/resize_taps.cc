// Per-axis interpolation taps of Resize: coordinate transformation, neighbour choice and weights,
// following the ONNX reference implementation (onnx/reference/ops/op_resize.py) so results match
// the conformance data: coordinates in double, neighbours from an edge-padded input, weights
// normalised for antialias and exclude_outside.
#include <algorithm>
#include <cmath>

#include "ops/resize.h"

namespace kiln {

namespace {

// The input coordinate of output index x. outWidth is scale * inDim as a real number (not the
// rounded output size), as in the reference.
double originalCoordinate(ResizeCoord coord, double x, double scale, int64_t inDim, int64_t outDim, double roiStart,
                          double roiEnd) {
  const double outWidth = scale * (double)inDim;
  switch (coord) {
    case ResizeCoord::HalfPixel:
      return (x + 0.5) / scale - 0.5;
    case ResizeCoord::HalfPixelSymmetric: {
      // Maps the centre of the input to the centre of the output even when the output size was
      // rounded.
      const double adjustment = (double)outDim / outWidth;
      const double center = (double)inDim / 2;
      return center * (1 - adjustment) + (x + 0.5) / scale - 0.5;
    }
    case ResizeCoord::PytorchHalfPixel:
      return outWidth == 1 ? -0.5 : (x + 0.5) / scale - 0.5;
    case ResizeCoord::AlignCorners:
      return outWidth == 1 ? 0.0 : x * (double)(inDim - 1) / (outWidth - 1);
    case ResizeCoord::Asymmetric:
      return x / scale;
    case ResizeCoord::TfHalfPixelForNn:
      return (x + 0.5) / scale;
    case ResizeCoord::TfCropAndResize: {
      const double span = (roiEnd - roiStart) * (double)(inDim - 1);
      const double pos = outWidth == 1 ? span / 2 : x * span / (outWidth - 1);
      return pos + roiStart * (double)(inDim - 1);
    }
  }
  return 0;
}

double cubicWeight(double x, double a) {
  x = std::fabs(x);
  if (x <= 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  return 0;
}

int64_t nearestIndex(ResizeNearest mode, double xOri, double scale) {
  switch (mode) {
    case ResizeNearest::Simple:
      return scale < 1 ? (int64_t)std::ceil(xOri) : (int64_t)std::floor(xOri);
    case ResizeNearest::Floor:
      return (int64_t)std::floor(xOri);
    case ResizeNearest::Ceil:
      return (int64_t)std::ceil(xOri);
    case ResizeNearest::RoundPreferFloor:
    case ResizeNearest::RoundPreferCeil: {
      const double f = std::floor(xOri), r = xOri - f;
      if (r == 0.5) return (int64_t)(mode == ResizeNearest::RoundPreferFloor ? f : f + 1);
      return (int64_t)(r < 0.5 ? f : f + 1);
    }
  }
  return 0;
}

}  // namespace

ResizeTaps resizeAxisTaps(const ResizeAttrs& attrs, int64_t inDim, int64_t outDim, double scale, double roiStart,
                          double roiEnd) {
  ResizeTaps t;
  t.outside.assign((size_t)outDim, 0);
  // Neighbours relative to the base index i0 (the input index just below the coordinate, with the
  // ratio x - i0 in (0, 1]): offsets [first, first + taps).
  int64_t first = 0;
  const double s = std::min(scale, 1.0);  // antialias widens the filter only when downsampling
  switch (attrs.mode) {
    case ResizeMode::Nearest:
      t.taps = 1;
      break;
    case ResizeMode::Linear:
      first = attrs.antialias ? (int64_t)std::floor(-1 / s) + 1 : 0;
      t.taps = 2 - 2 * first;
      break;
    case ResizeMode::Cubic:
      first = attrs.antialias ? (int64_t)std::floor(-2 / s) + 1 : -1;
      t.taps = 2 - 2 * first;
      break;
  }
  t.index.assign((size_t)(outDim * t.taps), 0);
  t.weight.assign((size_t)(outDim * t.taps), 0.0);
  const int64_t last = std::max<int64_t>(inDim - 1, 0);
  for (int64_t x = 0; x < outDim; x++) {
    double xOri = originalCoordinate(attrs.coord, (double)x, scale, inDim, outDim, roiStart, roiEnd);
    // A hostile roi can make the coordinate non-finite or huge; keep integer conversions defined.
    if (!std::isfinite(xOri)) xOri = attrs.coord == ResizeCoord::TfCropAndResize ? -1.0 : 0.0;
    xOri = std::clamp(xOri, -1e15, 1e15);
    int64_t* idx = &t.index[(size_t)(x * t.taps)];
    double* w = &t.weight[(size_t)(x * t.taps)];
    if (attrs.coord == ResizeCoord::TfCropAndResize && (xOri < 0 || xOri > (double)(inDim - 1))) {
      t.outside[(size_t)x] = 1;
      t.anyOutside = true;
      continue;
    }
    if (attrs.mode == ResizeMode::Nearest) {
      idx[0] = std::clamp<int64_t>(nearestIndex(attrs.nearest, xOri, scale), 0, last);
      w[0] = 1;
      continue;
    }
    const double fl = std::floor(xOri);
    const int64_t i0 = xOri == fl ? (int64_t)fl - 1 : (int64_t)fl;
    const double ratio = xOri - (double)i0;
    double sum = 0;
    for (int64_t k = 0; k < t.taps; k++) {
      const int64_t off = first + k;
      const int64_t raw = i0 + off;
      double weight;
      if (attrs.mode == ResizeMode::Linear) {
        weight = attrs.antialias ? std::clamp(1 - std::fabs(((double)off - ratio) * s), 0.0, 1.0)
                                 : (off == 0 ? 1 - ratio : ratio);
      } else {
        weight = attrs.antialias ? cubicWeight(s * ((double)off - ratio), attrs.cubicA)
                                 : cubicWeight((double)off - ratio, attrs.cubicA);
      }
      if (attrs.excludeOutside && (raw < 0 || raw >= inDim)) weight = 0;
      idx[k] = std::clamp<int64_t>(raw, 0, last);
      w[k] = weight;
      sum += weight;
    }
    // Antialias filters and exclude_outside renormalise so the weights sum to 1.
    if ((attrs.antialias || attrs.excludeOutside) && sum != 0) {
      for (int64_t k = 0; k < t.taps; k++) w[k] /= sum;
    }
  }
  t.identity = inDim == outDim && !t.anyOutside;
  for (int64_t x = 0; t.identity && x < outDim; x++) {
    for (int64_t k = 0; k < t.taps; k++) {
      const double w = t.weight[(size_t)(x * t.taps + k)];
      const int64_t i = t.index[(size_t)(x * t.taps + k)];
      if (w != 0 && !(i == x && w == 1)) t.identity = false;
    }
  }
  return t;
}

}  // namespace kiln
