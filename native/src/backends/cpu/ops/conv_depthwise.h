// Depthwise 2-D convolution (one filter per channel: MobileNet, EfficientNet), computed directly
// instead of through im2col + GEMM (a 1-row GEMM per channel wastes the micro-kernel). Each
// channel plane is copied once into a zero-padded scratch plane so the inner loops need no bounds
// checks; rows are then accumulated tap by tap, vectorised along the output row (AVX2 for strides
// 1 and 2, portable loops otherwise).
#pragma once
#include <cstdint>

#include "backends/cpu/gemm/sgemm.h"
#include "backends/cpu/ops/conv_im2col.h"

namespace kiln::cpu {

struct DepthwisePlane {
  const float* x = nullptr;         // [H, W] input plane
  const float* w = nullptr;         // [KH, KW] filter
  float bias = 0.f;
  const float* residual = nullptr;  // [OH, OW] or null
  float* y = nullptr;               // [OH, OW]
};

// Scratch floats depthwiseConvPlane needs for this geometry (1-D or 2-D).
int64_t depthwiseScratchFloats(const ConvGeometry& g);
void depthwiseConvPlane(const ConvGeometry& g, const DepthwisePlane& plane, const ActivationSpec& act, float* scratch);

// Internal: the row loop over a padded plane (pw floats per row), implemented portably and in
// conv_depthwise_avx2.cc.
struct DepthwiseRows {
  const float* padded;
  int64_t pw;
  const float* w;
  float bias;
  float* y;
  int64_t OH, OW, KH, KW, sh, sw, dh, dw;
};
void depthwiseRowsAvx2(const DepthwiseRows& r);  // strides 1 and 2 only; defined when AVX2 is built

}  // namespace kiln::cpu
