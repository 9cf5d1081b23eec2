// Portable GEMM kernels for CPUs without AVX2+FMA (and the reference the AVX2 ones are tested
// against): plain loops the compiler auto-vectorises for the baseline ISA.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "backends/cpu/gemm/kernels.h"

namespace kiln::cpu {
namespace {

float activateScalar(float x, const ActivationSpec& act);

void microGeneric(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int mr, int nr,
                  float alpha, float cScale, const TileEpilogue* ep) {
  float acc[kGemmMR][kGemmNR] = {};
  for (int64_t k = 0; k < kc; k++) {
    const float* bk = b + k * kGemmNR;
    const float* ak = a + k * kGemmMR;
    for (int r = 0; r < kGemmMR; r++) {
      const float av = ak[r];
      for (int j = 0; j < kGemmNR; j++) acc[r][j] += av * bk[j];
    }
  }
  for (int r = 0; r < mr; r++) {
    float* cr = c + r * ldc;
    for (int j = 0; j < nr; j++) {
      float v = alpha * acc[r][j] + (cScale == 0.f ? 0.f : cScale * cr[j]);
      if (ep) {
        if (ep->rowBias) v += ep->rowBias[r];
        if (ep->colBias) v += ep->colBias[j];
        if (ep->residual) v += ep->residualScale * ep->residual[r * ep->residualLd + j];
        v = activateScalar(v, ep->act);
      }
      cr[j] = v;
    }
  }
}

float activateScalar(float x, const ActivationSpec& act) {
  switch (act.kind) {
    case Activation::None: return x;
    case Activation::Relu: return x < 0.f ? 0.f : x;
    case Activation::LeakyRelu: return x < 0.f ? x * act.alpha : x;
    case Activation::Sigmoid: return 1.f / (1.f + std::exp(-x));
    case Activation::Tanh: return std::tanh(x);
    case Activation::Clip: return std::min(std::max(x, act.alpha), act.beta);
    case Activation::HardSigmoid: return std::min(std::max(x * act.alpha + act.beta, 0.f), 1.f);
    case Activation::HardSwish: return x * std::min(std::max(x / 6.f + 0.5f, 0.f), 1.f);
    case Activation::Gelu: return 0.5f * x * (1.f + std::erf(x * 0.70710678118654752f));
    case Activation::GeluTanh:
      return 0.5f * x * (1.f + std::tanh(0.79788456080286536f * (x + 0.044715f * x * x * x)));
    case Activation::Silu: return x / (1.f + std::exp(-x));
  }
  return x;
}

void activationGeneric(float* x, int64_t n, const ActivationSpec& act) {
  if (act.kind == Activation::None) return;
  for (int64_t i = 0; i < n; i++) x[i] = activateScalar(x[i], act);
}

void epilogueRowGeneric(float* c, int64_t n, float rowBias, const float* colBias, const float* residual,
                        float residualScale, const ActivationSpec& act) {
  for (int64_t j = 0; j < n; j++) {
    float v = c[j] + rowBias;
    if (colBias) v += colBias[j];
    if (residual) v += residualScale * residual[j];
    c[j] = v;
  }
  activationGeneric(c, n, act);
}

const GemmKernelTable kGenericTable = {"generic_6x16", microGeneric, epilogueRowGeneric, activationGeneric};

}  // namespace

const GemmKernelTable& genericGemmKernels() { return kGenericTable; }

bool cpuHasAvx2Fma() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
#else
  return false;
#endif
}

const GemmKernelTable& gemmKernels() {
  static const GemmKernelTable* table = [] {
    const GemmKernelTable* avx512 = avx512GemmKernelsOrNull();
    const char* no512 = std::getenv("KILN_CPU_NO_AVX512");
    if (avx512 && cpuHasAvx512() && !(no512 && *no512 && std::strcmp(no512, "0") != 0)) return avx512;
    const GemmKernelTable* avx2 = avx2GemmKernelsOrNull();
    return (avx2 && cpuHasAvx2Fma()) ? avx2 : &kGenericTable;
  }();
  return *table;
}

bool useAvx512Kernels() {
  static const bool use = avx512GemmKernelsOrNull() != nullptr && &gemmKernels() == avx512GemmKernelsOrNull();
  return use;
}

void applyActivation(float* x, int64_t n, const ActivationSpec& act) { gemmKernels().activation(x, n, act); }

const char* sgemmTactic() { return gemmKernels().name; }

}  // namespace kiln::cpu
