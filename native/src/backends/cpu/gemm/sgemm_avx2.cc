// AVX2+FMA GEMM kernels: the 6x16 register-blocked micro-kernel (12 ymm accumulators, 2 for the B
// row, 1 for the broadcast A value), the vectorised epilogue and activations. Compiled with
// -mavx2 -mfma and only reached through gemmKernels() after a runtime CPU check.
#include "backends/cpu/gemm/kernels.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#include "backends/cpu/gemm/vmath_avx2.h"

namespace kiln::cpu {
namespace {

using namespace avx2;

// R rows (1..6) of the tile, NV vectors of 8 columns (1 or 2). Partial tiles in N use masked
// loads/stores so edges run at nearly full speed instead of through a scratch tile.
// The tile epilogue on one 8-wide vector of row r at column offset col (mask: partial vectors).
inline __m256 finish(__m256 v, const TileEpilogue& ep, int r, int col, __m256i mask, bool masked) {
  if (ep.rowBias) v = _mm256_add_ps(v, _mm256_broadcast_ss(ep.rowBias + r));
  if (ep.colBias) {
    v = _mm256_add_ps(v, masked ? _mm256_maskload_ps(ep.colBias + col, mask) : _mm256_loadu_ps(ep.colBias + col));
  }
  if (ep.residual) {
    const float* res = ep.residual + r * ep.residualLd + col;
    v = _mm256_fmadd_ps(masked ? _mm256_maskload_ps(res, mask) : _mm256_loadu_ps(res), _mm256_set1_ps(ep.residualScale), v);
  }
  return activate256(v, ep.act);
}

// R rows (1..6) of the tile, NV vectors of 8 columns (1 or 2). Partial tiles in N use masked
// loads/stores so edges run at nearly full speed instead of through a scratch tile. The epilogue
// (bias, residual, activation) runs in registers, so small-K GEMMs (MobileNet's 1x1 convs with
// K = 16) do not pay a second pass over C.
template <int R, int NV>
void microAvx2(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int nr, float alpha, float cScale,
               const TileEpilogue* ep) {
  __m256 acc0[R], acc1[R];
#pragma GCC unroll 6
  for (int r = 0; r < R; r++) {
    acc0[r] = _mm256_setzero_ps();
    acc1[r] = _mm256_setzero_ps();
  }
  // Touch the C rows early: their lines arrive while the K loop runs.
#pragma GCC unroll 6
  for (int r = 0; r < R; r++) _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; k++) {
    __m256 b0 = _mm256_loadu_ps(b);
    __m256 b1 = NV == 2 ? _mm256_loadu_ps(b + 8) : b0;
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
      __m256 av = _mm256_broadcast_ss(a + r);
      acc0[r] = _mm256_fmadd_ps(av, b0, acc0[r]);
      if (NV == 2) acc1[r] = _mm256_fmadd_ps(av, b1, acc1[r]);
    }
    a += kGemmMR;
    b += kGemmNR;
  }
  const __m256 va = _mm256_set1_ps(alpha);
  const __m256 vs = _mm256_set1_ps(cScale);
  const bool scaled = alpha != 1.f;
  const bool full = nr == NV * 8;
  const int n0 = nr < 8 ? nr : 8;
  const int n1 = nr - n0;
  const __m256i m0 = tailMask256(n0);
  const __m256i m1 = tailMask256(n1);
#pragma GCC unroll 6
  for (int r = 0; r < R; r++) {
    float* cr = c + r * ldc;
    __m256 v0 = scaled ? _mm256_mul_ps(acc0[r], va) : acc0[r];
    if (cScale != 0.f) v0 = _mm256_fmadd_ps(full ? _mm256_loadu_ps(cr) : _mm256_maskload_ps(cr, m0), vs, v0);
    if (ep) v0 = finish(v0, *ep, r, 0, m0, !full);
    if (full) _mm256_storeu_ps(cr, v0);
    else _mm256_maskstore_ps(cr, m0, v0);
    if (NV == 2 && (full || n1 > 0)) {
      __m256 v1 = scaled ? _mm256_mul_ps(acc1[r], va) : acc1[r];
      if (cScale != 0.f) v1 = _mm256_fmadd_ps(full ? _mm256_loadu_ps(cr + 8) : _mm256_maskload_ps(cr + 8, m1), vs, v1);
      if (ep) v1 = finish(v1, *ep, r, 8, m1, !full);
      if (full) _mm256_storeu_ps(cr + 8, v1);
      else _mm256_maskstore_ps(cr + 8, m1, v1);
    }
  }
}

using MicroFn = void (*)(int64_t, const float*, const float*, float*, int64_t, int, float, float, const TileEpilogue*);

const MicroFn kMicro[kGemmMR][2] = {
    {microAvx2<1, 1>, microAvx2<1, 2>}, {microAvx2<2, 1>, microAvx2<2, 2>},
    {microAvx2<3, 1>, microAvx2<3, 2>}, {microAvx2<4, 1>, microAvx2<4, 2>},
    {microAvx2<5, 1>, microAvx2<5, 2>}, {microAvx2<6, 1>, microAvx2<6, 2>},
};

void microDispatch(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int mr, int nr,
                   float alpha, float cScale, const TileEpilogue* ep) {
  kMicro[mr - 1][nr > 8 ? 1 : 0](kc, a, b, c, ldc, nr, alpha, cScale, ep);
}

void activationAvx2(float* x, int64_t n, const ActivationSpec& act) {
  if (act.kind == Activation::None) return;
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) _mm256_storeu_ps(x + j, activate256(_mm256_loadu_ps(x + j), act));
  if (j < n) {
    __m256i m = tailMask256(n - j);
    _mm256_maskstore_ps(x + j, m, activate256(_mm256_maskload_ps(x + j, m), act));
  }
}

void epilogueRowAvx2(float* c, int64_t n, float rowBias, const float* colBias, const float* residual,
                     float residualScale, const ActivationSpec& act) {
  const __m256 rb = _mm256_set1_ps(rowBias);
  const __m256 rs = _mm256_set1_ps(residualScale);
  int64_t j = 0;
  auto step = [&](__m256 v, int64_t at, __m256i mask, bool masked) {
    v = _mm256_add_ps(v, rb);
    if (colBias) v = _mm256_add_ps(v, masked ? _mm256_maskload_ps(colBias + at, mask) : _mm256_loadu_ps(colBias + at));
    if (residual) {
      __m256 r = masked ? _mm256_maskload_ps(residual + at, mask) : _mm256_loadu_ps(residual + at);
      v = _mm256_fmadd_ps(r, rs, v);
    }
    return activate256(v, act);
  };
  const __m256i all = _mm256_set1_epi32(-1);
  for (; j + 8 <= n; j += 8) _mm256_storeu_ps(c + j, step(_mm256_loadu_ps(c + j), j, all, false));
  if (j < n) {
    __m256i m = tailMask256(n - j);
    _mm256_maskstore_ps(c + j, m, step(_mm256_maskload_ps(c + j, m), j, m, true));
  }
}

const GemmKernelTable kAvx2Table = {"avx2_fma_6x16", microDispatch, epilogueRowAvx2, activationAvx2};

}  // namespace

const GemmKernelTable* avx2GemmKernelsOrNull() { return &kAvx2Table; }

}  // namespace kiln::cpu

#else  // no AVX2 in this build (non-x86 target)

namespace kiln::cpu {
const GemmKernelTable* avx2GemmKernelsOrNull() { return nullptr; }
}  // namespace kiln::cpu

#endif
