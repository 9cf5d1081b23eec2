#include "backends/cpu/ops/attention_kernels.h"

#include <cmath>
#include <limits>

#include "backends/cpu/gemm/kernels.h"

namespace kiln::cpu {
namespace {

float rowMaxGeneric(const float* x, int64_t n) {
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
  return m;
}

float expShiftSumGeneric(float* x, int64_t n, float shift) {
  double sum = 0;
  for (int64_t i = 0; i < n; i++) {
    x[i] = std::exp(x[i] - shift);
    sum += x[i];
  }
  return float(sum);
}

void scaleGeneric(float* y, int64_t n, float a) {
  for (int64_t i = 0; i < n; i++) y[i] *= a;
}

const AttentionRowKernels kGeneric = {rowMaxGeneric, expShiftSumGeneric, scaleGeneric};

}  // namespace

const AttentionRowKernels& attentionRowKernels() {
  static const AttentionRowKernels* k = [] {
    const AttentionRowKernels* avx2 = avx2AttentionRowKernelsOrNull();
    return avx2 && cpuHasAvx2Fma() ? avx2 : &kGeneric;
  }();
  return *k;
}

}  // namespace kiln::cpu
