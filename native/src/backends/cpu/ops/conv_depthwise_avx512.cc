// AVX-512 depthwise 3x3 convolution, stride 1 or 2, dilation 1, any padding (MobileNet and
// EfficientNet's depthwise layers), straight on NCHW planes: no interleaving transposes. Per
// channel the plane is copied once into a zero-padded scratch plane (rows padded with a zero tail,
// so every 16-wide load is in bounds); then tiles of up to 4 output rows x 16 columns accumulate
// the 9 taps in registers (two accumulators per row for FMA latency), reusing each loaded input row
// for every output row it feeds. Stride 2 splits 32 consecutive inputs into even/odd lanes with
// one permute each. Bias, residual and activation are applied in registers before the (masked)
// store. Compiled for AVX-512 with a target pragma; called only after a runtime CPU check.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "backends/cpu/ops/conv_depthwise.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512vl,avx2,fma,f16c")

#include "backends/cpu/gemm/vmath_avx512.h"

namespace kiln::cpu {
namespace {

using avx512::activate512;
using avx512::tailMask16;

// The padded plane's row pitch: the padded width plus room for the widest over-read (stride 2
// reads up to 32 floats past a tile's first input column), rounded to whole vectors.
int64_t paddedPitch(const Depthwise2d& d) { return (d.pw + 48 + 15) / 16 * 16; }

// The 3 taps' inputs for 16 outputs starting at padded column q of `row`: v[kx][i] = row[q + S*i + kx].
template <int S>
inline void loadTaps(const float* row, __m512 v[3]) {
  if (S == 1) {
    v[0] = _mm512_loadu_ps(row);
    v[1] = _mm512_loadu_ps(row + 1);
    v[2] = _mm512_loadu_ps(row + 2);
  } else {
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    const __m512 a = _mm512_loadu_ps(row), b = _mm512_loadu_ps(row + 16);
    v[0] = _mm512_permutex2var_ps(a, even, b);
    v[1] = _mm512_permutex2var_ps(a, odd, b);
    const __m512 c = _mm512_loadu_ps(row + 2), e = _mm512_loadu_ps(row + 18);
    v[2] = _mm512_permutex2var_ps(c, even, e);
  }
}

// R output rows (oy0..oy0+R) x 16 columns from ox0 (the first n valid).
template <int S, int R>
inline void tile(const float* padded, int64_t pitch, const __m512 w[9], __m512 bias, int64_t oy0, int64_t ox0, int64_t n,
                 const float* residual, float* y, int64_t OW, const ActivationSpec& act) {
  __m512 acc0[R], acc1[R];
#pragma GCC unroll 4
  for (int r = 0; r < R; r++) {
    acc0[r] = bias;
    acc1[r] = _mm512_setzero_ps();
  }
  const float* base = padded + oy0 * S * pitch + ox0 * S;
#pragma GCC unroll 12
  for (int ir = 0; ir < (R - 1) * S + 3; ir++) {
    __m512 v[3];
    loadTaps<S>(base + ir * pitch, v);
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
      const int ky = ir - r * S;
      if (ky < 0 || ky > 2) continue;
      if (ky == 1) {
        acc1[r] = _mm512_fmadd_ps(v[0], w[3], acc1[r]);
        acc1[r] = _mm512_fmadd_ps(v[1], w[4], acc1[r]);
        acc1[r] = _mm512_fmadd_ps(v[2], w[5], acc1[r]);
      } else {
        acc0[r] = _mm512_fmadd_ps(v[0], w[ky * 3], acc0[r]);
        acc0[r] = _mm512_fmadd_ps(v[1], w[ky * 3 + 1], acc0[r]);
        acc0[r] = _mm512_fmadd_ps(v[2], w[ky * 3 + 2], acc0[r]);
      }
    }
  }
  const __mmask16 m = tailMask16(n);
#pragma GCC unroll 4
  for (int r = 0; r < R; r++) {
    __m512 out = _mm512_add_ps(acc0[r], acc1[r]);
    const int64_t at = (oy0 + r) * OW + ox0;
    if (residual) out = _mm512_add_ps(out, _mm512_maskz_loadu_ps(m, residual + at));
    out = activate512(out, act);
    _mm512_mask_storeu_ps(y + at, m, out);
  }
}

template <int S>
void plane(const Depthwise2d& d, const float* padded, int64_t pitch, const float* wts, float bias, const float* residual,
           float* y, const ActivationSpec& act) {
  __m512 w[9];
  for (int t = 0; t < 9; t++) w[t] = _mm512_set1_ps(wts[t]);
  const __m512 b = _mm512_set1_ps(bias);
  for (int64_t ox0 = 0; ox0 < d.OW; ox0 += 16) {
    const int64_t n = std::min<int64_t>(16, d.OW - ox0);
    int64_t oy = 0;
    for (; oy + 4 <= d.OH; oy += 4) tile<S, 4>(padded, pitch, w, b, oy, ox0, n, residual, y, d.OW, act);
    switch (d.OH - oy) {
      case 3: tile<S, 3>(padded, pitch, w, b, oy, ox0, n, residual, y, d.OW, act); break;
      case 2: tile<S, 2>(padded, pitch, w, b, oy, ox0, n, residual, y, d.OW, act); break;
      case 1: tile<S, 1>(padded, pitch, w, b, oy, ox0, n, residual, y, d.OW, act); break;
      default: break;
    }
  }
}

}  // namespace

bool depthwise3x3Avx512Applies(const Depthwise2d& d) {
  return d.KH == 3 && d.KW == 3 && d.dh == 1 && d.dw == 1 && d.sh == d.sw && (d.sh == 1 || d.sh == 2) && d.OH > 0 &&
         d.OW > 0;
}

int64_t depthwise3x3Avx512ScratchFloats(const Depthwise2d& d) { return d.ph * paddedPitch(d) + 16; }

void depthwise3x3Avx512(const Depthwise2d& d, const DepthwiseBlock& b, const ActivationSpec& act, float* scratch) {
  const int64_t pitch = paddedPitch(d);
  const int64_t inPixels = d.H * d.W, outPixels = d.OH * d.OW;
  // Input columns [c0 - pl, c1 - pl) land at padded columns [c0, c1); rows likewise.
  const int64_t c0 = std::clamp<int64_t>(d.pl, 0, d.pw), c1 = std::clamp<int64_t>(d.pl + d.W, c0, d.pw);
  for (int c = 0; c < b.channels; c++) {
    const float* x = b.x + c * inPixels;
    // The padded copy, 16 columns per masked load (masked-off lanes never fault, so the load may
    // start before the row): inline vector code, not three libc calls per row of a small plane.
    for (int64_t r = 0; r < d.ph; r++) {
      float* row = scratch + r * pitch;
      const int64_t iy = r - d.pt;
      if (iy < 0 || iy >= d.H || c1 <= c0) {
        for (int64_t q = 0; q < pitch; q += 16) _mm512_storeu_ps(row + q, _mm512_setzero_ps());
        continue;
      }
      const float* src = x + iy * d.W - d.pl;  // padded column q holds src[q]
      for (int64_t q = 0; q < pitch; q += 16) {
        const int64_t lo = std::clamp<int64_t>(c0 - q, 0, 16), hi = std::clamp<int64_t>(c1 - q, 0, 16);
        const __mmask16 m = __mmask16(tailMask16(hi) & ~tailMask16(lo));
        _mm512_storeu_ps(row + q, m ? _mm512_maskz_loadu_ps(m, src + q) : _mm512_setzero_ps());
      }
    }
    const float* residual = b.residual ? b.residual + c * outPixels : nullptr;
    const float bias = b.bias ? b.bias[c] : 0.f;
    if (d.sh == 1) plane<1>(d, scratch, pitch, b.w + c * 9, bias, residual, b.y + c * outPixels, act);
    else plane<2>(d, scratch, pitch, b.w + c * 9, bias, residual, b.y + c * outPixels, act);
  }
}

}  // namespace kiln::cpu

#pragma GCC pop_options
#pragma GCC diagnostic pop

#else

#include "core/error.h"

namespace kiln::cpu {
bool depthwise3x3Avx512Applies(const Depthwise2d&) { return false; }
int64_t depthwise3x3Avx512ScratchFloats(const Depthwise2d&) { return 0; }
void depthwise3x3Avx512(const Depthwise2d&, const DepthwiseBlock&, const ActivationSpec&, float*) {
  kiln::fail(ErrorCode::Internal, "depthwise3x3Avx512 called without AVX-512");
}
}  // namespace kiln::cpu

#endif
