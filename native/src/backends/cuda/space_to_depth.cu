// Space-to-depth for stride-2 stems (space_to_depth.h): one thread per output pixel, which gathers
// its 2x2 block of input pixels (4C halves, zero where the block falls outside the input) and
// writes the pixel's 16 channels as two 16-byte stores; a warp writes 1 KiB of contiguous output
// and reads two contiguous runs of input (one per input row of the block). The int8 variant
// quantizes the 16 values and writes the pixel as one 16-byte store (512 contiguous bytes a warp).
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "backends/cuda/cuda_common.h"
#include "backends/cuda/space_to_depth.h"
#include "core/error.h"

namespace kiln::cuda {
namespace {

template <typename Index>
struct Job {
  const unsigned short* __restrict__ src;  // float16 bits
  uint4* __restrict__ dst;                 // two vectors per pixel (float16), one (int8)
  int h, w, padTop, padLeft;
  Index outH, outW;
};

// Output pixel q's 16 channels as float16 bits, zero outside the input and in channels 4C..15.
template <int C, typename Index>
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
    const unsigned short* line = job.src + (n * job.h + row) * int64_t(job.w) * C;
#pragma unroll
    for (int dx = 0; dx < 2; ++dx) {
      const int col = 2 * static_cast<int>(j) + dx - job.padLeft;
      if (static_cast<unsigned>(col) >= static_cast<unsigned>(job.w)) continue;
#pragma unroll
      for (int c = 0; c < C; ++c) e[(dy * 2 + dx) * C + c] = __ldg(line + int64_t(col) * C + c);
    }
  }
}

template <int C, typename Index>
__device__ __forceinline__ void spaceToDepthPixel(const Job<Index>& job, Index q) {
  unsigned short e[16];
  gatherBlock<C>(job, q, e);
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

// int8.cu's quantization (q8): round to nearest even, clamp to +-127; as a byte for packing.
__device__ __forceinline__ uint32_t quantizeByte(unsigned short bits, float inv) {
  float v = rintf(__half2float(__ushort_as_half(bits)) * inv);
  v = fminf(127.f, fmaxf(-127.f, v));
  return static_cast<uint32_t>(static_cast<uint8_t>(static_cast<int8_t>(static_cast<int>(v))));
}

template <int C, typename Index>
__global__ void __launch_bounds__(256) spaceToDepthInt8(Job<Index> job, float inv, Index total) {
  const Index stride = Index(gridDim.x) * blockDim.x;
  for (Index p = Index(blockIdx.x) * blockDim.x + threadIdx.x; p < total; p += stride) {
    unsigned short e[16];
    gatherBlock<C>(job, p, e);
    uint32_t word[4];
#pragma unroll
    for (int k = 0; k < 4; ++k)
      word[k] = quantizeByte(e[4 * k], inv) | (quantizeByte(e[4 * k + 1], inv) << 8) |
                (quantizeByte(e[4 * k + 2], inv) << 16) | (quantizeByte(e[4 * k + 3], inv) << 24);
    job.dst[p] = make_uint4(word[0], word[1], word[2], word[3]);
  }
}

template <typename Index>
Job<Index> deviceJob(const SpaceToDepthJob& j) {
  Job<Index> d;
  d.src = static_cast<const unsigned short*>(j.src);
  d.dst = static_cast<uint4*>(j.dst);
  d.h = j.h, d.w = j.w, d.padTop = j.padTop, d.padLeft = j.padLeft;
  d.outH = static_cast<Index>(j.outH), d.outW = static_cast<Index>(j.outW);
  return d;
}

template <typename Index>
void launchTyped(const SpaceToDepthJob& a, const SpaceToDepthJob& b, int64_t total, cudaStream_t stream) {
  const Job<Index> ja = deviceJob<Index>(a), jb = deviceJob<Index>(b);
  const Index aPixels = static_cast<Index>(a.pixels()), n = static_cast<Index>(total);
  const unsigned grid = gridFor(total);
  switch (a.c) {
    case 1: spaceToDepth16<1, Index><<<grid, 256, 0, stream>>>(ja, jb, aPixels, n); break;
    case 2: spaceToDepth16<2, Index><<<grid, 256, 0, stream>>>(ja, jb, aPixels, n); break;
    case 3: spaceToDepth16<3, Index><<<grid, 256, 0, stream>>>(ja, jb, aPixels, n); break;
    default: spaceToDepth16<4, Index><<<grid, 256, 0, stream>>>(ja, jb, aPixels, n); break;
  }
}

template <typename Index>
void launchInt8Typed(const SpaceToDepthJob& job, float inv, int64_t total, cudaStream_t stream) {
  const Job<Index> j = deviceJob<Index>(job);
  const Index n = static_cast<Index>(total);
  const unsigned grid = gridFor(total);
  switch (job.c) {
    case 1: spaceToDepthInt8<1, Index><<<grid, 256, 0, stream>>>(j, inv, n); break;
    case 2: spaceToDepthInt8<2, Index><<<grid, 256, 0, stream>>>(j, inv, n); break;
    case 3: spaceToDepthInt8<3, Index><<<grid, 256, 0, stream>>>(j, inv, n); break;
    default: spaceToDepthInt8<4, Index><<<grid, 256, 0, stream>>>(j, inv, n); break;
  }
}

}  // namespace

void launchSpaceToDepth16(const SpaceToDepthJob& a, const SpaceToDepthJob* b, cudaStream_t stream) {
  const SpaceToDepthJob none{};
  const SpaceToDepthJob& second = b != nullptr ? *b : none;
  KILN_CHECK(a.c >= 1 && a.c <= 4 && (b == nullptr || b->c == a.c), Internal,
             "space-to-depth takes 1 to 4 channels, the same in both jobs");
  const int64_t total = a.pixels() + second.pixels();
  if (total == 0) return;
  // 32-bit index arithmetic (the divisions dominate the thread's instructions) while the grid-stride
  // loop cannot overflow it.
  if (total < (int64_t(1) << 31))
    launchTyped<uint32_t>(a, second, total, stream);
  else
    launchTyped<uint64_t>(a, second, total, stream);
  KILN_CUDA_CHECK(cudaGetLastError());
}

void launchSpaceToDepthInt8(const SpaceToDepthJob& job, float invScale, cudaStream_t stream) {
  KILN_CHECK(job.c >= 1 && job.c <= 4, Internal, "space-to-depth takes 1 to 4 channels");
  KILN_CHECK(reinterpret_cast<uintptr_t>(job.dst) % 16 == 0, Internal,
             "space-to-depth writes 16-byte int8 pixels: the output must be 16-byte aligned");
  const int64_t total = job.pixels();
  if (total == 0) return;
  if (total < (int64_t(1) << 31))
    launchInt8Typed<uint32_t>(job, invScale, total, stream);
  else
    launchInt8Typed<uint64_t>(job, invScale, total, stream);
  KILN_CUDA_CHECK(cudaGetLastError());
}

}  // namespace kiln::cuda
