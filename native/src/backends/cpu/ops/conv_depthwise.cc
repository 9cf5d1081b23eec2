#include "backends/cpu/ops/conv_depthwise.h"

#include <algorithm>
#include <cstring>

#include "backends/cpu/gemm/kernels.h"

namespace kiln::cpu {
namespace {

bool useAvx2() {
#if defined(__x86_64__) || defined(__i386__)
  return avx2GemmKernelsOrNull() && cpuHasAvx2Fma();
#else
  return false;
#endif
}

// One channel through a zero-padded copy of its plane (portable path).
void planeGeneric(const Depthwise2d& d, const float* x, const float* w, float bias, float* y, float* padded) {
  for (int64_t r = 0; r < d.ph; r++) {
    float* dst = padded + r * d.pw;
    const int64_t iy = r - d.pt;
    std::fill(dst, dst + d.pw, 0.f);
    if (iy < 0 || iy >= d.H) continue;
    const int64_t c0 = std::clamp<int64_t>(d.pl, 0, d.pw), c1 = std::clamp<int64_t>(d.pl + d.W, c0, d.pw);
    std::copy(x + iy * d.W + (c0 - d.pl), x + iy * d.W + (c1 - d.pl), dst + c0);
  }
  for (int64_t oy = 0; oy < d.OH; oy++) {
    float* yr = y + oy * d.OW;
    std::fill(yr, yr + d.OW, bias);
    for (int64_t ky = 0; ky < d.KH; ky++) {
      for (int64_t kx = 0; kx < d.KW; kx++) {
        const float wv = w[ky * d.KW + kx];
        const float* src = padded + (oy * d.sh + ky * d.dh) * d.pw + kx * d.dw;
        for (int64_t ox = 0; ox < d.OW; ox++) yr[ox] += wv * src[ox * d.sw];
      }
    }
  }
}

}  // namespace

Depthwise2d depthwise2d(const ConvGeometry& g) {
  Depthwise2d d;
  if (g.rank == 1) {
    d = {1, g.in[0], 1, g.out[0], 1, g.kernel[0], 1, g.strides[0], 1, g.dilations[0], 0, g.padBegin[0], 0, 0};
  } else {
    d = {g.in[0],      g.in[1],      g.out[0],       g.out[1],       g.kernel[0],   g.kernel[1], g.strides[0],
         g.strides[1], g.dilations[0], g.dilations[1], g.padBegin[0], g.padBegin[1], 0,           0};
  }
  d.ph = d.OH > 0 ? (d.OH - 1) * d.sh + (d.KH - 1) * d.dh + 1 : 0;
  d.pw = d.OW > 0 ? (d.OW - 1) * d.sw + (d.KW - 1) * d.dw + 1 : 0;
  return d;
}

int64_t depthwiseScratchFloats(const ConvGeometry& g) {
  const Depthwise2d d = depthwise2d(g);
  // AVX2: interleaved padded input + interleaved output; portable: one padded plane; AVX-512 3x3:
  // one padded plane with a wider row pitch.
  const int64_t interleaved = (d.ph * d.pw + d.OH * d.OW) * kDepthwiseBlock + kDepthwiseBlock * d.KH * d.KW;
  return depthwise3x3Avx512Applies(d) ? std::max(interleaved, depthwise3x3Avx512ScratchFloats(d)) : interleaved;
}

void depthwiseConvBlock(const ConvGeometry& g, const DepthwiseBlock& b, const ActivationSpec& act, float* scratch,
                        bool allowAvx2, bool allowAvx512) {
  const Depthwise2d d = depthwise2d(g);
  if (d.OH == 0 || d.OW == 0) return;
  if (allowAvx2 && allowAvx512 && useAvx512Kernels() && depthwise3x3Avx512Applies(d)) {
    depthwise3x3Avx512(d, b, act, scratch);
    return;
  }
  const int64_t inPixels = d.H * d.W, outPixels = d.OH * d.OW, taps = d.KH * d.KW;
  if (allowAvx2 && useAvx2()) {
    depthwiseBlockAvx2(d, b, scratch);
  } else {
    for (int c = 0; c < b.channels; c++) {
      planeGeneric(d, b.x + c * inPixels, b.w + c * taps, b.bias ? b.bias[c] : 0.f, b.y + c * outPixels, scratch);
    }
  }
  if (b.residual || act.kind != Activation::None) {
    const GemmKernelTable& kt = gemmKernels();
    for (int c = 0; c < b.channels; c++) {
      kt.epilogueRow(b.y + c * outPixels, outPixels, 0.f, nullptr, b.residual ? b.residual + c * outPixels : nullptr, 1.f,
                     act);
    }
  }
}

}  // namespace kiln::cpu
