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

// q8 for the requantizing epilogues, without the conversion pipe: F2I and I2F run at a quarter of
// the FMA rate on sm_90, and with rintf they were most of a memory-bound INT8 layer's time. Adding
// 1.5 * 2^23 rounds v to an integer held in the sum's low mantissa bits (round to nearest even, as
// rintf; exact for |v| < 2^22, and anything larger is clamped anyway); clamping the sum to
// kRoundBias + [floor, 127] clamps that integer, and the sum's low byte is the int8 (two's complement).
// floor: -127 (q8's symmetric clamp) or 0 (ReLU before q8). NaN becomes the floor, as with q8.
constexpr float kRoundBias = 12582912.f;
__device__ __forceinline__ uint32_t q8Bits(float v, float biasedFloor) {
  return __float_as_uint(fminf(fmaxf(__fadd_rn(v, kRoundBias), biasedFloor), kRoundBias + 127.f));
}
// Two q8Bits results as the bytes of a char2 (the upper 16 bits are don't-care).
__device__ __forceinline__ uint32_t packQ8Pair(uint32_t lo, uint32_t hi) { return __byte_perm(lo, hi, 0x0040); }
// The two int8 in the low 16 bits of `pair`, as floats, without I2F: each byte + 128 is placed in the
// mantissa of 2^23 and the bias taken off.
__device__ __forceinline__ float2 int8PairToFloat2(uint32_t pair) {
  const uint32_t u = pair ^ 0x8080u;  // two's complement -> excess-128
  constexpr float kExcess = 8388608.f + 128.f;
  return make_float2(__uint_as_float(__byte_perm(u, 0x4B000000u, 0x7540)) - kExcess,
                     __uint_as_float(__byte_perm(u, 0x4B000000u, 0x7541)) - kExcess);
}

}  // namespace kiln::cuda
