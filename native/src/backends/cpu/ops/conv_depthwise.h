// Depthwise 2-D convolution (one filter per channel: MobileNet, EfficientNet), computed directly
// instead of through im2col + GEMM (a 1-row GEMM per channel wastes the micro-kernel). Channels go
// in blocks of 8: the AVX2 path interleaves a block's planes into a zero-padded [pixel][8] buffer,
// so every tap is one vertical FMA for 8 channels at any stride, dilation or plane size, then
// de-interleaves the result (8x8 transposes); the portable path works plane by plane.
#pragma once
#include <cstdint>

#include "backends/cpu/gemm/sgemm.h"
#include "backends/cpu/ops/conv_im2col.h"

namespace kiln::cpu {

constexpr int kDepthwiseBlock = 8;

struct DepthwiseBlock {
  const float* x = nullptr;         // first of `channels` consecutive [H, W] input planes
  const float* w = nullptr;         // first of `channels` consecutive [KH, KW] filters
  const float* bias = nullptr;      // `channels` values, or null
  const float* residual = nullptr;  // first of `channels` consecutive [OH, OW] planes, or null
  float* y = nullptr;               // first of `channels` consecutive [OH, OW] output planes
  int channels = 0;                 // 1..kDepthwiseBlock
};

// Scratch floats depthwiseConvBlock needs for this geometry (1-D or 2-D).
int64_t depthwiseScratchFloats(const ConvGeometry& g);
// allowAvx2 = false forces the portable path, allowAvx512 = false the AVX2 one (tests compare them).
// On AVX-512 CPUs (unless KILN_CPU_NO_AVX512 is set) 3x3 stride 1/2 filters take the direct NCHW
// kernel of conv_depthwise_avx512.cc.
void depthwiseConvBlock(const ConvGeometry& g, const DepthwiseBlock& block, const ActivationSpec& act, float* scratch,
                        bool allowAvx2 = true, bool allowAvx512 = true);

// Internal: the 2-D view of a 1-D or 2-D geometry and the AVX2 implementation.
struct Depthwise2d {
  int64_t H, W, OH, OW, KH, KW, sh, sw, dh, dw, pt, pl;
  int64_t ph, pw;  // the padded input window the outputs read
};
Depthwise2d depthwise2d(const ConvGeometry& g);
void depthwiseBlockAvx2(const Depthwise2d& d, const DepthwiseBlock& block, float* scratch);  // conv_depthwise_avx2.cc
// conv_depthwise_avx512.cc: 3x3, dilation 1, stride 1 or 2 (both axes alike), epilogue included.
bool depthwise3x3Avx512Applies(const Depthwise2d& d);
int64_t depthwise3x3Avx512ScratchFloats(const Depthwise2d& d);
void depthwise3x3Avx512(const Depthwise2d& d, const DepthwiseBlock& block, const ActivationSpec& act, float* scratch);

}  // namespace kiln::cpu
