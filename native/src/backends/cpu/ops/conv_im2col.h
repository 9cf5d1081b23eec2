// im2col for the GEMM-based convolutions: the matrix whose row (c, kernel offset) and column
// (output pixel) hold the input value that kernel tap multiplies for that pixel (0 in padding).
#pragma once
#include <cstdint>
#include <vector>

#include "backends/cpu/gemm/sgemm.h"

namespace kiln::cpu {

// Geometry of one convolution over `rank` spatial dims (NCHW-style, per image and group).
struct ConvGeometry {
  size_t rank = 0;
  std::vector<int64_t> in, out, kernel, strides, dilations, padBegin;
  int64_t inPixels = 1, outPixels = 1, kernelSize = 1;
};

// Rows [0, channels * kernelSize) x output pixels [p0, p1) of x's im2col matrix (x is one image's
// `channels` consecutive planes) into a row-major matrix with leading dimension ld (>= p1 - p0),
// 1-D and 2-D geometry. Whole output-row segments per copy: producing this layout costs a fraction
// of the GEMM, while writing the GEMM's packed panel layout directly (16-float pieces split at
// row ends) cost as much as the GEMM itself; the SGEMM packs B panels from it while they are hot.
// On AVX-512 CPUs (unless KILN_CPU_NO_AVX512 is set) horizontal strides 1 and 2 take the masked-load
// version in conv_im2col_avx512.cc; allowAvx512 = false forces the portable one (tests compare them).
void im2colRowMajor2d(const float* x, int64_t channels, const ConvGeometry& g, int64_t p0, int64_t p1, float* dst,
                      int64_t ld, bool allowAvx512 = true);
bool im2colAvx512Applies(const ConvGeometry& g);
void im2colRowMajor2dAvx512(const float* x, int64_t channels, const ConvGeometry& g, int64_t p0, int64_t p1, float* dst,
                            int64_t ld);

// The same for any rank into a row-major matrix with leading dimension ld (>= p1 - p0).
void im2colRowMajor(const float* x, int64_t channels, const ConvGeometry& g, int64_t p0, int64_t p1, float* dst,
                    int64_t ld);

}  // namespace kiln::cpu
