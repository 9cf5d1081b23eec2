// AVX2 row loop of the depthwise convolution (conv_depthwise.cc): 32 outputs per step in four
// accumulators, one broadcast weight per tap; stride 2 de-interleaves two loads into the even lanes.
#include "backends/cpu/ops/conv_depthwise.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#include "backends/cpu/gemm/vmath_avx2.h"

namespace kiln::cpu {
namespace {

// Lanes 0, 2, 4, ... 14 of the 16 floats at p.
inline __m256 loadEven(const float* p) {
  __m256 a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 8);
  __m256 even = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));  // a0 a2 b0 b2 | a4 a6 b4 b6
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(even), _MM_SHUFFLE(3, 1, 2, 0)));
}

template <int S>
inline __m256 loadStrided(const float* p) {
  if constexpr (S == 1) return _mm256_loadu_ps(p);
  else return loadEven(p);
}

template <int S>
void rows(const DepthwiseRows& r) {
  const __m256 bias = _mm256_set1_ps(r.bias);
  for (int64_t oy = 0; oy < r.OH; oy++) {
    float* yr = r.y + oy * r.OW;
    const float* top = r.padded + oy * r.sh * r.pw;
    int64_t ox = 0;
    for (; ox + 32 <= r.OW; ox += 32) {
      __m256 a0 = bias, a1 = bias, a2 = bias, a3 = bias;
      for (int64_t ky = 0; ky < r.KH; ky++) {
        const float* row = top + ky * r.dh * r.pw + ox * S;
        for (int64_t kx = 0; kx < r.KW; kx++) {
          const __m256 wv = _mm256_broadcast_ss(r.w + ky * r.KW + kx);
          const float* src = row + kx * r.dw;
          a0 = _mm256_fmadd_ps(wv, loadStrided<S>(src), a0);
          a1 = _mm256_fmadd_ps(wv, loadStrided<S>(src + 8 * S), a1);
          a2 = _mm256_fmadd_ps(wv, loadStrided<S>(src + 16 * S), a2);
          a3 = _mm256_fmadd_ps(wv, loadStrided<S>(src + 24 * S), a3);
        }
      }
      _mm256_storeu_ps(yr + ox, a0);
      _mm256_storeu_ps(yr + ox + 8, a1);
      _mm256_storeu_ps(yr + ox + 16, a2);
      _mm256_storeu_ps(yr + ox + 24, a3);
    }
    // Remaining outputs 8 at a time; the last group masked. Reads past the row's taps stay inside
    // the padded plane's slack.
    for (; ox < r.OW; ox += 8) {
      __m256 a = bias;
      for (int64_t ky = 0; ky < r.KH; ky++) {
        const float* row = top + ky * r.dh * r.pw + ox * S;
        for (int64_t kx = 0; kx < r.KW; kx++) {
          a = _mm256_fmadd_ps(_mm256_broadcast_ss(r.w + ky * r.KW + kx), loadStrided<S>(row + kx * r.dw), a);
        }
      }
      if (ox + 8 <= r.OW) {
        _mm256_storeu_ps(yr + ox, a);
      } else {
        _mm256_maskstore_ps(yr + ox, avx2::tailMask256(r.OW - ox), a);
      }
    }
  }
}

}  // namespace

void depthwiseRowsAvx2(const DepthwiseRows& r) {
  if (r.sw == 1) rows<1>(r);
  else rows<2>(r);
}

}  // namespace kiln::cpu

#else

#include "core/error.h"

namespace kiln::cpu {
void depthwiseRowsAvx2(const DepthwiseRows&) { fail(ErrorCode::Internal, "depthwiseRowsAvx2 called without AVX2"); }
}  // namespace kiln::cpu

#endif
