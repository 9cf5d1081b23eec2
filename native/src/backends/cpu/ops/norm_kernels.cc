#include "backends/cpu/ops/norm_kernels.h"

#include <cmath>

#include "backends/cpu/gemm/kernels.h"

namespace kiln::cpu {
namespace {

void momentsGeneric(const float* x, int64_t n, float eps, float* mean, float* invStd) {
  double sum = 0;
  for (int64_t i = 0; i < n; i++) sum += x[i];
  const double m = n > 0 ? sum / double(n) : 0.0;
  double var = 0;
  for (int64_t i = 0; i < n; i++) var += (x[i] - m) * (x[i] - m);
  var = n > 0 ? var / double(n) : 0.0;
  *mean = float(m);
  *invStd = float(1.0 / std::sqrt(var + double(eps)));
}

void normalizeGeneric(const float* x, float* y, int64_t n, float mean, float invStd, const float* scale,
                      const float* bias) {
  for (int64_t i = 0; i < n; i++) {
    float v = (x[i] - mean) * invStd;
    if (scale) v *= scale[i];
    if (bias) v += bias[i];
    y[i] = v;
  }
}

void affineGeneric(const float* x, float* y, int64_t n, float a, float b) {
  for (int64_t i = 0; i < n; i++) y[i] = x[i] * a + b;
}

const NormRowKernels kGeneric = {momentsGeneric, normalizeGeneric, affineGeneric};

}  // namespace

const NormRowKernels& genericNormRowKernels() { return kGeneric; }

const NormRowKernels& normRowKernels() {
  static const NormRowKernels* k = [] {
    const NormRowKernels* avx2 = avx2NormRowKernelsOrNull();
    return avx2 && cpuHasAvx2Fma() ? avx2 : &kGeneric;
  }();
  return *k;
}

}  // namespace kiln::cpu
