// INT8 device kernels (int8.cu) used by the INT8 layers (int8_kernels.cc). Symmetric quantization:
// q = clamp(round(x / scale), -127, 127), x = q * scale. Activations are NHWC.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"

namespace kiln {
struct Node;
}

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
  // A 1x1 shortcut convolution fused into this one (a ResNet downsample, int8_lowering.cc): its
  // input [n, h2, w2, c2] read at stride2 over the same output grid, its W after this layer's
  // R*S*C bytes of each row (kPad = R*S*C + c2). c2 = 0: none.
  int64_t h2 = 0, w2 = 0, c2 = 0;
  int stride2 = 1;
};
void launchIm2ColInt8(const int8_t* x, int8_t* out, const Im2ColGeometry& g, cudaStream_t stream);
// The geometry of a 2-D window op (Conv, MaxPool: pads, strides, dilations, auto_pad) from NHWC
// input and output shapes; kPad is left 0.
Im2ColGeometry nhwcWindowGeometry(const Node& node, const Shape& x, const Shape& y, const std::vector<int64_t>& kernel);

// y[m, k] = q(act(acc[m, k] * alpha[k] + bias[k] + beta * z[m, k])) with ReLU when relu; z may be null.
void launchRequantize(const int32_t* acc, const float* alpha, const float* bias, const int8_t* z, float beta,
                      bool relu, int8_t* y, int64_t m, int64_t k, cudaStream_t stream);

// The shortcut-fused convolution (g.c2 > 0) one thread per output, where no TMA convolution tile
// takes the layer: acc = rint(conv(x, w[:, :R*S*C]) * ratio[k]) + conv1x1(x2 at stride2, w[:, R*S*C:]),
// y = q(act(acc * alpha[k] + bias[k])), as the fused tiles compute it.
void launchInt8ShortcutConvReference(const int8_t* x, const int8_t* w, const float* alpha, const float* bias, bool relu,
                                     const int8_t* x2, const float* ratio, int8_t* y, const Im2ColGeometry& g,
                                     int64_t kOut, cudaStream_t stream);

// acc[m, n] = sum_k a[m, k] * w[n, k] (kPad % 4 == 0) with dp4a: the fallback where cuBLASLt
// offers no INT8 algorithm for a shape.
void launchInt8GemmDp4a(const int8_t* a, const int8_t* w, int32_t* acc, int64_t m, int64_t n, int64_t kPad,
                        cudaStream_t stream);

// 2-D max pooling on [N,H,W,C] int8 (the scale is unchanged: max commutes with quantization).
void launchMaxPoolInt8(const int8_t* x, int8_t* y, const Im2ColGeometry& g, cudaStream_t stream);
// 2-D max pooling on [N,H,W,C] float16 in 16-byte vectors; false (nothing launched) unless C % 8 == 0,
// both tensors are 16-byte aligned and the indices fit 32 bits.
bool launchMaxPoolHalf8(const void* x, void* y, const Im2ColGeometry& g, cudaStream_t stream);

}  // namespace kiln::cuda
