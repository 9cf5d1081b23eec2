// AVX2 depthwise convolution of one block of up to 8 channels (see conv_depthwise.h): the planes
// are interleaved into a zero-padded [row][col][8] buffer with 8x8 transposes, each output pixel
// is then a chain of vertical FMAs over the taps (four pixels at a time for ILP), and the
// interleaved result is transposed back into the output planes.
#include "backends/cpu/ops/conv_depthwise.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#include <algorithm>

#include "backends/cpu/gemm/vmath_avx2.h"

namespace kiln::cpu {
namespace {

// r[i] holds 8 consecutive values of row i; afterwards r[j] holds element j of every row.
inline void transpose8(__m256 r[8]) {
  __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

}  // namespace

void depthwiseBlockAvx2(const Depthwise2d& d, const DepthwiseBlock& b, float* scratch) {
  constexpr int B = kDepthwiseBlock;
  const int64_t inPixels = d.H * d.W, outPixels = d.OH * d.OW, taps = d.KH * d.KW;
  float* padded = scratch;                   // [ph][pw][8]
  float* out = padded + d.ph * d.pw * B;     // [OH*OW][8]
  float* weights = out + outPixels * B;      // [taps][8]
  const int nc = b.channels;

  // Weights and bias interleaved; missing channels get zeros (their outputs are never stored).
  for (int64_t t = 0; t < taps; t++)
    for (int c = 0; c < B; c++) weights[t * B + c] = c < nc ? b.w[c * taps + t] : 0.f;
  alignas(32) float biasLanes[B] = {};
  for (int c = 0; c < nc; c++) biasLanes[c] = b.bias ? b.bias[c] : 0.f;
  const __m256 bias = _mm256_load_ps(biasLanes);

  // Interleave the input into the padded buffer: padded (r, q) holds input (r - pt, q - pl).
  const __m256 zero = _mm256_setzero_ps();
  for (int64_t r = 0; r < d.ph; r++) {
    float* row = padded + r * d.pw * B;
    const int64_t iy = r - d.pt;
    const int64_t q0 = std::clamp<int64_t>(d.pl, 0, d.pw), q1 = std::clamp<int64_t>(d.pl + d.W, q0, d.pw);
    if (iy < 0 || iy >= d.H) {
      for (int64_t q = 0; q < d.pw; q++) _mm256_storeu_ps(row + q * B, zero);
      continue;
    }
    for (int64_t q = 0; q < q0; q++) _mm256_storeu_ps(row + q * B, zero);
    for (int64_t q = q1; q < d.pw; q++) _mm256_storeu_ps(row + q * B, zero);
    // Input columns [q0 - pl, q1 - pl) of row iy, 8 at a time.
    for (int64_t q = q0; q < q1; q += 8) {
      const int64_t n = std::min<int64_t>(8, q1 - q);
      const __m256i mask = avx2::tailMask256(n);
      __m256 v[8];
      for (int c = 0; c < B; c++) {
        v[c] = c < nc ? _mm256_maskload_ps(b.x + c * inPixels + iy * d.W + (q - d.pl), mask) : zero;
      }
      transpose8(v);
      for (int64_t j = 0; j < n; j++) _mm256_storeu_ps(row + (q + j) * B, v[j]);
    }
  }

  // Taps: out(oy, ox) = bias + sum padded(oy*sh + ky*dh, ox*sw + kx*dw) * w(ky, kx).
  const int64_t colStep = d.sw * B;
  for (int64_t oy = 0; oy < d.OH; oy++) {
    float* orow = out + oy * d.OW * B;
    int64_t ox = 0;
    for (; ox + 4 <= d.OW; ox += 4) {
      __m256 a0 = bias, a1 = bias, a2 = bias, a3 = bias;
      for (int64_t ky = 0; ky < d.KH; ky++) {
        const float* src = padded + ((oy * d.sh + ky * d.dh) * d.pw + ox * d.sw) * B;
        const float* wk = weights + ky * d.KW * B;
        for (int64_t kx = 0; kx < d.KW; kx++) {
          const __m256 w = _mm256_loadu_ps(wk + kx * B);
          const float* s = src + kx * d.dw * B;
          a0 = _mm256_fmadd_ps(_mm256_loadu_ps(s), w, a0);
          a1 = _mm256_fmadd_ps(_mm256_loadu_ps(s + colStep), w, a1);
          a2 = _mm256_fmadd_ps(_mm256_loadu_ps(s + 2 * colStep), w, a2);
          a3 = _mm256_fmadd_ps(_mm256_loadu_ps(s + 3 * colStep), w, a3);
        }
      }
      _mm256_storeu_ps(orow + ox * B, a0);
      _mm256_storeu_ps(orow + (ox + 1) * B, a1);
      _mm256_storeu_ps(orow + (ox + 2) * B, a2);
      _mm256_storeu_ps(orow + (ox + 3) * B, a3);
    }
    for (; ox < d.OW; ox++) {
      __m256 a = bias;
      for (int64_t ky = 0; ky < d.KH; ky++) {
        const float* src = padded + ((oy * d.sh + ky * d.dh) * d.pw + ox * d.sw) * B;
        for (int64_t kx = 0; kx < d.KW; kx++) {
          a = _mm256_fmadd_ps(_mm256_loadu_ps(src + kx * d.dw * B), _mm256_loadu_ps(weights + (ky * d.KW + kx) * B), a);
        }
      }
      _mm256_storeu_ps(orow + ox * B, a);
    }
  }

  // De-interleave 8 pixels at a time into the output planes.
  for (int64_t p = 0; p < outPixels; p += 8) {
    const int64_t n = std::min<int64_t>(8, outPixels - p);
    __m256 v[8];
    for (int64_t j = 0; j < 8; j++) v[j] = j < n ? _mm256_loadu_ps(out + (p + j) * B) : zero;
    transpose8(v);
    if (n == 8) {
      for (int c = 0; c < nc; c++) _mm256_storeu_ps(b.y + c * outPixels + p, v[c]);
    } else {
      const __m256i mask = avx2::tailMask256(n);
      for (int c = 0; c < nc; c++) _mm256_maskstore_ps(b.y + c * outPixels + p, mask, v[c]);
    }
  }
}

}  // namespace kiln::cpu

#else

#include "core/error.h"

namespace kiln::cpu {
void depthwiseBlockAvx2(const Depthwise2d&, const DepthwiseBlock&, float*) {
  kiln::fail(ErrorCode::Internal, "depthwiseBlockAvx2 called without AVX2");
}
}  // namespace kiln::cpu

#endif
