// INT8 device kernels (int8.cu) used by the INT8 layers (int8_kernels.cc). Symmetric quantization:
// q = clamp(round(x / scale), -127, 127), x = q * scale. Activations are NHWC.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "core/dtype.h"

namespace kiln::cuda {

// float16/float32 -> int8 with 1/scale; int8 -> float16/float32 with scale.
void launchQuantize(const void* x, DType type, int8_t* y, int64_t n, float invScale, cudaStream_t stream);
void launchDequantize(const int8_t* x, void* y, DType type, int64_t n, float scale, cudaStream_t stream);

// The convolution's patches as rows: out[m, kk] for m = (n, oh, ow) and kk = (r, s, c) of an
// [N,H,W,C] int8 input, zero outside the image and for kk >= R*S*C up to kPad.
struct Im2ColGeometry {
  int64_t n = 0, h = 0, w = 0, c = 0, oh = 0, ow = 0;
  int r = 1, s = 1, strideH = 1, strideW = 1, padH = 0, padW = 0, dilH = 1, dilW = 1;
  int64_t kPad = 0;
};
void launchIm2ColInt8(const int8_t* x, int8_t* out, const Im2ColGeometry& g, cudaStream_t stream);

// y[m, k] = q(act(acc[m, k] * alpha[k] + bias[k] + beta * z[m, k])) with ReLU when relu; z may be null.
void launchRequantize(const int32_t* acc, const float* alpha, const float* bias, const int8_t* z, float beta,
                      bool relu, int8_t* y, int64_t m, int64_t k, cudaStream_t stream);

// acc[m, n] = sum_k a[m, k] * w[n, k] (kPad % 4 == 0) with dp4a: the fallback where cuBLASLt
// offers no INT8 algorithm for a shape.
void launchInt8GemmDp4a(const int8_t* a, const int8_t* w, int32_t* acc, int64_t m, int64_t n, int64_t kPad,
                        cudaStream_t stream);

// The convolution as an implicit GEMM on the integer tensor cores with the requantizing epilogue
// fused (int8_conv.cu): y = q(act(alpha[k] * conv(x, w)[m, k] + bias[k] + beta * z[m, k])), w as
// [kOut, g.kPad] rows (r, s, c). No workspace. `tile` picks one of kInt8ConvTiles block shapes
// (int8ConvTileName); supported() says whether the geometry fits (sm_80+, C % 16, kOut % 8).
constexpr int kInt8ConvTiles = 4;
const char* int8ConvTileName(int tile);
bool int8ImplicitGemmSupported(const Im2ColGeometry& g, int64_t kOut);
void launchInt8ConvImplicitGemm(int tile, const int8_t* x, const int8_t* w, const float* alpha, const float* bias,
                                const int8_t* z, float beta, bool relu, int8_t* y, const Im2ColGeometry& g,
                                int64_t kOut, cudaStream_t stream);

// 2-D max pooling on [N,H,W,C] int8 (the scale is unchanged: max commutes with quantization).
void launchMaxPoolInt8(const int8_t* x, int8_t* y, const Im2ColGeometry& g, cudaStream_t stream);

}  // namespace kiln::cuda
