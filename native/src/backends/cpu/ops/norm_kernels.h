// Row primitives of the normalization kernels (norm.cc, norm_layer.cc), vectorised with AVX2 in
// norm_avx2.cc and portable in norm_kernels.cc; the dispatch picks one per process.
#pragma once
#include <cstdint>

namespace kiln::cpu {

struct NormRowKernels {
  // Mean and 1/sqrt(variance + eps) of n floats (population variance, two passes for accuracy).
  void (*moments)(const float* x, int64_t n, float eps, float* mean, float* invStd);
  // y = (x - mean) * invStd * scale[i] + bias[i]; scale/bias may be null (1 and 0).
  void (*normalize)(const float* x, float* y, int64_t n, float mean, float invStd, const float* scale, const float* bias);
  // y = x * a + b.
  void (*affine)(const float* x, float* y, int64_t n, float a, float b);
};

const NormRowKernels& normRowKernels();
const NormRowKernels& genericNormRowKernels();
const NormRowKernels* avx2NormRowKernelsOrNull();  // norm_avx2.cc

}  // namespace kiln::cpu
