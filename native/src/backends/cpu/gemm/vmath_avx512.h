// AVX-512 helpers shared by the AVX-512 translation units (sgemm_avx512.cc,
// conv_depthwise_avx512.cc). Include it ONLY after `#pragma GCC target("avx512f,avx512dq,...")`
// in those files: every function here has internal linkage (static), so the linker can never pick
// an AVX-512 copy for generic code. Activations beyond Relu/Clip reuse the AVX2 code on halves.
#pragma once
#include <immintrin.h>

#include "backends/cpu/gemm/vmath_avx2.h"

namespace kiln::cpu::avx512 {

static inline __m512 activate512(__m512 v, const ActivationSpec& act) {
  switch (act.kind) {
    case Activation::None:
      return v;
    case Activation::Relu:
      return _mm512_max_ps(v, _mm512_setzero_ps());
    case Activation::Clip:
      return _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(act.alpha)), _mm512_set1_ps(act.beta));
    default: {
      const __m256 lo = avx2::activate256(_mm512_castps512_ps256(v), act);
      const __m256 hi = avx2::activate256(_mm512_extractf32x8_ps(v, 1), act);
      return _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1);
    }
  }
}

// The first n (0..16) lanes.
static inline __mmask16 tailMask16(int64_t n) {
  return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << unsigned(n < 0 ? 0 : n)) - 1u);
}

}  // namespace kiln::cpu::avx512
