// Space-to-depth for stride-2 convolutions over few channels (an RGB stem), float16 NHWC: the trick
// of NVIDIA's MLPerf ResNet. A 2x2 block of (zero-padded) input pixels becomes one pixel of 16
// channels, [N,H,W,C] -> [N,H',W',16] with
//   x'[n, i, j, (dy*2+dx)*C + c] = xpad[n, 2i+dy, 2j+dx, c]   (dy, dx in {0, 1}; channels 4C..15 zero)
// where xpad is x shifted by (padTop, padLeft), zero outside x. The same map on the weights
// [K,R,S,C] (no padding) gives [K,ceil(R/2),ceil(S/2),16], and then a stride-1, pad-0 convolution of
// x' with those weights is exactly the original stride-2 convolution (conv.cc: H' = OH + ceil(R/2) - 1).
// C <= 4 (4C channels must fit in 16). The INT8 stem (int8_lowering.cc) quantizes while it
// rewrites: int8 x' straight from the fp16 input, one 16-byte pixel per 2x2 block.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace kiln::cuda {

// One transform: src [n, h, w, c] float16 -> dst [n, outH, outW, 16] float16 (dst 16-byte aligned;
// int8 for launchSpaceToDepthInt8).
struct SpaceToDepthJob {
  const void* src = nullptr;
  void* dst = nullptr;
  int64_t n = 0;
  int h = 0, w = 0, c = 0;
  int padTop = 0, padLeft = 0;
  int outH = 0, outW = 0;
  // launchSpaceToDepthInt8 only: dst packs each pixel's row of `taps` transformed pixels,
  // [n, outH, outW, 16 * taps] with dst[n, i, j, 16t + c] = x'[n, i, j + t, c] (x' is outW + taps - 1 wide).
  int taps = 1;
  int64_t pixels() const { return n * outH * outW; }
};

// Runs one or two jobs with the same c (1..4) in one launch: the input and the weights of a convolution.
void launchSpaceToDepth16(const SpaceToDepthJob& a, const SpaceToDepthJob* b, cudaStream_t stream);

// The same transform quantized: dst [n, outH, outW, 16] int8 with q = clamp(round(x * invScale),
// -127, 127), rounding to nearest even as launchQuantize (int8_ops.h) does; the zero padding and the
// channels 4C..15 are exact zeros. kiln.CudaQuantizeSpaceToDepth. float32Nchw: src is float32
// [n, c, h, w] (the model's input), each value rounded to float16 first (the same bytes as casting
// to float16 NHWC and then transforming). job.taps > 1: packed rows of taps (SpaceToDepthJob).
void launchSpaceToDepthInt8(const SpaceToDepthJob& job, float invScale, cudaStream_t stream, bool float32Nchw = false);

}  // namespace kiln::cuda
