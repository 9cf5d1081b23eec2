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

#include <cstdint>
#include <cstdlib>
#include <string>

#include "backends/cuda/cuda_common.h"
#include "backends/cuda/implicit_gemm_conv.h"

namespace kiln::cuda {
namespace {

// Shared-memory address of 16-byte chunk `chunk` of row `row` in a stage with rows of BK bytes (64 or
// 128: four or eight chunks). The chunks are XOR-ed with a function of the row so that the eight
// consecutive rows an ldmatrix phase reads at one logical chunk land in eight distinct bank groups.
template <int BK>
__device__ __forceinline__ int swizzle(int row, int chunk) {
  static_assert(BK == 64 || BK == 128, "rows of 64 or 128 bytes");
  if constexpr (BK == 64) return row * BK + ((chunk ^ ((row >> 1) & 3)) << 4);
  return row * BK + ((chunk ^ (row & 7)) << 4);
}

__device__ __forceinline__ void copyAsync16(uint32_t dst, const void* src, bool valid) {
#if __CUDA_ARCH__ >= 800
  const int bytes = valid ? 16 : 0;  // 0: the 16 bytes are zero-filled
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(bytes));
#endif
}
__device__ __forceinline__ void commitAsync() {
#if __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::);
#endif
}
template <int N>
__device__ __forceinline__ void waitAsync() {
#if __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
#endif
}
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

__device__ __forceinline__ int8_t q8(float v) {
  v = rintf(v);
  v = fminf(127.f, fmaxf(-127.f, v));
  return static_cast<int8_t>(static_cast<int>(v));
}

struct ConvArgs {
  const uint8_t* x;
  const uint8_t* w;  // [K, kPad] elements
  const float* alpha;  // int8 only
  const void* bias;    // float (int8) or half (float16); may be null for float16
  const void* z;       // [M, K] of the output type, or null
  float beta;
  int relu;
  void* y;  // [M, K]
  int m, k, kPad;
  int h, w_, c, oh, ow, s;
  int strideH, strideW, padH, padW, dilH, dilW;
};

__device__ __forceinline__ void mmaF16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#if __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}

// What differs between the two element types: the product and the epilogue of one channel pair.
struct Int8Traits {
  using Acc = int32_t;
  static constexpr int kElem = 1, kOut = 1;  // bytes per input element, per output element
  __device__ static void mma(Acc (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) { mmaS8(d, a, b0, b1); }
  // acc0/acc1 for channels n, n + 1; `out` holds Z's pair on entry when there is a Z.
  __device__ static void finish(const ConvArgs& p, int n, Acc acc0, Acc acc1, uint8_t* out) {
    const float2 al = *reinterpret_cast<const float2*>(p.alpha + n);
    const float2 bi = *reinterpret_cast<const float2*>(static_cast<const float*>(p.bias) + n);
    float v0 = float(acc0) * al.x + bi.x, v1 = float(acc1) * al.y + bi.y;
    char2* o = reinterpret_cast<char2*>(out);
    if (p.z) {
      const char2 zz = *o;
      v0 += p.beta * float(zz.x);
      v1 += p.beta * float(zz.y);
    }
    if (p.relu) v0 = fmaxf(v0, 0.f), v1 = fmaxf(v1, 0.f);
    *o = make_char2(q8(v0), q8(v1));
  }
};
struct HalfTraits {
  using Acc = float;
  static constexpr int kElem = 2, kOut = 2;
  __device__ static void mma(Acc (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) { mmaF16(d, a, b0, b1); }
  __device__ static void finish(const ConvArgs& p, int n, Acc acc0, Acc acc1, uint8_t* out) {
    float v0 = acc0, v1 = acc1;
    if (p.bias) {
      const float2 b = __half22float2(*reinterpret_cast<const __half2*>(static_cast<const __half*>(p.bias) + n));
      v0 += b.x, v1 += b.y;
    }
    __half2* o = reinterpret_cast<__half2*>(out);
    if (p.z) {
      const float2 zz = __half22float2(*o);
      v0 += zz.x, v1 += zz.y;
    }
    if (p.relu) v0 = fmaxf(v0, 0.f), v1 = fmaxf(v1, 0.f);
    *o = __floats2half2_rn(v0, v1);
  }
};

template <class T, int BM, int BN, int WM, int WN, int STAGES, int BK>
__global__ void __launch_bounds__((BM / WM) * (BN / WN) * 32) convImplicitGemm(ConvArgs p) {
  constexpr int kWarpsN = BN / WN, kThreads = (BM / WM) * kWarpsN * 32;
  constexpr int kTilesM = WM / 16, kTilesN = WN / 8;
  constexpr int kChunks = BK / 16;                                                // per row
  constexpr int kRowsA = BM * kChunks / kThreads, kRowsB = BN * kChunks / kThreads;  // per thread
  constexpr int kRowStep = kThreads / kChunks;
  static_assert(BM * kChunks % kThreads == 0 && BN * kChunks % kThreads == 0 && kTilesN % 2 == 0, "tile shape");
  extern __shared__ __align__(128) uint8_t smem[];
  uint8_t* smemA = smem;
  uint8_t* smemB = smem + STAGES * BM * BK;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int warpM = warp / kWarpsN, warpN = warp % kWarpsN;
  const int blockM = blockIdx.x * BM, blockN = blockIdx.y * BN;
  // This thread always copies the same chunk column of the same rows; only the tap moves with k.
  const int chunk = tid % kChunks;
  const int cBytes = p.c * T::kElem, kBytes = p.kPad * T::kElem;
  const uint8_t* rowBase[kRowsA];
  int rowH[kRowsA], rowW[kRowsA];
#pragma unroll
  for (int i = 0; i < kRowsA; ++i) {
    const int m = blockM + tid / kChunks + i * kRowStep;
    if (m < p.m) {
      const int ow = m % p.ow, t = m / p.ow, oh = t % p.oh, n = t / p.oh;
      rowBase[i] = p.x + int64_t(n) * p.h * p.w_ * cBytes;
      rowH[i] = oh * p.strideH - p.padH;
      rowW[i] = ow * p.strideW - p.padW;
    } else {
      rowBase[i] = p.x;
      rowH[i] = -(1 << 30);  // never inside the image: zero-filled
      rowW[i] = 0;
    }
  }
  const int kTiles = (kBytes + BK - 1) / BK;

  auto loadTile = [&](int stage, int kt) {
    const int kk = kt * BK + chunk * 16;
    const bool inK = kk < kBytes;
    const int tap = kk / cBytes, ch = kk - tap * cBytes;
    const int r = tap / p.s, s = tap - r * p.s;
    const uint32_t a0 = static_cast<uint32_t>(__cvta_generic_to_shared(smemA + stage * BM * BK));
#pragma unroll
    for (int i = 0; i < kRowsA; ++i) {
      const int row = tid / kChunks + i * kRowStep;
      const int ih = rowH[i] + r * p.dilH, iw = rowW[i] + s * p.dilW;
      const bool valid = inK && ih >= 0 && ih < p.h && iw >= 0 && iw < p.w_;
      const uint8_t* src = valid ? rowBase[i] + (int64_t(ih) * p.w_ + iw) * cBytes + ch : p.x;
      copyAsync16(a0 + swizzle<BK>(row, chunk), src, valid);
    }
    const uint32_t b0 = static_cast<uint32_t>(__cvta_generic_to_shared(smemB + stage * BN * BK));
#pragma unroll
    for (int i = 0; i < kRowsB; ++i) {
      const int row = tid / kChunks + i * kRowStep;
      const bool valid = inK && blockN + row < p.k;
      const uint8_t* src = valid ? p.w + int64_t(blockN + row) * kBytes + kk : p.w;
      copyAsync16(b0 + swizzle<BK>(row, chunk), src, valid);
    }
  };

  typename T::Acc acc[kTilesM][kTilesN][4];
#pragma unroll
  for (int i = 0; i < kTilesM; ++i)
#pragma unroll
    for (int j = 0; j < kTilesN; ++j) acc[i][j][0] = acc[i][j][1] = acc[i][j][2] = acc[i][j][3] = 0;

#pragma unroll
  for (int st = 0; st < STAGES - 1; ++st) {
    if (st < kTiles) loadTile(st, st);
    commitAsync();
  }
  for (int kt = 0; kt < kTiles; ++kt) {
    waitAsync<STAGES - 2>();
    __syncthreads();  // tile kt has landed for every thread; stage (kt - 1) % STAGES is free again
    if (kt + STAGES - 1 < kTiles) loadTile((kt + STAGES - 1) % STAGES, kt + STAGES - 1);
    commitAsync();
    const int stage = kt % STAGES;
    const uint32_t aBase = static_cast<uint32_t>(__cvta_generic_to_shared(smemA + stage * BM * BK));
    const uint32_t bBase = static_cast<uint32_t>(__cvta_generic_to_shared(smemB + stage * BN * BK));
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

  // Epilogue through shared memory, so that global memory sees whole rows of the tile: each warp
  // puts its finished values into an output tile, then the block writes it out (and reads Z in)
  // eight bytes per thread. Accumulator (i, j, e) is row g (+8 for e >= 2), channel
  // 2 * (lane % 4) + (e & 1) of the m16n8 product.
  constexpr int kRowBytes = BN * T::kOut, kPitch = kRowBytes + 16;  // the 16 spread a phase's rows over the banks
  uint8_t* tile = smem;
  constexpr int kVecsPerRow = kRowBytes / 8;
  uint8_t* y = static_cast<uint8_t*>(p.y);
  const uint8_t* z = static_cast<const uint8_t*>(p.z);
  auto forTileVectors = [&](auto&& body) {
    for (int v = tid; v < BM * kVecsPerRow; v += kThreads) {
      const int row = v / kVecsPerRow, col = (v - row * kVecsPerRow) * 8;
      const int m = blockM + row, n = blockN + col / T::kOut;
      // K % 8 == 0: a vector (8 int8 or 4 float16 channels) is in range or out as a whole.
      if (m < p.m && n < p.k) body(row * kPitch + col, (int64_t(m) * p.k + n) * T::kOut);
    }
  };
  if (z) {
    forTileVectors([&](int at, int64_t global) { *reinterpret_cast<uint2*>(tile + at) = *reinterpret_cast<const uint2*>(z + global); });
    __syncthreads();
  }
  const int g = lane >> 2, cpair = (lane & 3) * 2;
#pragma unroll
  for (int j = 0; j < kTilesN; ++j) {
    const int col = warpN * WN + j * 8 + cpair, n = blockN + col;
    if (n >= p.k) continue;  // K % 8 == 0: both channels of the pair are in range together
#pragma unroll
    for (int i = 0; i < kTilesM; ++i) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int row = warpM * WM + i * 16 + g + half * 8;
        T::finish(p, n, acc[i][j][half * 2], acc[i][j][half * 2 + 1], tile + row * kPitch + col * T::kOut);
      }
    }
  }
  __syncthreads();
  forTileVectors([&](int at, int64_t global) { *reinterpret_cast<uint2*>(y + global) = *reinterpret_cast<const uint2*>(tile + at); });
}

template <class T, int BM, int BN, int WM, int WN, int STAGES, int BK>
void launchTile(const ConvArgs& args, cudaStream_t stream) {
  constexpr int threads = (BM / WM) * (BN / WN) * 32;
  constexpr int pipelineBytes = STAGES * (BM + BN) * BK, epilogueBytes = BM * (BN * T::kOut + 16);
  constexpr int smemBytes = pipelineBytes > epilogueBytes ? pipelineBytes : epilogueBytes;
  auto kernel = convImplicitGemm<T, BM, BN, WM, WN, STAGES, BK>;
  // Set once per instantiation, before any capture (the first launch is a timing run).
  static const cudaError_t attr = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smemBytes);
  KILN_CUDA_CHECK(attr);
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

using Launch = void (*)(const ConvArgs&, cudaStream_t);
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
  a.oh = static_cast<int>(g.oh), a.ow = static_cast<int>(g.ow), a.s = g.s;
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
  KILN_CHECK(tile >= 0 && tile < kImplicitGemmTiles, InvalidArgument,
             std::string("KILN_CUDA_IMPLICIT_TILE=") + v + ": tiles are 0.." + std::to_string(kImplicitGemmTiles - 1));
  return tile;
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
                                int64_t kOut, cudaStream_t stream) {
  ConvArgs a = argsFor(x, w, bias, z, relu, y, g, kOut);
  a.alpha = alpha, a.beta = beta;
  launchWith(kInt8Launches, tile, a, stream);
}

void launchHalfConvImplicitGemm(int tile, const void* x, const void* w, const void* bias, const void* z, bool relu,
                                void* y, const Im2ColGeometry& g, int64_t kOut, cudaStream_t stream) {
  launchWith(kHalfLaunches, tile, argsFor(x, w, bias, z, relu, y, g, kOut), stream);
}

}  // namespace kiln::cuda
