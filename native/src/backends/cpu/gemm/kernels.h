// The per-ISA kernel table behind sgemm.cc. The portable table is always present; the AVX2+FMA one
// (sgemm_avx2.cc) is chosen at run time when the CPU supports it. Internal to backends/cpu.
#pragma once
#include <cstdint>

#include "backends/cpu/gemm/sgemm.h"

namespace kiln::cpu {

// The epilogue of one micro-tile, applied in registers before the store (last K slice only):
//   c = act(c + rowBias[i] + colBias[j] + residualScale * residual[i*residualLd + j]).
// Pointers are at the tile's origin; any may be null.
struct TileEpilogue {
  const float* rowBias = nullptr;
  const float* colBias = nullptr;
  const float* residual = nullptr;
  int64_t residualLd = 0;
  float residualScale = 1.f;
  ActivationSpec act;
};

struct GemmKernelTable {
  const char* name;
  // One micro-tile: acc = sum over kc of a-panel (kc x MR, packed) times b-panel (kc x NR, packed);
  // then for the top-left mr x nr of the tile (mr <= MR, nr <= NR):
  //   c[i*ldc + j] = epilogue(alpha * acc + (cScale == 0 ? 0 : cScale * c[i*ldc + j])).
  // With cScale == 0 C is never read (it may hold uninitialised memory); ep may be null.
  void (*micro)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int mr, int nr,
                float alpha, float cScale, const TileEpilogue* ep);
  // One row segment of the epilogue: c[j] = act(c[j] + rowBias + colBias[j] + rs * residual[j])
  // (colBias and residual may be null; residual is contiguous here).
  void (*epilogueRow)(float* c, int64_t n, float rowBias, const float* colBias, const float* residual,
                      float residualScale, const ActivationSpec& act);
  // In-place activation over n contiguous floats.
  void (*activation)(float* x, int64_t n, const ActivationSpec& act);
  // Optional (null: the driver uses `micro` per panel): one mr x nr tile with nr up to 2*NR over two
  // packed B panels, b0 for columns [0, NR) and b1 for [NR, 2*NR); otherwise as `micro`.
  void (*microWide)(int64_t kc, const float* a, const float* b0, const float* b1, float* c, int64_t ldc, int mr,
                    int nr, float alpha, float cScale, const TileEpilogue* ep) = nullptr;
};

const GemmKernelTable& genericGemmKernels();
// Defined in sgemm_avx2.cc; nullptr when the build has no AVX2 translation unit.
const GemmKernelTable* avx2GemmKernelsOrNull();
// Defined in sgemm_avx512.cc (6x16 tiles in zmm registers, same packed layout); nullptr when the
// build has no x86-64 AVX-512 code.
const GemmKernelTable* avx512GemmKernelsOrNull();
// True when the running CPU (and OS) support AVX-512 F/DQ/VL (checked once).
bool cpuHasAvx512();
// The table for this CPU, chosen once: AVX-512, else AVX2+FMA, else portable. KILN_CPU_NO_AVX512=1
// in the environment skips the AVX-512 table.
const GemmKernelTable& gemmKernels();
// True when gemmKernels() is the AVX-512 table: other kernels with AVX-512 variants follow it.
bool useAvx512Kernels();
// sgemm() with an explicit kernel table (tests run the portable kernels on AVX2 machines too).
void sgemmWith(const GemmKernelTable& kernels, const GemmArgs& args, ThreadPool* pool);
// True when the running CPU has AVX2 and FMA (checked once).
bool cpuHasAvx2Fma();

}  // namespace kiln::cpu
