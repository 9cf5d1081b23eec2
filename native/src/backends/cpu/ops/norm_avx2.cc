// AVX2 row primitives of the normalization kernels (see norm_kernels.h). Sums run in four float
// vector accumulators per pass, combined pairwise at the end, which keeps the rounding error of a
// 768-wide LayerNorm row around 1e-7 relative.
#include "backends/cpu/ops/norm_kernels.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#include <cmath>

#include "backends/cpu/gemm/vmath_avx2.h"

namespace kiln::cpu {
namespace {

using namespace avx2;

void momentsAvx2(const float* x, int64_t n, float eps, float* mean, float* invStd) {
  if (n <= 0) {
    *mean = 0.f;
    *invStd = 1.f / std::sqrt(eps);
    return;
  }
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x + i));
    s1 = _mm256_add_ps(s1, _mm256_loadu_ps(x + i + 8));
    s2 = _mm256_add_ps(s2, _mm256_loadu_ps(x + i + 16));
    s3 = _mm256_add_ps(s3, _mm256_loadu_ps(x + i + 24));
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x + i));
  if (i < n) s1 = _mm256_add_ps(s1, _mm256_maskload_ps(x + i, tailMask256(n - i)));
  const float m = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3))) / float(n);
  const __m256 vm = _mm256_set1_ps(m);
  s0 = s1 = s2 = s3 = _mm256_setzero_ps();
  i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + i), vm), d1 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vm);
    __m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 16), vm), d3 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 24), vm);
    s0 = _mm256_fmadd_ps(d0, d0, s0);
    s1 = _mm256_fmadd_ps(d1, d1, s1);
    s2 = _mm256_fmadd_ps(d2, d2, s2);
    s3 = _mm256_fmadd_ps(d3, d3, s3);
  }
  for (; i + 8 <= n; i += 8) {
    __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), vm);
    s0 = _mm256_fmadd_ps(d, d, s0);
  }
  if (i < n) {
    const __m256i mask = tailMask256(n - i);
    // Masked-off lanes load 0; subtracting the mean there must not count, so mask the difference.
    __m256 d = _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, mask), vm), _mm256_castsi256_ps(mask));
    s1 = _mm256_fmadd_ps(d, d, s1);
  }
  const float var = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3))) / float(n);
  *mean = m;
  *invStd = 1.f / std::sqrt(var + eps);
}

void normalizeAvx2(const float* x, float* y, int64_t n, float mean, float invStd, const float* scale, const float* bias) {
  const __m256 vm = _mm256_set1_ps(mean), vs = _mm256_set1_ps(invStd);
  auto one = [&](__m256 v, int64_t i, __m256i mask, bool masked) {
    v = _mm256_mul_ps(_mm256_sub_ps(v, vm), vs);
    if (scale) v = _mm256_mul_ps(v, masked ? _mm256_maskload_ps(scale + i, mask) : _mm256_loadu_ps(scale + i));
    if (bias) v = _mm256_add_ps(v, masked ? _mm256_maskload_ps(bias + i, mask) : _mm256_loadu_ps(bias + i));
    return v;
  };
  const __m256i all = _mm256_set1_epi32(-1);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, one(_mm256_loadu_ps(x + i), i, all, false));
  if (i < n) {
    const __m256i mask = tailMask256(n - i);
    _mm256_maskstore_ps(y + i, mask, one(_mm256_maskload_ps(x + i, mask), i, mask, true));
  }
}

void affineAvx2(const float* x, float* y, int64_t n, float a, float b) {
  const __m256 va = _mm256_set1_ps(a), vb = _mm256_set1_ps(b);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(_mm256_loadu_ps(x + i), va, vb));
  if (i < n) {
    const __m256i mask = tailMask256(n - i);
    _mm256_maskstore_ps(y + i, mask, _mm256_fmadd_ps(_mm256_maskload_ps(x + i, mask), va, vb));
  }
}

const NormRowKernels kAvx2 = {momentsAvx2, normalizeAvx2, affineAvx2};

}  // namespace

const NormRowKernels* avx2NormRowKernelsOrNull() { return &kAvx2; }

}  // namespace kiln::cpu

#else

namespace kiln::cpu {
const NormRowKernels* avx2NormRowKernelsOrNull() { return nullptr; }
}  // namespace kiln::cpu

#endif
