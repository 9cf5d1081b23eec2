// The one INT8 quantization every CUDA kernel applies (kiln.CudaQuantize, the requantizing
// epilogues, the space-to-depth stem input): round to nearest even, clamp to +-127 (symmetric: -128
// is never produced).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace kiln::cuda {

__device__ __forceinline__ int8_t q8(float v) {
  v = rintf(v);
  v = fminf(127.f, fmaxf(-127.f, v));
  return static_cast<int8_t>(static_cast<int>(v));
}

}  // namespace kiln::cuda
