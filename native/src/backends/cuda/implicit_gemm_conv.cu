// Convolution as an implicit GEMM on the tensor cores, for NHWC int8 (INT8 engines) and float16:
// Y[m, k] = epilogue(sum_kk A[m, kk] W[k, kk]), where m runs over the output pixels (n, oh, ow) and kk
// over the filter taps (r, s, c). INT8: s8 x s8 -> s32 products and the requantizing epilogue
// q(act(alpha[k] * acc + bias[k] + beta * Z[m, k])). Float16: f16 x f16 -> f32 products and
// act(acc + bias[k] + Z[m, k]) in float16.
//
// The patch matrix A is never written out: each block gathers its rows straight from X with 16-byte
// asynchronous copies (cp.async, zero-filled outside the image), so a 3x3 layer reads X through L2
// instead of writing and re-reading a 9x larger im2col buffer, and the accumulators go from registers
// to the output without a round trip through memory (ResNet-50 INT8 at batch 256 spent 1.8 ms per
// layer1 3x3 convolution on im2col + cuBLASLt + requantize).
//
// Tiling: a block computes a BM x BN tile of Y in k-steps of BK bytes (64 or 128), with STAGES tiles of
// A and W in flight in shared memory; each warp owns a WM x WN sub-tile made of mma.sync products
// (m16n8k32 for int8, m16n8k16 for float16: both take 32 bytes of K) fed by ldmatrix from swizzled rows
// (see swizzle). The epilogue stages the output tile in shared memory so that global
// memory sees whole rows.
//
// Needs sm_80 or newer, 16-byte channel groups (C % 16 int8, C % 8 float16: a chunk never straddles
// two taps) and K % 8 == 0.
#include <cuda_runtime.h>

#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "backends/cuda/cuda_common.h"
#include "backends/cuda/implicit_gemm_conv.h"
#include "backends/cuda/implicit_gemm_device.cuh"

namespace kiln::cuda {
namespace {

using namespace implicit_gemm;

__device__ __forceinline__ void loadMatrixX4(uint32_t addr, uint32_t (&r)[4]) {
#if __CUDA_ARCH__ >= 800
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
#endif
}
__device__ __forceinline__ void mmaS8(int32_t (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#if __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}
__device__ __forceinline__ void mmaF16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#if __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}

// The element types: the output type's epilogue (implicit_gemm_device.cuh) and the product.
struct Int8Traits : Int8Out {
  __device__ static void mma(Acc (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) { mmaS8(d, a, b0, b1); }
};
struct HalfTraits : HalfOut {
  __device__ static void mma(Acc (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) { mmaF16(d, a, b0, b1); }
};

template <class T, int BM, int BN, int WM, int WN, int STAGES, int BK>
__global__ void __launch_bounds__((BM / WM) * (BN / WN) * 32) convImplicitGemm(ConvArgs p) {
  constexpr int kWarpsN = BN / WN, kThreads = (BM / WM) * kWarpsN * 32;
  constexpr int kTilesM = WM / 16, kTilesN = WN / 8;
  static_assert(kTilesN % 2 == 0, "tile shape");
  extern __shared__ __align__(128) uint8_t smem[];
  // Stage s holds its A tile then its W tile, so a launch that gives the block fewer stages than
  // STAGES (SharedMemoryPlan: only as many as the layer has k-steps) uses a prefix of the memory.
  auto stageA = [&](int stage) { return smem + stage * (BM + BN) * BK; };
  auto stageB = [&](int stage) { return smem + stage * (BM + BN) * BK + BM * BK; };

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int warpM = warp / kWarpsN, warpN = warp % kWarpsN;
  const int blockM = blockIdx.x * BM, blockN = blockIdx.y * BN;
  const PatchLoader<T, BM, BN, BK, kThreads> loader(p, tid, blockM, blockN);
  const int kTiles = loader.kTiles();
  auto loadTile = [&](int stage, int kt) {
    loader.load(static_cast<uint32_t>(__cvta_generic_to_shared(stageA(stage))),
                static_cast<uint32_t>(__cvta_generic_to_shared(stageB(stage))), kt);
  };

  typename T::Acc acc[kTilesM][kTilesN][4];
#pragma unroll
  for (int i = 0; i < kTilesM; ++i)
#pragma unroll
    for (int j = 0; j < kTilesN; ++j) acc[i][j][0] = acc[i][j][1] = acc[i][j][2] = acc[i][j][3] = 0;

#pragma unroll
  for (int st = 0; st < STAGES - 1; ++st) {
    if (st < kTiles) loadTile(st, st);
    if (st == 0 && p.zPrefetched)
      prefetchZ<T, BM, BN, kThreads>(p, static_cast<uint32_t>(__cvta_generic_to_shared(smem + p.tileAt)), blockM, blockN);
    commitAsync();
  }
  for (int kt = 0; kt < kTiles; ++kt) {
    waitAsync<STAGES - 2>();
    __syncthreads();  // tile kt has landed for every thread; stage (kt - 1) % STAGES is free again
    if (kt + STAGES - 1 < kTiles) loadTile((kt + STAGES - 1) % STAGES, kt + STAGES - 1);
    commitAsync();
    const int stage = kt % STAGES;
    const uint32_t aBase = static_cast<uint32_t>(__cvta_generic_to_shared(stageA(stage)));
    const uint32_t bBase = static_cast<uint32_t>(__cvta_generic_to_shared(stageB(stage)));
#pragma unroll
    for (int ks = 0; ks < BK / 32; ++ks) {
      uint32_t a[kTilesM][4], b[kTilesN / 2][4];
#pragma unroll
      for (int i = 0; i < kTilesM; ++i) {
        // Matrices: rows 0-7 / 8-15 of the m16 tile, bytes 0-15 / 16-31 of the k32 step.
        const int row = warpM * WM + i * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
        loadMatrixX4(aBase + swizzle<BK>(row, ks * 2 + (lane >> 4)), a[i]);
      }
#pragma unroll
      for (int j = 0; j < kTilesN / 2; ++j) {
        // Matrices: channels 0-7 bytes 0-15, channels 0-7 bytes 16-31, then channels 8-15 likewise.
        const int row = warpN * WN + j * 16 + (lane & 7) + (lane >> 4) * 8;
        loadMatrixX4(bBase + swizzle<BK>(row, ks * 2 + ((lane >> 3) & 1)), b[j]);
      }
#pragma unroll
      for (int i = 0; i < kTilesM; ++i)
#pragma unroll
        for (int j = 0; j < kTilesN; ++j) T::mma(acc[i][j], a[i], b[j / 2][(j & 1) * 2], b[j / 2][(j & 1) * 2 + 1]);
    }
  }
  waitAsync<0>();
  __syncthreads();  // every warp is done with the stages: the epilogue reuses their shared memory

  // Accumulator (i, j, e) is row g (+8 for e >= 2), channel 2 * (lane % 4) + (e & 1) of the m16n8 product.
  const int g = lane >> 2, cpair = (lane & 3) * 2;
  storeThroughSharedMemory<T, BM, BN, kThreads>(p, smem + p.tileAt, blockM, blockN, [&](uint8_t* tile, int pitch, auto hasZ) {
#pragma unroll
    for (int j = 0; j < kTilesN; ++j) {
      const int col = warpN * WN + j * 8 + cpair, n = blockN + col;
      if (n >= p.k) continue;  // K % 8 == 0: both channels of the pair are in range together
      const typename T::Pair c = T::pair(p, n);
#pragma unroll
      for (int i = 0; i < kTilesM; ++i) {
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          const int row = warpM * WM + i * 16 + g + half * 8;
          T::template finish<hasZ>(p, c, acc[i][j][half * 2], acc[i][j][half * 2 + 1], tile + row * pitch + col * T::kOut);
        }
      }
    }
  });
}

template <class T, int BM, int BN, int WM, int WN, int STAGES, int BK>
void launchTile(ConvArgs args, cudaStream_t stream) {
  constexpr int threads = (BM / WM) * (BN / WN) * 32;
  using Plan = SharedMemoryPlan<T, BM, BN, BK, STAGES>;
  auto kernel = convImplicitGemm<T, BM, BN, WM, WN, STAGES, BK>;
  // Set once per instantiation, before any capture (the first launch is a timing run).
  static const cudaError_t attr = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, Plan::maxBytes(0));
  KILN_CUDA_CHECK(attr);
  const int smemBytes = Plan::apply(args, 0);
  dim3 grid(static_cast<unsigned>((args.m + BM - 1) / BM), static_cast<unsigned>((args.k + BN - 1) / BN));
  kernel<<<grid, threads, smemBytes, stream>>>(args);
}

}  // namespace

// Block shapes (BM x BN, warp tile WM x WN, pipeline stages, bytes of K per stage), timed per layer:
// wide tiles reuse X across more output channels, small ones fill the GPU when the layer has few
// pixels; two stages and 32x32 warp tiles (fewer registers) leave room for more resident warps where
// K is short and the layer is bound by memory latency; 128-byte K steps halve the barriers per
// product where K is long.
#define KILN_IMPLICIT_GEMM_TILES(T, X) \
  X(T, 128, 128, 64, 64, 4, 64)        \
  X(T, 128, 64, 64, 32, 4, 64)         \
  X(T, 64, 64, 32, 32, 4, 64)          \
  X(T, 256, 128, 64, 64, 3, 64)        \
  X(T, 128, 256, 64, 64, 3, 64)        \
  X(T, 128, 128, 64, 64, 2, 64)        \
  X(T, 128, 64, 32, 32, 2, 64)         \
  X(T, 64, 128, 32, 32, 2, 64)         \
  X(T, 128, 128, 64, 64, 3, 128)       \
  X(T, 128, 64, 64, 32, 3, 128)        \
  X(T, 256, 128, 64, 64, 3, 128)

namespace {

using Launch = void (*)(ConvArgs, cudaStream_t);
#define KILN_TILE_LAUNCH(T, BM, BN, WM, WN, ST, BK) &launchTile<T, BM, BN, WM, WN, ST, BK>,
const Launch kInt8Launches[] = {KILN_IMPLICIT_GEMM_TILES(Int8Traits, KILN_TILE_LAUNCH)};
const Launch kHalfLaunches[] = {KILN_IMPLICIT_GEMM_TILES(HalfTraits, KILN_TILE_LAUNCH)};
#undef KILN_TILE_LAUNCH
static_assert(sizeof(kInt8Launches) / sizeof(kInt8Launches[0]) == kImplicitGemmTiles, "kImplicitGemmTiles");

ConvArgs argsFor(const void* x, const void* w, const void* bias, const void* z, bool relu, void* y,
                 const Im2ColGeometry& g, int64_t kOut) {
  ConvArgs a{};
  a.x = static_cast<const uint8_t*>(x), a.w = static_cast<const uint8_t*>(w), a.bias = bias, a.z = z;
  a.relu = relu ? 1 : 0, a.y = y, a.beta = 1.f;
  a.m = static_cast<int>(g.n * g.oh * g.ow), a.k = static_cast<int>(kOut), a.kPad = static_cast<int>(g.kPad);
  a.h = static_cast<int>(g.h), a.w_ = static_cast<int>(g.w), a.c = static_cast<int>(g.c);
  a.oh = static_cast<int>(g.oh), a.ow = static_cast<int>(g.ow), a.r = g.r, a.s = g.s;
  a.strideH = g.strideH, a.strideW = g.strideW, a.padH = g.padH, a.padW = g.padW, a.dilH = g.dilH, a.dilW = g.dilW;
  return a;
}

void launchWith(const Launch* launches, int tile, const ConvArgs& a, cudaStream_t stream) {
  if (a.m == 0 || a.k == 0) return;
  KILN_CHECK(tile >= 0 && tile < kImplicitGemmTiles, Internal, "no implicit-GEMM convolution tile " + std::to_string(tile));
  launches[tile](a, stream);
  KILN_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

int forcedImplicitGemmTile() {
  const char* v = std::getenv("KILN_CUDA_IMPLICIT_TILE");
  if (v == nullptr || *v == '\0') return -1;
  const int tile = std::atoi(v);
  KILN_CHECK(tile >= 0 && tile < kInt8ImplicitGemmTiles, InvalidArgument,
             std::string("KILN_CUDA_IMPLICIT_TILE=") + v + ": tiles are 0.." + std::to_string(kInt8ImplicitGemmTiles - 1) +
                 " (from " + std::to_string(kImplicitGemmTiles) + " on: INT8 on sm_90 only)");
  return tile;
}

// KILN_CUDA_SKIP_TILES=52,57: tiles left out of timing (a tile that fails on some GPU or driver,
// until it is fixed); the timing cache's key (int8TilesKey) says so.
static bool tileSkipped(int tile) {
  static const std::vector<int> skipped = [] {
    std::vector<int> list;
    const char* v = std::getenv("KILN_CUDA_SKIP_TILES");
    for (const char* at = v; at != nullptr && *at != '\0';) {
      char* end = nullptr;
      const long n = std::strtol(at, &end, 10);
      if (end == at) break;
      list.push_back(int(n));
      at = *end == ',' ? end + 1 : end;
    }
    return list;
  }();
  return std::find(skipped.begin(), skipped.end(), tile) != skipped.end();
}

bool implicitGemmTileAvailable(int tile, DType type) {
  if (tileSkipped(tile)) return false;
  if (tile >= 0 && tile < kImplicitGemmTiles) return true;
  return type == DType::Int8 && tile >= kImplicitGemmTiles && tile < kInt8ImplicitGemmTiles && wgmmaConvAvailable() &&
         wgmmaTileEnabled(tile - kImplicitGemmTiles);
}

std::string int8TilesKey() {
  std::string key = "tiles";
  for (int tile = 0; tile < kInt8ImplicitGemmTiles; ++tile) key += implicitGemmTileAvailable(tile, DType::Int8) ? '1' : '0';
  return key;
}

bool implicitGemmConvSupported(const Im2ColGeometry& g, int64_t kOut, DType type) {
  static const bool tensorCores = [] {
    int device = 0, major = 0;
    if (cudaGetDevice(&device) != cudaSuccess) return false;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) return false;
    return major >= 8;
  }();
  if (type != DType::Int8 && type != DType::Float16) return false;
  const int64_t e = type == DType::Int8 ? 1 : 2;
  const int64_t m = g.n * g.oh * g.ow;
  return tensorCores && (g.c * e) % 16 == 0 && kOut % 8 == 0 && (g.kPad * e) % 16 == 0 && g.kPad >= g.r * g.s * g.c &&
         m < (int64_t(1) << 31) && kOut < (1 << 20) && g.kPad * e < (1 << 30) && g.h * g.w * g.c * e < (int64_t(1) << 31);
}

void launchInt8ConvImplicitGemm(int tile, const int8_t* x, const int8_t* w, const float* alpha, const float* bias,
                                const int8_t* z, float beta, bool relu, int8_t* y, const Im2ColGeometry& g,
                                int64_t kOut, cudaStream_t stream, const int8_t* x2, const float* ratio) {
  ConvArgs a = argsFor(x, w, bias, z, relu, y, g, kOut);
  a.alpha = alpha, a.beta = beta;
  if (g.c2 > 0) {
    // Which wgmma tiles take the layer launchWgmmaInt8Conv checks.
    KILN_CHECK(x2 != nullptr && ratio != nullptr && z == nullptr && tile >= kImplicitGemmTiles &&
                   tile < kInt8ImplicitGemmTiles,
               Internal,
               "INT8 tile " + std::to_string(tile) + " does not take a fused shortcut convolution");
    a.x2 = reinterpret_cast<const uint8_t*>(x2), a.ratio = ratio;
    a.h2 = int(g.h2), a.w2 = int(g.w2), a.c2 = int(g.c2), a.stride2 = g.stride2;
  }
  if (tile >= kImplicitGemmTiles && tile < kInt8ImplicitGemmTiles) {
    if (a.m == 0 || a.k == 0) return;
    launchWgmmaInt8Conv(tile - kImplicitGemmTiles, a, g, stream);
    KILN_CUDA_CHECK(cudaGetLastError());
    return;
  }
  launchWith(kInt8Launches, tile, a, stream);
}

bool wgmmaTileTakesShortcut(int tile, const Im2ColGeometry& g, int64_t kOut) {
  return tile >= kImplicitGemmTiles && tile < kInt8ImplicitGemmTiles && implicitGemmTileAvailable(tile, DType::Int8) &&
         wgmmaTmaConvTakesShortcut(tile - kImplicitGemmTiles, g, kOut);
}

bool int8ShortcutFusable(const Im2ColGeometry& g, int64_t kOut) {
  // Off by default until the fused tiles have passed kiln_cuda_tests on a GPU (2026-12-07: written,
  // compiled for sm_90a, not yet run): KILN_CUDA_INT8_SHORTCUT=on turns the fusion on.
  if (!envIs("KILN_CUDA_INT8_SHORTCUT", "on")) return false;
  for (int tile = kImplicitGemmTiles; tile < kInt8ImplicitGemmTiles; ++tile)
    if (wgmmaTileTakesShortcut(tile, g, kOut)) return true;
  return false;
}

void launchHalfConvImplicitGemm(int tile, const void* x, const void* w, const void* bias, const void* z, bool relu,
                                void* y, const Im2ColGeometry& g, int64_t kOut, cudaStream_t stream) {
  launchWith(kHalfLaunches, tile, argsFor(x, w, bias, z, relu, y, g, kOut), stream);
}

}  // namespace kiln::cuda
