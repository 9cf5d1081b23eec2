// Run-time dispatch between the AVX2 array kernels and portable scalar loops.
#include "backends/cpu/vec_math.h"

#include <cmath>
#include <limits>

#include "backends/cpu/vec_math_avx2.h"
#include "core/dtype.h"

namespace kiln::cpu {

bool cpuHasAvx2() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                          __builtin_cpu_supports("f16c");
  return has;
#else
  return false;
#endif
}

namespace {
#if defined(__x86_64__) || defined(__i386__)
constexpr bool kBuiltAvx2 = true;  // *_avx2.cc files are compiled on x86 builds (CMakeLists.txt)
#else
constexpr bool kBuiltAvx2 = false;
#endif

inline bool useAvx2() { return kBuiltAvx2 && cpuHasAvx2(); }

inline float sigmoidScalar(float x) {
  // Split by sign so exp never overflows and small results keep their precision.
  if (x >= 0) return 1.0f / (1.0f + std::exp(-x));
  float e = std::exp(x);
  return e / (1.0f + e);
}
}  // namespace

#if defined(__x86_64__) || defined(__i386__)
#define KILN_AVX2_OR(call) \
  if (useAvx2()) {         \
    call;                  \
    return;                \
  }
#else
#define KILN_AVX2_OR(call)
#endif

void vecExp(const float* x, float* y, int64_t n) {
  KILN_AVX2_OR(avx2::exp(x, y, n));
  for (int64_t i = 0; i < n; i++) y[i] = std::exp(x[i]);
}

void vecLog(const float* x, float* y, int64_t n) {
  KILN_AVX2_OR(avx2::log(x, y, n));
  for (int64_t i = 0; i < n; i++) y[i] = std::log(x[i]);
}

void vecTanh(const float* x, float* y, int64_t n) {
  KILN_AVX2_OR(avx2::tanh(x, y, n));
  for (int64_t i = 0; i < n; i++) y[i] = std::tanh(x[i]);
}

void vecSigmoid(const float* x, float* y, int64_t n) {
  KILN_AVX2_OR(avx2::sigmoid(x, y, n));
  for (int64_t i = 0; i < n; i++) y[i] = sigmoidScalar(x[i]);
}

void vecErf(const float* x, float* y, int64_t n) {
  KILN_AVX2_OR(avx2::erf(x, y, n));
  for (int64_t i = 0; i < n; i++) y[i] = std::erf(x[i]);
}

void vecSilu(const float* x, float* y, int64_t n) {
  KILN_AVX2_OR(avx2::silu(x, y, n));
  for (int64_t i = 0; i < n; i++) y[i] = x[i] * sigmoidScalar(x[i]);
}

void vecGelu(const float* x, float* y, int64_t n) {
  KILN_AVX2_OR(avx2::gelu(x, y, n));
  for (int64_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * 0.70710678118654752f));
}

void vecGeluTanh(const float* x, float* y, int64_t n) {
  KILN_AVX2_OR(avx2::geluTanh(x, y, n));
  for (int64_t i = 0; i < n; i++) {
    float v = x[i];
    y[i] = 0.5f * v * (1.0f + std::tanh(0.7978845608028654f * (v + 0.044715f * v * v * v)));
  }
}

float vecExpShiftSum(const float* x, float* y, int64_t n, float shift) {
#if defined(__x86_64__) || defined(__i386__)
  if (useAvx2()) return avx2::expShiftSum(x, y, n, shift);
#endif
  float sum = 0;
  for (int64_t i = 0; i < n; i++) {
    y[i] = std::exp(x[i] - shift);
    sum += y[i];
  }
  return sum;
}

float vecMax(const float* x, int64_t n) {
#if defined(__x86_64__) || defined(__i386__)
  if (useAvx2()) return avx2::max(x, n);
#endif
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; i++) {
    if (std::isnan(x[i])) return x[i];
    m = x[i] > m ? x[i] : m;
  }
  return m;
}

void halfToFloatArray(const uint16_t* in, float* out, int64_t n) {
  KILN_AVX2_OR(avx2::halfToFloat(in, out, n));
  for (int64_t i = 0; i < n; i++) out[i] = halfToFloat(in[i]);
}

void floatToHalfArray(const float* in, uint16_t* out, int64_t n) {
  KILN_AVX2_OR(avx2::floatToHalf(in, out, n));
  for (int64_t i = 0; i < n; i++) out[i] = floatToHalf(in[i]);
}

}  // namespace kiln::cpu
