#include "backends/cpu/ops/conv_im2col.h"

#include <algorithm>
#include <cstring>

#include "backends/cpu/gemm/kernels.h"

namespace kiln::cpu {
namespace {

// The output-x range [lo, hi) whose input column ox*stride - pad + kx*dil lies inside [0, width).
void validRange(int64_t width, int64_t outWidth, int64_t stride, int64_t offset, int64_t& lo, int64_t& hi) {
  // ix = ox * stride + offset; need 0 <= ix < width.
  lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  hi = width - offset <= 0 ? 0 : (width - offset + stride - 1) / stride;
  lo = std::min(lo, outWidth);
  hi = std::clamp(hi, lo, outWidth);
}

}  // namespace

void im2colRowMajor2d(const float* x, int64_t channels, const ConvGeometry& g, int64_t p0, int64_t p1, float* dst,
                      int64_t ld, bool allowAvx512) {
  if (allowAvx512 && useAvx512Kernels() && im2colAvx512Applies(g)) {
    im2colRowMajor2dAvx512(x, channels, g, p0, p1, dst, ld);
    return;
  }
  const bool oneD = g.rank == 1;
  const int64_t H = oneD ? 1 : g.in[0], W = oneD ? g.in[0] : g.in[1];
  const int64_t OW = oneD ? g.out[0] : g.out[1];
  const int64_t KH = oneD ? 1 : g.kernel[0], KW = oneD ? g.kernel[0] : g.kernel[1];
  const int64_t sh = oneD ? 1 : g.strides[0], sw = oneD ? g.strides[0] : g.strides[1];
  const int64_t dh = oneD ? 1 : g.dilations[0], dw = oneD ? g.dilations[0] : g.dilations[1];
  const int64_t pt = oneD ? 0 : g.padBegin[0], pl = oneD ? g.padBegin[0] : g.padBegin[1];
  for (int64_t c = 0; c < channels; c++) {
    const float* plane = x + c * H * W;
    for (int64_t ky = 0; ky < KH; ky++) {
      for (int64_t kx = 0; kx < KW; kx++) {
        float* out = dst + ((c * KH + ky) * KW + kx) * ld;
        const int64_t xOffset = kx * dw - pl;
        int64_t oxLo, oxHi;
        validRange(W, OW, sw, xOffset, oxLo, oxHi);
        // One output-row segment [ox0, ox1) of [p0, p1) at a time.
        for (int64_t p = p0; p < p1;) {
          const int64_t oy = p / OW, ox0 = p % OW, ox1 = std::min(OW, ox0 + (p1 - p));
          float* o = out + (p - p0);
          const int64_t iy = oy * sh - pt + ky * dh;
          if (iy < 0 || iy >= H) {
            std::memset(o, 0, sizeof(float) * size_t(ox1 - ox0));
          } else {
            const int64_t a = std::clamp(oxLo, ox0, ox1), b = std::clamp(oxHi, a, ox1);
            std::memset(o, 0, sizeof(float) * size_t(a - ox0));
            const float* src = plane + iy * W + xOffset;
            if (sw == 1) {
              std::memcpy(o + (a - ox0), src + a, sizeof(float) * size_t(b - a));
            } else {
              for (int64_t i = a; i < b; i++) o[i - ox0] = src[i * sw];
            }
            std::memset(o + (b - ox0), 0, sizeof(float) * size_t(ox1 - b));
          }
          p += ox1 - ox0;
        }
      }
    }
  }
}

void im2colRowMajor(const float* x, int64_t channels, const ConvGeometry& g, int64_t p0, int64_t p1, float* dst,
                    int64_t ld) {
  const size_t r = g.rank;
  std::vector<int64_t> kidx(r), opos(r);
  for (int64_t c = 0; c < channels; c++) {
    const float* plane = x + c * g.inPixels;
    for (int64_t kk = 0; kk < g.kernelSize; kk++) {
      // Kernel offset kk as a multi-index (row-major over g.kernel).
      int64_t rem = kk;
      for (size_t d = r; d-- > 0;) {
        kidx[d] = rem % g.kernel[d];
        rem /= g.kernel[d];
      }
      float* out = dst + (c * g.kernelSize + kk) * ld;
      // Output pixel p0 as a multi-index, then advanced incrementally.
      rem = p0;
      for (size_t d = r; d-- > 0;) {
        opos[d] = rem % g.out[d];
        rem /= g.out[d];
      }
      for (int64_t p = p0; p < p1; p++) {
        int64_t offset = 0;
        bool inside = true;
        for (size_t d = 0; d < r; d++) {
          const int64_t i = opos[d] * g.strides[d] - g.padBegin[d] + kidx[d] * g.dilations[d];
          if (i < 0 || i >= g.in[d]) {
            inside = false;
            break;
          }
          offset = offset * g.in[d] + i;
        }
        out[p - p0] = inside ? plane[offset] : 0.f;
        for (size_t d = r; d-- > 0;) {
          if (++opos[d] < g.out[d]) break;
          opos[d] = 0;
        }
      }
    }
  }
}

}  // namespace kiln::cpu
