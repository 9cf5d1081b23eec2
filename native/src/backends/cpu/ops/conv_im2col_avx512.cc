// AVX-512 im2col for 1-D/2-D geometry with horizontal stride 1 or 2 (conv_im2col.h): each
// output-row segment is filled 16 pixels at a time with masked loads whose masks are the input
// row's bounds, so the zero padding comes from the masked-off lanes (which never fault) and there
// is no per-segment memcpy/memset call (ResNet's 7x7 and 14x14 layers have thousands of segments
// of 7..14 floats). Stride 2 loads 32 consecutive inputs and keeps the even lanes (one permute).
#include <algorithm>
#include <cstdint>

#include "backends/cpu/ops/conv_im2col.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512vl,avx2,fma,f16c")

#include "backends/cpu/gemm/vmath_avx512.h"

namespace kiln::cpu {
namespace {

using avx512::tailMask16;

// Lanes j of [0, 16) with lo <= j < hi.
inline __mmask16 rangeMask(int64_t lo, int64_t hi) {
  lo = std::clamp<int64_t>(lo, 0, 16);
  hi = std::clamp<int64_t>(hi, 0, 16);
  return hi <= lo ? __mmask16(0) : __mmask16(tailMask16(hi) & ~tailMask16(lo));
}

}  // namespace

bool im2colAvx512Applies(const ConvGeometry& g) {
  if (g.rank != 1 && g.rank != 2) return false;
  const int64_t sw = g.rank == 1 ? g.strides[0] : g.strides[1];
  return sw == 1 || sw == 2;
}

void im2colRowMajor2dAvx512(const float* x, int64_t channels, const ConvGeometry& g, int64_t p0, int64_t p1, float* dst,
                            int64_t ld) {
  const bool oneD = g.rank == 1;
  const int64_t H = oneD ? 1 : g.in[0], W = oneD ? g.in[0] : g.in[1];
  const int64_t OW = oneD ? g.out[0] : g.out[1];
  const int64_t KH = oneD ? 1 : g.kernel[0], KW = oneD ? g.kernel[0] : g.kernel[1];
  const int64_t sh = oneD ? 1 : g.strides[0], sw = oneD ? g.strides[0] : g.strides[1];
  const int64_t dh = oneD ? 1 : g.dilations[0], dw = oneD ? g.dilations[0] : g.dilations[1];
  const int64_t pt = oneD ? 0 : g.padBegin[0], pl = oneD ? g.padBegin[0] : g.padBegin[1];
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t c = 0; c < channels; c++) {
    const float* plane = x + c * H * W;
    for (int64_t ky = 0; ky < KH; ky++) {
      for (int64_t kx = 0; kx < KW; kx++) {
        float* out = dst + ((c * KH + ky) * KW + kx) * ld;
        const int64_t xOffset = kx * dw - pl;
        for (int64_t p = p0; p < p1;) {
          const int64_t oy = p / OW, ox0 = p % OW, ox1 = std::min(OW, ox0 + (p1 - p));
          float* o = out + (p - p0);
          const int64_t iy = oy * sh - pt + ky * dh;
          if (iy < 0 || iy >= H) {
            for (int64_t ox = ox0; ox < ox1; ox += 16) _mm512_mask_storeu_ps(o + (ox - ox0), tailMask16(ox1 - ox), zero);
          } else {
            const float* src = plane + iy * W;
            for (int64_t ox = ox0; ox < ox1; ox += 16) {
              const int64_t base = ox * sw + xOffset;  // input column of this vector's lane 0
              __m512 v;
              if (sw == 1) {
                v = _mm512_maskz_loadu_ps(rangeMask(-base, W - base), src + base);
              } else {
                const __m512 a = _mm512_maskz_loadu_ps(rangeMask(-base, W - base), src + base);
                const __m512 b = _mm512_maskz_loadu_ps(rangeMask(-base - 16, W - base - 16), src + base + 16);
                v = _mm512_permutex2var_ps(a, even, b);
              }
              _mm512_mask_storeu_ps(o + (ox - ox0), tailMask16(ox1 - ox), v);
            }
          }
          p += ox1 - ox0;
        }
      }
    }
  }
}

}  // namespace kiln::cpu

#pragma GCC pop_options
#pragma GCC diagnostic pop

#else

#include "core/error.h"

namespace kiln::cpu {
bool im2colAvx512Applies(const ConvGeometry&) { return false; }
void im2colRowMajor2dAvx512(const float*, int64_t, const ConvGeometry&, int64_t, int64_t, float*, int64_t) {
  kiln::fail(ErrorCode::Internal, "im2colRowMajor2dAvx512 called without AVX-512");
}
}  // namespace kiln::cpu

#endif
