#include "ops/nn_geometry.h"

#include <algorithm>

namespace kiln {
namespace {

std::string listToString(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); i++) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "]";
}

// Sizes above this are refused before they can overflow the arithmetic below.
constexpr int64_t kMaxExtent = int64_t(1) << 40;

}  // namespace

void failAt(const Node& node, ErrorCode code, const std::string& what) {
  fail(code, "node '" + node.name + "' (" + node.opType + "): " + what);
}

int64_t checkedProduct(const Node& node, int64_t a, int64_t b, const char* what) {
  if (a < 0 || b < 0) failAt(node, ErrorCode::ShapeMismatch, std::string(what) + " has a negative size");
  if (a != 0 && b > kMaxExtent / a) {
    failAt(node, ErrorCode::OutOfMemory, std::string(what) + " (" + std::to_string(a) + " x " + std::to_string(b) +
                                             ") is too large");
  }
  return a * b;
}

WindowParams readWindowParams(const Node& node, size_t rank, const std::vector<int64_t>& kernel, bool transposed) {
  WindowParams p;
  p.rank = rank;
  const std::string autoPad = node.getString("auto_pad", "NOTSET");
  if (autoPad == "NOTSET") p.autoPad = AutoPad::NotSet;
  else if (autoPad == "SAME_UPPER") p.autoPad = AutoPad::SameUpper;
  else if (autoPad == "SAME_LOWER") p.autoPad = AutoPad::SameLower;
  else if (autoPad == "VALID") p.autoPad = AutoPad::Valid;
  else failAt(node, ErrorCode::InvalidModel, "unknown auto_pad '" + autoPad + "'");

  auto readList = [&](const char* name, int64_t fallback, int64_t minValue, size_t count) {
    std::vector<int64_t> v = node.getInts(name, std::vector<int64_t>(count, fallback));
    if (v.size() != count) {
      failAt(node, ErrorCode::InvalidModel, std::string(name) + " " + listToString(v) + " must have " +
                                                  std::to_string(count) + " values for " + std::to_string(rank) +
                                                  " spatial dims");
    }
    for (int64_t x : v) {
      if (x < minValue || x > kMaxExtent) {
        failAt(node, ErrorCode::InvalidModel, std::string(name) + " " + listToString(v) + " has an invalid value");
      }
    }
    return v;
  };

  p.kernel = kernel;
  if (node.has("kernel_shape")) {
    std::vector<int64_t> ks = readList("kernel_shape", 1, 1, rank);
    if (!kernel.empty() && ks != kernel) {
      failAt(node, ErrorCode::ShapeMismatch, "kernel_shape " + listToString(ks) + " does not match the weight's " +
                                                   listToString(kernel));
    }
    p.kernel = ks;
  }
  if (p.kernel.size() != rank) failAt(node, ErrorCode::InvalidModel, "kernel_shape is required");
  for (int64_t k : p.kernel) {
    if (k < 1 || k > kMaxExtent) failAt(node, ErrorCode::InvalidModel, "kernel shape " + listToString(p.kernel) + " is invalid");
  }
  p.strides = readList("strides", 1, 1, rank);
  p.dilations = readList("dilations", 1, 1, rank);
  p.pads = readList("pads", 0, 0, 2 * rank);
  p.ceilMode = node.getInt("ceil_mode", 0) != 0;
  if (transposed) {
    p.outputPadding = readList("output_padding", 0, 0, rank);
    for (size_t d = 0; d < rank; d++) {
      // ONNX requires output_padding < max(stride, dilation); larger values would read no input.
      if (p.outputPadding[d] >= std::max(p.strides[d], p.dilations[d])) {
        failAt(node, ErrorCode::InvalidModel, "output_padding " + listToString(p.outputPadding) +
                                                    " must be smaller than the stride or dilation");
      }
    }
    if (node.has("output_shape")) {
      std::vector<int64_t> os = node.getInts("output_shape");
      // Either the spatial dims only or the full [N, C, spatial...] shape.
      if (os.size() == rank + 2) os.erase(os.begin(), os.begin() + 2);
      if (os.size() != rank) {
        failAt(node, ErrorCode::InvalidModel, "output_shape " + listToString(node.getInts("output_shape")) +
                                                    " does not have " + std::to_string(rank) + " spatial dims");
      }
      for (int64_t x : os) {
        if (x < 0 || x > kMaxExtent) failAt(node, ErrorCode::InvalidModel, "output_shape has an invalid value");
      }
      p.outputShape = os;
    }
  }
  return p;
}

WindowDim forwardWindowDim(const Node& node, const WindowParams& p, size_t d, int64_t in) {
  if (in < 0 || in > kMaxExtent) failAt(node, ErrorCode::ShapeMismatch, "spatial size " + std::to_string(in) + " is invalid");
  const int64_t k = p.kernel[d], s = p.strides[d], dil = p.dilations[d];
  const int64_t extent = checkedProduct(node, dil, k - 1, "the dilated kernel") + 1;  // span in the padded input
  WindowDim r;
  switch (p.autoPad) {
    case AutoPad::SameUpper:
    case AutoPad::SameLower: {
      // Output covers ceil(in / stride) positions; the padding needed to get there is split evenly,
      // the odd element going to the end (UPPER) or the beginning (LOWER).
      r.out = (in + s - 1) / s;
      const int64_t total = std::max<int64_t>(0, checkedProduct(node, r.out - 1, s, "the strided output") + extent - in);
      r.padBegin = p.autoPad == AutoPad::SameUpper ? total / 2 : total - total / 2;
      r.padEnd = total - r.padBegin;
      return r;
    }
    case AutoPad::Valid:
    case AutoPad::NotSet:
      break;
  }
  if (p.autoPad == AutoPad::NotSet) {
    r.padBegin = p.pads[d];
    r.padEnd = p.pads[d + p.rank];
  }
  const int64_t span = in + r.padBegin + r.padEnd - extent;
  if (span < 0) {
    failAt(node, ErrorCode::ShapeMismatch, "window extent " + std::to_string(extent) + " is larger than the padded input (" +
                                                 std::to_string(in + r.padBegin + r.padEnd) + ") in spatial dim " +
                                                 std::to_string(d));
  }
  r.out = (p.ceilMode ? (span + s - 1) / s : span / s) + 1;
  // With ceil_mode the last window must still start inside the input or its leading padding;
  // one starting in the trailing padding only would pool nothing.
  if (p.ceilMode && (r.out - 1) * s >= in + r.padBegin) r.out--;
  return r;
}

WindowDim transposedWindowDim(const Node& node, const WindowParams& p, size_t d, int64_t in) {
  if (in < 0 || in > kMaxExtent) failAt(node, ErrorCode::ShapeMismatch, "spatial size " + std::to_string(in) + " is invalid");
  const int64_t k = p.kernel[d], s = p.strides[d], dil = p.dilations[d];
  // The output every input position reaches, before any cropping.
  const int64_t full = checkedProduct(node, s, std::max<int64_t>(0, in - 1), "the strided output") + p.outputPadding[d] +
                       checkedProduct(node, dil, k - 1, "the dilated kernel") + 1;
  WindowDim r;
  const bool same = p.autoPad == AutoPad::SameUpper || p.autoPad == AutoPad::SameLower;
  if (same) {
    // Output size is the explicit output_shape or in * stride; the difference to `full` is cropped,
    // the odd element from the end (UPPER) or the beginning (LOWER), as the ONNX spec says.
    // A negative total (stride larger than the kernel) means the output is larger than `full`:
    // negative pads, i.e. zero borders, split with floor division as the ONNX reference does.
    r.out = p.outputShape.empty() ? checkedProduct(node, in, s, "the strided output") : p.outputShape[d];
    const int64_t total = full - r.out;
    const int64_t half = total >= 0 ? total / 2 : -((-total + 1) / 2);  // floor(total / 2)
    r.padBegin = p.autoPad == AutoPad::SameUpper ? half : total - half;
    r.padEnd = total - r.padBegin;
    return r;
  }
  if (p.autoPad == AutoPad::NotSet) {
    r.padBegin = p.pads[d];
    r.padEnd = p.pads[d + p.rank];
  }
  if (!p.outputShape.empty()) {
    // An explicit output_shape fixes the size; positions past `full - padBegin` get only the bias.
    r.out = p.outputShape[d];
    r.padEnd = full - r.padBegin - r.out;
  } else {
    r.out = full - r.padBegin - r.padEnd;
  }
  if (r.out < 0) {
    failAt(node, ErrorCode::ShapeMismatch, "pads crop more than the whole output in spatial dim " + std::to_string(d));
  }
  return r;
}

std::optional<std::vector<int64_t>> knownKernel(const SymShape& w) {
  if (!w.hasRank || w.rank() < 2) return std::nullopt;
  std::vector<int64_t> k;
  for (size_t i = 2; i < w.rank(); i++) {
    if (!w.dims[i].isKnown()) return std::nullopt;
    k.push_back(w.dims[i].value);
  }
  return k;
}

}  // namespace kiln
