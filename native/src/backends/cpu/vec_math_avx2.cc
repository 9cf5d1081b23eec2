// Array loops over the AVX2 primitives in vec_math_avx2.h. Only called after cpuHasAvx2().
#include "backends/cpu/vec_math_avx2.h"

#include <cstring>

namespace kiln::cpu::avx2 {
namespace {

// Applies f to x[0..n) in 8-wide steps; the tail goes through a padded buffer so every element is
// computed by the same code (results do not depend on where an element sits in the array).
template <class F>
inline void map(const float* x, float* y, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, f(_mm256_loadu_ps(x + i)));
  if (i < n) {
    alignas(32) float buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::memcpy(buf, x + i, sizeof(float) * (n - i));
    _mm256_store_ps(buf, f(_mm256_load_ps(buf)));
    std::memcpy(y + i, buf, sizeof(float) * (n - i));
  }
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

}  // namespace

void exp(const float* x, float* y, int64_t n) { map(x, y, n, exp256); }
void log(const float* x, float* y, int64_t n) { map(x, y, n, log256); }
void tanh(const float* x, float* y, int64_t n) { map(x, y, n, tanh256); }
void sigmoid(const float* x, float* y, int64_t n) { map(x, y, n, sigmoid256); }
void erf(const float* x, float* y, int64_t n) { map(x, y, n, erf256); }

void silu(const float* x, float* y, int64_t n) {
  map(x, y, n, [](__m256 v) { return _mm256_mul_ps(v, sigmoid256(v)); });
}

void gelu(const float* x, float* y, int64_t n) {
  map(x, y, n, [](__m256 v) {
    __m256 e = erf256(_mm256_mul_ps(v, _mm256_set1_ps(0.70710678118654752f)));
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), v), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
  });
}

void geluTanh(const float* x, float* y, int64_t n) {
  map(x, y, n, [](__m256 v) {
    __m256 v3 = _mm256_mul_ps(_mm256_mul_ps(v, v), v);
    __m256 inner = _mm256_mul_ps(_mm256_set1_ps(0.7978845608028654f),
                                 _mm256_fmadd_ps(v3, _mm256_set1_ps(0.044715f), v));
    __m256 t = tanh256(inner);
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), v), _mm256_add_ps(_mm256_set1_ps(1.0f), t));
  });
}

float expShiftSum(const float* x, float* y, int64_t n, float shift) {
  const __m256 s = _mm256_set1_ps(shift);
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), s));
    _mm256_storeu_ps(y + i, e);
    acc = _mm256_add_ps(acc, e);
  }
  float sum = hsum(acc);
  if (i < n) {
    alignas(32) float buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::memcpy(buf, x + i, sizeof(float) * (n - i));
    _mm256_store_ps(buf, exp256(_mm256_sub_ps(_mm256_load_ps(buf), s)));
    for (int64_t j = 0; j < n - i; j++) sum += buf[j];
    std::memcpy(y + i, buf, sizeof(float) * (n - i));
  }
  return sum;
}

float max(const float* x, int64_t n) {
  __m256 m = _mm256_set1_ps(-__builtin_inff());
  __m256 nan = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(x + i);
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    m = _mm256_max_ps(m, v);
  }
  alignas(32) float buf[8];
  _mm256_store_ps(buf, m);
  float r = buf[0];
  for (int j = 1; j < 8; j++) r = buf[j] > r ? buf[j] : r;
  bool anyNan = _mm256_movemask_ps(nan) != 0;
  for (; i < n; i++) {
    if (x[i] != x[i]) anyNan = true;
    r = x[i] > r ? x[i] : r;
  }
  return anyNan ? __builtin_nanf("") : r;
}

void halfToFloat(const uint16_t* in, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i));
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(h));
  }
  if (i < n) {
    alignas(16) uint16_t hb[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    alignas(32) float fb[8];
    std::memcpy(hb, in + i, sizeof(uint16_t) * (n - i));
    _mm256_store_ps(fb, _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(hb))));
    std::memcpy(out + i, fb, sizeof(float) * (n - i));
  }
}

void floatToHalf(const float* in, uint16_t* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), h);
  }
  if (i < n) {
    alignas(32) float fb[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    alignas(16) uint16_t hb[8];
    std::memcpy(fb, in + i, sizeof(float) * (n - i));
    _mm_store_si128(reinterpret_cast<__m128i*>(hb), _mm256_cvtps_ph(_mm256_load_ps(fb), _MM_FROUND_TO_NEAREST_INT));
    std::memcpy(out + i, hb, sizeof(uint16_t) * (n - i));
  }
}

}  // namespace kiln::cpu::avx2
