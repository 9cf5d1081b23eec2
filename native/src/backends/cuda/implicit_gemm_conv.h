// Convolution as an implicit GEMM on the tensor cores (implicit_gemm_conv.cu), NHWC, no workspace:
// patches are gathered from X into shared memory, the epilogue runs on the accumulators in registers.
// W is [kOut, g.kPad] elements, rows (r, s, c). Timed per layer against the libraries' kernels.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "backends/cuda/int8_ops.h"
#include "core/dtype.h"

namespace kiln::cuda {

// Block shapes to time: tiles 0 .. kImplicitGemmTiles - 1 are the mma.sync kernels for both types
// (KILN_IMPLICIT_GEMM_TILES in implicit_gemm_conv.cu); INT8 adds kWgmmaTiles Hopper wgmma kernels
// (wgmma_conv.cu) after them, which run only where wgmmaConvAvailable().
constexpr int kImplicitGemmTiles = 11;
constexpr int kWgmmaTiles = 48;
constexpr int kInt8ImplicitGemmTiles = kImplicitGemmTiles + kWgmmaTiles;
// An sm_90 GPU and a build with sm_90a code (CUDA 12+, CMAKE_CUDA_ARCHITECTURES 90a), unless
// KILN_CUDA_WGMMA=off.
bool wgmmaConvAvailable();
// Whether wgmma tile `tile` (0 .. kWgmmaTiles - 1) runs its own kernel on layer g: the ring and
// warp-specialized tiles keep all of the layer's W in shared memory and take a range of k-step
// counts, the shifted-window tiles take stride-1 undilated layers over a power of two of channels
// (16+), the TMA tiles 1x1s of stride 1 or 2 whose W slice fits in shared memory (K output
// channels), the TMA convolution tiles square filters over whole k-steps of channels;
// they hand any other layer to a resident-block tile, which timing measures anyway.
bool wgmmaTileRunsAsItself(int tile, const Im2ColGeometry& g, int64_t kOut);
// Resident: one block per output tile; Ring: persistent blocks, one patch ring across their tiles
// (the build report names them "_ring"); WarpSpecialized: persistent blocks with a producer
// warpgroup and two consumers taking tiles in turn ("_ws"); Shifted: A read straight from a copy
// of the input window, no patch matrix ("_shift"); Tma: persistent blocks whose loads and stores are
// TMA boxes, a producer thread and two consumers taking 64-row tiles in turn, or (the TMA
// convolution tiles) the two halves of each 128-row tile fed by im2col boxes ("_tma").
enum class WgmmaTileKind { Resident, Ring, WarpSpecialized, Shifted, Tma };
WgmmaTileKind wgmmaTileKind(int tile);
// Whether wgmma tile `tile` is timed and may be forced: every kind unless its switch is off
// (KILN_CUDA_WGMMA_WS, _SHIFTED, _TMA=off leave out the warp-specialized, shifted-window or TMA tiles).
bool wgmmaTileEnabled(int tile);
// Whether tile `tile` can run on this GPU for this element type and is not left out by
// KILN_CUDA_SKIP_TILES (a comma-separated list of tile numbers).
bool implicitGemmTileAvailable(int tile, DType type);
// "tiles" and one digit per INT8 tile, 1 where implicitGemmTileAvailable: the part of a persisted
// INT8 timing's key that names the candidates it ranked, so a list timed without some tiles (an
// older build, another GPU, KILN_CUDA_WGMMA_WS, _TMA or _SHIFTED set otherwise) is timed again.
std::string int8TilesKey();
// KILN_CUDA_IMPLICIT_TILE=<n>: only tile n is timed (tests cover every tile this way); -1 when unset.
int forcedImplicitGemmTile();

// Whether this geometry fits the kernel: sm_80+, int8 or float16, whole 16-byte channel groups
// (C % 16 int8, C % 8 float16), kOut % 8 == 0.
bool implicitGemmConvSupported(const Im2ColGeometry& g, int64_t kOut, DType type);

// y = q(act(alpha[k] * conv(x, w)[m, k] + bias[k] + beta * z[m, k])), int8 in and out, z may be null.
// With a fused shortcut (g.c2 > 0, z null): the tile must take it (wgmmaTileTakesShortcut), and
// acc = rint(conv(x, w)[m, k] * ratio[k]) + conv1x1(x2, w's last c2 bytes)[m, k].
void launchInt8ConvImplicitGemm(int tile, const int8_t* x, const int8_t* w, const float* alpha, const float* bias,
                                const int8_t* z, float beta, bool relu, int8_t* y, const Im2ColGeometry& g,
                                int64_t kOut, cudaStream_t stream, const int8_t* x2 = nullptr,
                                const float* ratio = nullptr);
// Whether INT8 tile `tile` (implicit-GEMM numbering) runs layer g with its fused shortcut (g.c2 > 0):
// the TMA convolution tiles, where they take both inputs' geometry.
bool wgmmaTileTakesShortcut(int tile, const Im2ColGeometry& g, int64_t kOut);
// Whether some available tile takes layer g with its fused shortcut: the INT8 lowering fuses a
// downsample into the convolution that adds it only then, and only with KILN_CUDA_INT8_SHORTCUT=on
// (off by default until the fused path has run on a GPU).
bool int8ShortcutFusable(const Im2ColGeometry& g, int64_t kOut);
// y = act(conv(x, w)[m, k] + bias[k] + z[m, k]) in float16 (float32 accumulation); bias and z may be null.
void launchHalfConvImplicitGemm(int tile, const void* x, const void* w, const void* bias, const void* z, bool relu,
                                void* y, const Im2ColGeometry& g, int64_t kOut, cudaStream_t stream);

}  // namespace kiln::cuda
