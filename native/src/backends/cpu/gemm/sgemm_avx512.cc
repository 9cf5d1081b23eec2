// AVX-512F GEMM micro-kernel: the same 6x16 packed-panel layout as the AVX2 kernel (so packing,
// pre-packed weights and the driver are shared), but one zmm per row of the tile and the K loop
// split into two interleaved accumulator sets (even and odd k), which gives 12 independent FMA
// chains of 16 lanes: twice the AVX2 kernel's work per instruction on cores with full-width
// AVX-512 units (Zen 4/5, Intel server cores). Edges in N are masked (k-masks, no tail tables).
// The epilogue runs in registers; activations other than Relu/Clip go through the AVX2 code on
// the two 8-lane halves. The row epilogue and activation entries reuse the AVX2 table.
//
// Compiled for AVX-512 with a target pragma (the build adds no flags for this file) and only
// reached through gemmKernels() after a runtime CPU check; KILN_CPU_NO_AVX512=1 turns it off.
#include <cstdint>

#include "backends/cpu/gemm/kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

// GCC 12 flags the intrinsics' own `__Y = __Y` placeholders (_mm512_undefined_*) when they are
// inlined under a target pragma: a known false positive.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512vl,avx2,fma,f16c")

#include "backends/cpu/gemm/vmath_avx512.h"

namespace kiln::cpu {
namespace {

using avx512::activate512;

template <int R>
void micro512(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int nr, float alpha, float cScale,
              const TileEpilogue* ep) {
  __m512 acc0[R], acc1[R];
#pragma GCC unroll 6
  for (int r = 0; r < R; r++) {
    acc0[r] = _mm512_setzero_ps();
    acc1[r] = _mm512_setzero_ps();
  }
#pragma GCC unroll 6
  for (int r = 0; r < R; r++) _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
  int64_t k = 0;
#pragma GCC unroll 2
  for (; k + 2 <= kc; k += 2) {
    const __m512 b0 = _mm512_loadu_ps(b);
    const __m512 b1 = _mm512_loadu_ps(b + kGemmNR);
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
      acc0[r] = _mm512_fmadd_ps(_mm512_set1_ps(a[r]), b0, acc0[r]);
      acc1[r] = _mm512_fmadd_ps(_mm512_set1_ps(a[kGemmMR + r]), b1, acc1[r]);
    }
    a += 2 * kGemmMR;
    b += 2 * kGemmNR;
  }
  if (k < kc) {
    const __m512 b0 = _mm512_loadu_ps(b);
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) acc0[r] = _mm512_fmadd_ps(_mm512_set1_ps(a[r]), b0, acc0[r]);
  }
  const __mmask16 m = nr >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << nr) - 1u);
  const __m512 va = _mm512_set1_ps(alpha);
  const __m512 vs = _mm512_set1_ps(cScale);
  const bool scaled = alpha != 1.f;
  __m512 colBias = _mm512_setzero_ps();
  if (ep && ep->colBias) colBias = _mm512_maskz_loadu_ps(m, ep->colBias);
#pragma GCC unroll 6
  for (int r = 0; r < R; r++) {
    float* cr = c + r * ldc;
    __m512 v = _mm512_add_ps(acc0[r], acc1[r]);
    if (scaled) v = _mm512_mul_ps(v, va);
    if (cScale != 0.f) v = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, cr), vs, v);
    if (ep) {
      if (ep->rowBias) v = _mm512_add_ps(v, _mm512_set1_ps(ep->rowBias[r]));
      if (ep->colBias) v = _mm512_add_ps(v, colBias);
      if (ep->residual) {
        v = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, ep->residual + r * ep->residualLd), _mm512_set1_ps(ep->residualScale),
                            v);
      }
      v = activate512(v, ep->act);
    }
    _mm512_mask_storeu_ps(cr, m, v);
  }
}

// R rows x up to 32 columns over two B panels (b0: columns 0..15, b1: 16..31): 2 B loads and R
// broadcasts per 2R FMAs, a better load-to-FMA ratio than the 16-column tile.
template <int R>
void micro512w(int64_t kc, const float* a, const float* b0, const float* b1, float* c, int64_t ldc, int nr, float alpha,
               float cScale, const TileEpilogue* ep) {
  __m512 acc0[R], acc1[R];
#pragma GCC unroll 6
  for (int r = 0; r < R; r++) {
    acc0[r] = _mm512_setzero_ps();
    acc1[r] = _mm512_setzero_ps();
  }
#pragma GCC unroll 6
  for (int r = 0; r < R; r++) _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; k++) {
    const __m512 v0 = _mm512_loadu_ps(b0 + k * kGemmNR);
    const __m512 v1 = _mm512_loadu_ps(b1 + k * kGemmNR);
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
      const __m512 av = _mm512_set1_ps(a[r]);
      acc0[r] = _mm512_fmadd_ps(av, v0, acc0[r]);
      acc1[r] = _mm512_fmadd_ps(av, v1, acc1[r]);
    }
    a += kGemmMR;
  }
  const int n1 = nr - 16;
  const __mmask16 m0 = 0xFFFF;
  const __mmask16 m1 = n1 >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n1 < 0 ? 0 : n1)) - 1u);
  const __m512 va = _mm512_set1_ps(alpha);
  const __m512 vs = _mm512_set1_ps(cScale);
  const bool scaled = alpha != 1.f;
  __m512 cb0 = _mm512_setzero_ps(), cb1 = _mm512_setzero_ps();
  if (ep && ep->colBias) {
    cb0 = _mm512_loadu_ps(ep->colBias);
    cb1 = _mm512_maskz_loadu_ps(m1, ep->colBias + 16);
  }
#pragma GCC unroll 6
  for (int r = 0; r < R; r++) {
    float* cr = c + r * ldc;
    __m512 v[2] = {acc0[r], acc1[r]};
    const __mmask16 m[2] = {m0, m1};
    const __m512 cb[2] = {cb0, cb1};
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
      __m512 x = v[h];
      if (scaled) x = _mm512_mul_ps(x, va);
      if (cScale != 0.f) x = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m[h], cr + 16 * h), vs, x);
      if (ep) {
        if (ep->rowBias) x = _mm512_add_ps(x, _mm512_set1_ps(ep->rowBias[r]));
        if (ep->colBias) x = _mm512_add_ps(x, cb[h]);
        if (ep->residual) {
          x = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m[h], ep->residual + r * ep->residualLd + 16 * h),
                              _mm512_set1_ps(ep->residualScale), x);
        }
        x = activate512(x, ep->act);
      }
      _mm512_mask_storeu_ps(cr + 16 * h, m[h], x);
    }
  }
}

using MicroWideFn = void (*)(int64_t, const float*, const float*, const float*, float*, int64_t, int, float, float,
                             const TileEpilogue*);
const MicroWideFn kMicro512w[kGemmMR] = {micro512w<1>, micro512w<2>, micro512w<3>,
                                         micro512w<4>, micro512w<5>, micro512w<6>};

void microWideDispatch512(int64_t kc, const float* a, const float* b0, const float* b1, float* c, int64_t ldc, int mr,
                          int nr, float alpha, float cScale, const TileEpilogue* ep) {
  kMicro512w[mr - 1](kc, a, b0, b1, c, ldc, nr, alpha, cScale, ep);
}

using MicroFn = void (*)(int64_t, const float*, const float*, float*, int64_t, int, float, float, const TileEpilogue*);
const MicroFn kMicro512[kGemmMR] = {micro512<1>, micro512<2>, micro512<3>, micro512<4>, micro512<5>, micro512<6>};

void microDispatch512(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int mr, int nr, float alpha,
                      float cScale, const TileEpilogue* ep) {
  kMicro512[mr - 1](kc, a, b, c, ldc, nr, alpha, cScale, ep);
}

}  // namespace
}  // namespace kiln::cpu

#pragma GCC pop_options
#pragma GCC diagnostic pop

namespace kiln::cpu {

bool cpuHasAvx512() {
  // libgcc's checks include the OS's XSAVE support for the ZMM state.
  static const bool has = [] {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return has;
}

const GemmKernelTable* avx512GemmKernelsOrNull() {
  static const GemmKernelTable* table = []() -> const GemmKernelTable* {
    const GemmKernelTable* avx2 = avx2GemmKernelsOrNull();
    if (!avx2) return nullptr;
    static const GemmKernelTable t = {"avx512_6x32", microDispatch512, avx2->epilogueRow, avx2->activation,
                                      microWideDispatch512};
    return &t;
  }();
  return table;
}

}  // namespace kiln::cpu

#else

namespace kiln::cpu {
bool cpuHasAvx512() { return false; }
const GemmKernelTable* avx512GemmKernelsOrNull() { return nullptr; }
}  // namespace kiln::cpu

#endif
