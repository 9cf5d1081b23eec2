// See tuning_kernels.h.
#include "backends/cuda/tuning_kernels.h"

#include <cuda_fp16.h>

#include "backends/cuda/cuda_common.h"

namespace kiln::cuda {
namespace {

__device__ inline float patternValue(uint32_t seed, uint64_t i) {
  uint32_t x = static_cast<uint32_t>(i) * 0x9E3779B1u ^ static_cast<uint32_t>(i >> 32) * 0x85EBCA77u ^ seed * 0xC2B2AE3Du;
  x ^= x >> 16;
  x *= 0x7FEB352Du;
  x ^= x >> 15;
  x *= 0x846CA68Bu;
  x ^= x >> 16;
  return static_cast<float>(x >> 8) * (2.f / 16777216.f) - 1.f;
}

template <class T>
__device__ inline T fromPattern(float v) { return static_cast<T>(v); }
template <>
__device__ inline __half fromPattern<__half>(float v) { return __float2half(v); }
template <>
__device__ inline int8_t fromPattern<int8_t>(float v) { return static_cast<int8_t>(v * 127.f); }

template <class T>
__global__ void fillPattern(T* data, int64_t n, uint32_t seed) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    data[i] = fromPattern<T>(patternValue(seed, static_cast<uint64_t>(i)));
}

__device__ inline float toFloat(float v) { return v; }
__device__ inline float toFloat(__half v) { return __half2float(v); }

// Non-negative floats order like their bit patterns, so atomicMax on the bits is a float max.
template <class T>
__global__ void compareOutputs(const T* a, const T* b, int64_t n, float* out) {
  float diff = 0.f, ref = 0.f;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float x = toFloat(a[i]), y = toFloat(b[i]);
    const float d = fabsf(x - y);
    diff = fmaxf(diff, d != d ? INFINITY : d);  // NaN counts as the largest difference
    ref = fmaxf(ref, fabsf(y));
  }
  for (int o = 16; o > 0; o /= 2) {
    diff = fmaxf(diff, __shfl_xor_sync(0xffffffffu, diff, o));
    ref = fmaxf(ref, __shfl_xor_sync(0xffffffffu, ref, o));
  }
  if (threadIdx.x % 32 == 0) {
    atomicMax(reinterpret_cast<unsigned*>(out), __float_as_uint(diff));
    atomicMax(reinterpret_cast<unsigned*>(out + 1), __float_as_uint(ref));
  }
}

unsigned gridOf(int64_t n) {
  const int64_t blocks = (n + 255) / 256;
  return static_cast<unsigned>(blocks < 1 ? 1 : blocks > 4096 ? 4096 : blocks);
}

}  // namespace

void fillTuningPattern(void* data, DType type, int64_t n, uint32_t seed, cudaStream_t stream) {
  if (n <= 0) return;
  if (type == DType::Float16) fillPattern<__half><<<gridOf(n), 256, 0, stream>>>(static_cast<__half*>(data), n, seed);
  else if (type == DType::Int8) fillPattern<int8_t><<<gridOf(n), 256, 0, stream>>>(static_cast<int8_t*>(data), n, seed);
  else fillPattern<float><<<gridOf(n), 256, 0, stream>>>(static_cast<float*>(data), n, seed);
}

void compareTuningOutputs(const void* a, const void* b, DType type, int64_t n, float* out, cudaStream_t stream) {
  KILN_CUDA_CHECK(cudaMemsetAsync(out, 0, 2 * sizeof(float), stream));
  if (n <= 0) return;
  if (type == DType::Float16)
    compareOutputs<__half><<<gridOf(n), 256, 0, stream>>>(static_cast<const __half*>(a), static_cast<const __half*>(b), n, out);
  else
    compareOutputs<float><<<gridOf(n), 256, 0, stream>>>(static_cast<const float*>(a), static_cast<const float*>(b), n, out);
}

}  // namespace kiln::cuda
