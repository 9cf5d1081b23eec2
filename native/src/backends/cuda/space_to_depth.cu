// Space-to-depth for stride-2 stems (space_to_depth.h): one thread per output pixel, which gathers
// its 2x2 block of input pixels (4C halves, zero where the block falls outside the input) and
// writes the pixel's 16 channels as two 16-byte stores; a warp writes 1 KiB of contiguous output
// and reads two contiguous runs of input (one per input row of the block). The int8 variant
// quantizes the 16 values and writes the pixel as one 16-byte store (512 contiguous bytes a warp);
// it also reads the model's float32 NCHW input directly.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "backends/cuda/cuda_common.h"
#include "backends/cuda/quantize_device.cuh"
#include "backends/cuda/space_to_depth.h"
#include "core/error.h"

namespace kiln::cuda {
namespace {

template <typename Index>
struct Job {
  const void* __restrict__ src;  // float16 [n, h, w, C], or float32 [n, C, h, w] (gatherBlock's kNchw)
  uint4* __restrict__ dst;       // two vectors per pixel (float16), one (int8)
  int h, w, padTop, padLeft;
  Index outH, outW;
};

// Output pixel q's 16 channels as float16 bits, zero outside the input and in channels 4C..15.
// kNchw: the input is the model's float32 NCHW tensor, each value rounded to float16 as
// kiln.CudaCastToNhwc would (a warp then reads two contiguous runs of 32 floats per channel and row).
template <int C, bool kNchw, typename Index>
__device__ __forceinline__ void gatherBlock(const Job<Index>& job, Index q, unsigned short (&e)[16]) {
  const Index j = q % job.outW;
  const Index t = q / job.outW;
  const int i = static_cast<int>(t % job.outH);
  const int64_t n = static_cast<int64_t>(t / job.outH);
#pragma unroll
  for (int k = 0; k < 16; ++k) e[k] = 0;
#pragma unroll
  for (int dy = 0; dy < 2; ++dy) {
    const int row = 2 * i + dy - job.padTop;
    if (static_cast<unsigned>(row) >= static_cast<unsigned>(job.h)) continue;
#pragma unroll
    for (int dx = 0; dx < 2; ++dx) {
      const int col = 2 * static_cast<int>(j) + dx - job.padLeft;
      if (static_cast<unsigned>(col) >= static_cast<unsigned>(job.w)) continue;
      if constexpr (kNchw) {
        const float* pixel = static_cast<const float*>(job.src) + (n * C * job.h + row) * int64_t(job.w) + col;
#pragma unroll
        for (int c = 0; c < C; ++c)
          e[(dy * 2 + dx) * C + c] = __half_as_ushort(__float2half_rn(__ldg(pixel + int64_t(c) * job.h * job.w)));
      } else {
        const unsigned short* line = static_cast<const unsigned short*>(job.src) + (n * job.h + row) * int64_t(job.w) * C;
#pragma unroll
        for (int c = 0; c < C; ++c) e[(dy * 2 + dx) * C + c] = __ldg(line + int64_t(col) * C + c);
      }
    }
  }
}

template <int C, typename Index>
__device__ __forceinline__ void spaceToDepthPixel(const Job<Index>& job, Index q) {
  unsigned short e[16];
  gatherBlock<C, false>(job, q, e);
  uint32_t word[8];
#pragma unroll
  for (int k = 0; k < 8; ++k) word[k] = uint32_t(e[2 * k]) | (uint32_t(e[2 * k + 1]) << 16);
  uint4* out = job.dst + int64_t(q) * 2;
  out[0] = make_uint4(word[0], word[1], word[2], word[3]);
  out[1] = make_uint4(word[4], word[5], word[6], word[7]);
}

// Pixels [0, aPixels) are job a's, [aPixels, total) job b's.
template <int C, typename Index>
__global__ void __launch_bounds__(256) spaceToDepth16(Job<Index> a, Job<Index> b, Index aPixels, Index total) {
  const Index stride = Index(gridDim.x) * blockDim.x;
  for (Index p = Index(blockIdx.x) * blockDim.x + threadIdx.x; p < total; p += stride) {
    if (p < aPixels)
      spaceToDepthPixel<C>(a, p);
    else
      spaceToDepthPixel<C>(b, p - aPixels);
  }
}

// q8 of a float16 value, as a byte for packing.
__device__ __forceinline__ uint32_t quantizeByte(unsigned short bits, float inv) {
  return static_cast<uint32_t>(static_cast<uint8_t>(q8(__half2float(__ushort_as_half(bits)) * inv)));
}

// One thread per pixel of x' (job.outW is x''s width); with taps > 1 it is tap t of the packed
// pixels j - t that exist (each x' pixel is gathered once and stored up to `taps` times).
template <int C, bool kNchw, typename Index>
__global__ void __launch_bounds__(256) spaceToDepthInt8(Job<Index> job, float inv, Index total, int taps) {
  const Index stride = Index(gridDim.x) * blockDim.x;
  const Index packedW = job.outW - Index(taps - 1);
  for (Index p = Index(blockIdx.x) * blockDim.x + threadIdx.x; p < total; p += stride) {
    unsigned short e[16];
    gatherBlock<C, kNchw>(job, p, e);
    uint32_t word[4];
#pragma unroll
    for (int k = 0; k < 4; ++k)
      word[k] = quantizeByte(e[4 * k], inv) | (quantizeByte(e[4 * k + 1], inv) << 8) |
                (quantizeByte(e[4 * k + 2], inv) << 16) | (quantizeByte(e[4 * k + 3], inv) << 24);
    const uint4 pixel = make_uint4(word[0], word[1], word[2], word[3]);
    if (taps == 1) {
      job.dst[p] = pixel;
      continue;
    }
    const Index j = p % job.outW, row = p / job.outW;
    for (int t = 0; t < taps; ++t)
      if (j >= Index(t) && j - Index(t) < packedW) job.dst[(row * packedW + (j - Index(t))) * Index(taps) + Index(t)] = pixel;
  }
}

template <typename Index>
Job<Index> deviceJob(const SpaceToDepthJob& j) {
  Job<Index> d;
  d.src = j.src;
  d.dst = static_cast<uint4*>(j.dst);
  d.h = j.h, d.w = j.w, d.padTop = j.padTop, d.padLeft = j.padLeft;
  d.outH = static_cast<Index>(j.outH), d.outW = static_cast<Index>(j.outW);
  return d;
}

// Calls launch(channels, index) with channels a std::integral_constant of c (1..4) and index a
// value of the index type: 32-bit index arithmetic (the divisions dominate the thread's
// instructions) while the grid-stride loop over `total` cannot overflow it.
template <class Launch>
void dispatch(int c, int64_t total, Launch&& launch) {
  auto withIndex = [&](auto index) {
    switch (c) {
      case 1: launch(std::integral_constant<int, 1>{}, index); break;
      case 2: launch(std::integral_constant<int, 2>{}, index); break;
      case 3: launch(std::integral_constant<int, 3>{}, index); break;
      default: launch(std::integral_constant<int, 4>{}, index); break;
    }
  };
  if (total < (int64_t(1) << 31))
    withIndex(uint32_t{});
  else
    withIndex(uint64_t{});
}

}  // namespace

void launchSpaceToDepth16(const SpaceToDepthJob& a, const SpaceToDepthJob* b, cudaStream_t stream) {
  const SpaceToDepthJob none{};
  const SpaceToDepthJob& second = b != nullptr ? *b : none;
  KILN_CHECK(a.c >= 1 && a.c <= 4 && (b == nullptr || b->c == a.c), Internal,
             "space-to-depth takes 1 to 4 channels, the same in both jobs");
  const int64_t total = a.pixels() + second.pixels();
  if (total == 0) return;
  dispatch(a.c, total, [&](auto channels, auto index) {
    using Index = decltype(index);
    spaceToDepth16<decltype(channels)::value, Index><<<gridFor(total), 256, 0, stream>>>(
        deviceJob<Index>(a), deviceJob<Index>(second), static_cast<Index>(a.pixels()), static_cast<Index>(total));
  });
  KILN_CUDA_CHECK(cudaGetLastError());
}

void launchSpaceToDepthInt8(const SpaceToDepthJob& job, float invScale, cudaStream_t stream, bool float32Nchw) {
  KILN_CHECK(job.c >= 1 && job.c <= 4, Internal, "space-to-depth takes 1 to 4 channels");
  KILN_CHECK(job.taps >= 1 && job.taps <= 8, Internal, "space-to-depth packs 1 to 8 taps");
  KILN_CHECK(reinterpret_cast<uintptr_t>(job.dst) % 16 == 0, Internal,
             "space-to-depth writes 16-byte int8 pixels: the output must be 16-byte aligned");
  // The threads walk x' (taps - 1 pixels wider than the packed output); the index type must also
  // hold the packed output's 16-byte pixels.
  SpaceToDepthJob frame = job;
  frame.outW = job.outW + job.taps - 1;
  const int64_t total = frame.pixels();
  if (job.pixels() == 0) return;
  dispatch(job.c, std::max(total, job.pixels() * job.taps), [&](auto channels, auto index) {
    using Index = decltype(index);
    constexpr int kC = decltype(channels)::value;
    const auto kernel = float32Nchw ? spaceToDepthInt8<kC, true, Index> : spaceToDepthInt8<kC, false, Index>;
    kernel<<<gridFor(total), 256, 0, stream>>>(deviceJob<Index>(frame), invScale, static_cast<Index>(total), job.taps);
  });
  KILN_CUDA_CHECK(cudaGetLastError());
}

}  // namespace kiln::cuda
