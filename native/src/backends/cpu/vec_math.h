// Vectorized float32 math over arrays, chosen at run time: AVX2+FMA when the CPU has it (see
// vec_math_avx2.h), otherwise portable scalar loops. Kernels of every op family use these for the
// transcendental parts of activations, softmax and reductions; x and y may alias (in-place).
// Accuracy: a few ulp over the whole float range (tests/elementwise_vecmath_test.cc checks it);
// NaN propagates, exp overflows to +inf and underflows to 0 like std::exp.
#pragma once
#include <cstdint>

namespace kiln::cpu {

// True when the CPU has AVX2, FMA and F16C (checked once).
bool cpuHasAvx2();

void vecExp(const float* x, float* y, int64_t n);
void vecLog(const float* x, float* y, int64_t n);
void vecTanh(const float* x, float* y, int64_t n);
void vecSigmoid(const float* x, float* y, int64_t n);
void vecErf(const float* x, float* y, int64_t n);
void vecSilu(const float* x, float* y, int64_t n);      // x * sigmoid(x)
void vecGelu(const float* x, float* y, int64_t n);      // 0.5 x (1 + erf(x / sqrt 2))
void vecGeluTanh(const float* x, float* y, int64_t n);  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
// y = exp(x - shift); returns the sum of y (the softmax inner loop).
float vecExpShiftSum(const float* x, float* y, int64_t n, float shift);
float vecMax(const float* x, int64_t n);  // -inf for n == 0; NaN if any element is NaN

// IEEE half <-> float for whole arrays (F16C when available).
void halfToFloatArray(const uint16_t* in, float* out, int64_t n);
void floatToHalfArray(const float* in, uint16_t* out, int64_t n);

}  // namespace kiln::cpu
