// AVX2 row primitives of the fused attention kernel (see attention_kernels.h).
#include "backends/cpu/ops/attention_kernels.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#include <limits>

#include "backends/cpu/gemm/vmath_avx2.h"

namespace kiln::cpu {
namespace {

using namespace avx2;

float rowMaxAvx2(const float* x, int64_t n) {
  const __m256 ninf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  __m256 m0 = ninf, m1 = ninf;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + i));
    m1 = _mm256_max_ps(m1, _mm256_loadu_ps(x + i + 8));
  }
  for (; i + 8 <= n; i += 8) m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + i));
  if (i < n) {
    const __m256i mask = tailMask256(n - i);
    m1 = _mm256_max_ps(m1, _mm256_blendv_ps(ninf, _mm256_maskload_ps(x + i, mask), _mm256_castsi256_ps(mask)));
  }
  return hmax256(_mm256_max_ps(m0, m1));
}

float expShiftSumAvx2(float* x, int64_t n, float shift) {
  const __m256 s = _mm256_set1_ps(shift);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256 e0 = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), s));
    __m256 e1 = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), s));
    _mm256_storeu_ps(x + i, e0);
    _mm256_storeu_ps(x + i + 8, e1);
    acc0 = _mm256_add_ps(acc0, e0);
    acc1 = _mm256_add_ps(acc1, e1);
  }
  for (; i + 8 <= n; i += 8) {
    __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), s));
    _mm256_storeu_ps(x + i, e);
    acc0 = _mm256_add_ps(acc0, e);
  }
  if (i < n) {
    const __m256i mask = tailMask256(n - i);
    __m256 e = _mm256_and_ps(exp256(_mm256_sub_ps(_mm256_maskload_ps(x + i, mask), s)), _mm256_castsi256_ps(mask));
    _mm256_maskstore_ps(x + i, mask, e);
    acc1 = _mm256_add_ps(acc1, e);
  }
  return hsum256(_mm256_add_ps(acc0, acc1));
}

void scaleAvx2(float* y, int64_t n, float a) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), va));
  for (; i < n; i++) y[i] *= a;
}

const AttentionRowKernels kAvx2 = {rowMaxAvx2, expShiftSumAvx2, scaleAvx2};

}  // namespace

const AttentionRowKernels* avx2AttentionRowKernelsOrNull() { return &kAvx2; }

}  // namespace kiln::cpu

#else

namespace kiln::cpu {
const AttentionRowKernels* avx2AttentionRowKernelsOrNull() { return nullptr; }
}  // namespace kiln::cpu

#endif
