#include "backends/cpu/ops/conv_depthwise.h"

#include <algorithm>
#include <cstring>

#include "backends/cpu/gemm/kernels.h"

namespace kiln::cpu {
namespace {

// Vector loads may run up to 16 floats past the last tap of a row (stride-2 de-interleaving).
constexpr int64_t kRowSlack = 16;

struct Dims2d {
  int64_t H, W, OH, OW, KH, KW, sh, sw, dh, dw, pt, pl;
};

Dims2d dims2d(const ConvGeometry& g) {
  if (g.rank == 1) {
    return {1, g.in[0], 1, g.out[0], 1, g.kernel[0], 1, g.strides[0], 1, g.dilations[0], 0, g.padBegin[0]};
  }
  return {g.in[0],      g.in[1],      g.out[0],       g.out[1],       g.kernel[0],  g.kernel[1],
          g.strides[0], g.strides[1], g.dilations[0], g.dilations[1], g.padBegin[0], g.padBegin[1]};
}

// The padded plane covers exactly the input window the outputs read.
void paddedSize(const Dims2d& d, int64_t& ph, int64_t& pw) {
  ph = (d.OH - 1) * d.sh + (d.KH - 1) * d.dh + 1;
  pw = (d.OW - 1) * d.sw + (d.KW - 1) * d.dw + 1 + kRowSlack;
}

void depthwiseRowsGeneric(const DepthwiseRows& r) {
  for (int64_t oy = 0; oy < r.OH; oy++) {
    float* yr = r.y + oy * r.OW;
    for (int64_t ox = 0; ox < r.OW; ox++) yr[ox] = r.bias;
    for (int64_t ky = 0; ky < r.KH; ky++) {
      for (int64_t kx = 0; kx < r.KW; kx++) {
        const float wv = r.w[ky * r.KW + kx];
        const float* src = r.padded + (oy * r.sh + ky * r.dh) * r.pw + kx * r.dw;
        if (r.sw == 1) {
          for (int64_t ox = 0; ox < r.OW; ox++) yr[ox] += wv * src[ox];
        } else {
          for (int64_t ox = 0; ox < r.OW; ox++) yr[ox] += wv * src[ox * r.sw];
        }
      }
    }
  }
}

}  // namespace

int64_t depthwiseScratchFloats(const ConvGeometry& g) {
  int64_t ph, pw;
  paddedSize(dims2d(g), ph, pw);
  return ph * pw;
}

void depthwiseConvPlane(const ConvGeometry& g, const DepthwisePlane& plane, const ActivationSpec& act, float* scratch) {
  const Dims2d d = dims2d(g);
  if (d.OH == 0 || d.OW == 0) return;
  int64_t ph, pw;
  paddedSize(d, ph, pw);
  // Padded row r holds input row r - pt; column c holds input column c - pl.
  for (int64_t r = 0; r < ph; r++) {
    float* dst = scratch + r * pw;
    const int64_t iy = r - d.pt;
    if (iy < 0 || iy >= d.H) {
      std::memset(dst, 0, sizeof(float) * size_t(pw));
      continue;
    }
    const int64_t c0 = std::min(pw, std::max<int64_t>(0, d.pl));              // first column with input
    const int64_t c1 = std::min(pw, std::max<int64_t>(c0, d.pl + d.W));        // one past the last
    std::memset(dst, 0, sizeof(float) * size_t(c0));
    std::memcpy(dst + c0, plane.x + iy * d.W + (c0 - d.pl), sizeof(float) * size_t(c1 - c0));
    std::memset(dst + c1, 0, sizeof(float) * size_t(pw - c1));
  }
  DepthwiseRows rows{scratch, pw, plane.w, plane.bias, plane.y, d.OH, d.OW, d.KH, d.KW, d.sh, d.sw, d.dh, d.dw};
  const GemmKernelTable& kt = gemmKernels();
#if defined(__x86_64__) || defined(__i386__)
  if ((d.sw == 1 || d.sw == 2) && avx2GemmKernelsOrNull() && cpuHasAvx2Fma()) {
    depthwiseRowsAvx2(rows);
  } else {
    depthwiseRowsGeneric(rows);
  }
#else
  depthwiseRowsGeneric(rows);
#endif
  if (plane.residual || act.kind != Activation::None) {
    for (int64_t oy = 0; oy < d.OH; oy++) {
      kt.epilogueRow(plane.y + oy * d.OW, d.OW, 0.f, nullptr, plane.residual ? plane.residual + oy * d.OW : nullptr, 1.f,
                     act);
    }
  }
}

}  // namespace kiln::cpu
