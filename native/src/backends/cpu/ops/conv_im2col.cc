#include "backends/cpu/ops/conv_im2col.h"

#include <algorithm>
#include <cstring>

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

void im2colPacked2d(const float* x, int64_t channels, const ConvGeometry& g, int64_t p0, int64_t p1, PackedMatrix& dst,
                    int64_t dstCol) {
  // 1-D convs are 2-D with a single row.
  const bool oneD = g.rank == 1;
  const int64_t H = oneD ? 1 : g.in[0], W = oneD ? g.in[0] : g.in[1];
  const int64_t OW = oneD ? g.out[0] : g.out[1];
  const int64_t KH = oneD ? 1 : g.kernel[0], KW = oneD ? g.kernel[0] : g.kernel[1];
  const int64_t sh = oneD ? 1 : g.strides[0], sw = oneD ? g.strides[0] : g.strides[1];
  const int64_t dh = oneD ? 1 : g.dilations[0], dw = oneD ? g.dilations[0] : g.dilations[1];
  const int64_t pt = oneD ? 0 : g.padBegin[0], pl = oneD ? g.padBegin[0] : g.padBegin[1];
  // Destination columns [c0, cEnd): the pixels, plus the zero padding when the range ends the matrix.
  const int64_t c0 = dstCol, c1 = dstCol + (p1 - p0);
  const int64_t cEnd = c1 == dst.width() ? (c1 + kGemmNR - 1) / kGemmNR * kGemmNR : c1;
  float* base = dst.mutableData();
  for (int64_t c = 0; c < channels; c++) {
    const float* plane = x + c * H * W;
    for (int64_t ky = 0; ky < KH; ky++) {
      for (int64_t kx = 0; kx < KW; kx++) {
        const int64_t k = (c * KH + ky) * KW + kx;
        const int64_t xOffset = kx * dw - pl;
        int64_t oxLo, oxHi;
        validRange(W, OW, sw, xOffset, oxLo, oxHi);
        // Walk the columns one packed-panel row (<= NR contiguous floats) at a time, split further
        // where the output row changes.
        int64_t n = c0;
        while (n < cEnd) {
          float* out = base + dst.offset(k, n);
          const int64_t panelEnd = std::min(cEnd, (n / kGemmNR + 1) * kGemmNR);
          if (n >= c1) {  // zero padding of the last panel
            std::memset(out, 0, sizeof(float) * size_t(panelEnd - n));
            n = panelEnd;
            continue;
          }
          const int64_t p = p0 + (n - c0);
          const int64_t oy = p / OW, ox = p % OW;
          const int64_t len = std::min({panelEnd - n, OW - ox, c1 - n});
          const int64_t iy = oy * sh - pt + ky * dh;
          if (iy < 0 || iy >= H) {
            std::memset(out, 0, sizeof(float) * size_t(len));
          } else {
            const float* row = plane + iy * W + xOffset;
            for (int64_t i = 0; i < len; i++) {
              const int64_t o = ox + i;
              out[i] = (o >= oxLo && o < oxHi) ? row[o * sw] : 0.f;
            }
          }
          n += len;
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
