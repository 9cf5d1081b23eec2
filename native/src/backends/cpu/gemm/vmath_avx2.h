// AVX2+FMA vector math shared by the *_avx2.cc translation units (exp, tanh, erf and the fused
// activations). Include it ONLY from files compiled with -mavx2 -mfma: every function here has
// internal linkage (static) so the linker can never pick an AVX2 copy for generic code.
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "backends/cpu/gemm/sgemm.h"

namespace kiln::cpu::avx2 {

// exp(x) with ~1 ulp error over the float range: x = n*ln2 + r, |r| <= ln2/2, exp(r) by a degree-6
// polynomial, 2^n by building the exponent bits. Inputs are clamped to [-87.33, 88.37] so n stays
// in [-126, 127] (a normal exponent): large inputs saturate near FLT_MAX instead of inf, and
// small ones give ~1e-38 (then 0 through the denormal multiply) instead of garbage.
static inline __m256 exp256(__m256 x) {
  const __m256 hi = _mm256_set1_ps(88.37f);
  const __m256 lo = _mm256_set1_ps(-87.33f);
  x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
  const __m256 log2e = _mm256_set1_ps(1.44269504088896341f);
  __m256 n = _mm256_round_ps(_mm256_mul_ps(x, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // Cody-Waite: ln2 split in two so r keeps full precision.
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  __m256 r2 = _mm256_mul_ps(r, r);
  p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.f)));
  __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

// tanh(x) as a rational function x * P(x^2) / Q(x^2) on [-7.9, 7.9] (beyond it tanh is +-1 in
// float); max error a few ulp, and exact-to-first-order near 0 (no cancellation).
static inline __m256 tanh256(__m256 x) {
  const __m256 clamp = _mm256_set1_ps(7.90531110763549805f);
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_sub_ps(_mm256_setzero_ps(), clamp)), clamp);
  __m256 x2 = _mm256_mul_ps(x, x);
  __m256 p = _mm256_set1_ps(-2.76076847742355e-16f);
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(2.00018790482477e-13f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-8.60467152213735e-11f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(5.12229709037114e-08f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(1.48572235717979e-05f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(6.37261928875436e-04f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(4.89352455891786e-03f));
  p = _mm256_mul_ps(p, x);
  __m256 q = _mm256_set1_ps(1.19825839466702e-06f);
  q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(1.18534705686654e-04f));
  q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(2.26843463243900e-03f));
  q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(4.89352518554385e-03f));
  // At the clamp the rational form is a few ulp short of +-1; tanh there is exactly +-1 in float.
  __m256 t = _mm256_div_ps(p, q);
  __m256 sat = _mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.f), x), clamp, _CMP_GE_OQ);
  return _mm256_blendv_ps(t, _mm256_or_ps(_mm256_set1_ps(1.f), _mm256_and_ps(x, _mm256_set1_ps(-0.f))), sat);
}

// erf(x) as x * P(x^2) / Q(x^2) on [-4, 4] (beyond it erf is +-1 in float).
static inline __m256 erf256(__m256 x) {
  const __m256 four = _mm256_set1_ps(4.f);
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_sub_ps(_mm256_setzero_ps(), four)), four);
  __m256 x2 = _mm256_mul_ps(x, x);
  __m256 p = _mm256_set1_ps(-2.72614225801306e-10f);
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(2.77068142495902e-08f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-2.10102402082508e-06f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-5.69250639462346e-05f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-7.34990630326855e-04f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-2.95459980854025e-03f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-1.60960333262415e-02f));
  p = _mm256_mul_ps(p, x);
  __m256 q = _mm256_set1_ps(-1.45660718464996e-05f);
  q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-2.13374055278905e-04f));
  q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-1.68282697438203e-03f));
  q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-7.37332916720468e-03f));
  q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-1.42647390514189e-02f));
  // The rational form overshoots |erf| = 1 by an ulp near the clamp; GELU's 1 + erf(x) would then
  // turn a tiny negative into a (relatively large) positive.
  const __m256 one = _mm256_set1_ps(1.f);
  return _mm256_min_ps(_mm256_max_ps(_mm256_div_ps(p, q), _mm256_sub_ps(_mm256_setzero_ps(), one)), one);
}

static inline __m256 sigmoid256(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.f);
  return _mm256_div_ps(one, _mm256_add_ps(one, exp256(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

// One activation on 8 lanes. `act` is loop-invariant in callers, so the switch is well predicted.
static inline __m256 activate256(__m256 x, const ActivationSpec& act) {
  switch (act.kind) {
    case Activation::None:
      return x;
    case Activation::Relu:
      return _mm256_max_ps(x, _mm256_setzero_ps());
    case Activation::LeakyRelu: {
      __m256 neg = _mm256_mul_ps(x, _mm256_set1_ps(act.alpha));
      return _mm256_blendv_ps(x, neg, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ));
    }
    case Activation::Sigmoid:
      return sigmoid256(x);
    case Activation::Tanh:
      return tanh256(x);
    case Activation::Clip:
      // max then min, as ONNX Clip: NaN inputs stay NaN only through the compare order below.
      return _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(act.alpha)), _mm256_set1_ps(act.beta));
    case Activation::HardSigmoid: {
      __m256 y = _mm256_fmadd_ps(x, _mm256_set1_ps(act.alpha), _mm256_set1_ps(act.beta));
      return _mm256_min_ps(_mm256_max_ps(y, _mm256_setzero_ps()), _mm256_set1_ps(1.f));
    }
    case Activation::HardSwish: {
      __m256 y = _mm256_fmadd_ps(x, _mm256_set1_ps(1.f / 6.f), _mm256_set1_ps(0.5f));
      y = _mm256_min_ps(_mm256_max_ps(y, _mm256_setzero_ps()), _mm256_set1_ps(1.f));
      return _mm256_mul_ps(x, y);
    }
    case Activation::Gelu: {
      __m256 e = erf256(_mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f)));
      return _mm256_mul_ps(_mm256_mul_ps(x, _mm256_set1_ps(0.5f)), _mm256_add_ps(e, _mm256_set1_ps(1.f)));
    }
    case Activation::GeluTanh: {
      // 0.5 * (1 + tanh(z)) == sigmoid(2z): no cancellation for x << 0, where 1 + tanh(z) would
      // amplify tanh's last-ulp error by |x|.
      __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
      __m256 minus2z = _mm256_mul_ps(_mm256_fmadd_ps(x3, _mm256_set1_ps(0.044715f), x),
                                     _mm256_set1_ps(-1.5957691216057308f));
      return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.f), exp256(minus2z)));
    }
    case Activation::Silu:
      return _mm256_mul_ps(x, sigmoid256(x));
  }
  return x;
}

// Masks selecting the first n (0..8) lanes, for loads/stores of row tails.
static inline __m256i tailMask256(int64_t n) {
  alignas(32) static const int32_t kMaskTable[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kMaskTable + 8 - n));
}

static inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

static inline float hmax256(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

}  // namespace kiln::cpu::avx2
