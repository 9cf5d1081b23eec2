// Device code shared by the implicit-GEMM convolutions: the mma.sync kernels (implicit_gemm_conv.cu)
// and the Hopper wgmma kernels (wgmma_conv.cu). Both gather the patch matrix A straight from X into
// the same swizzled shared-memory stages, and both finish through the same epilogue.
#pragma once
#include <cuda_runtime.h>

#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "backends/cuda/int8_ops.h"
#include "backends/cuda/quantize_device.cuh"

namespace kiln::cuda::implicit_gemm {

struct ConvArgs {
  const uint8_t* x;
  const uint8_t* w;    // [K, kPad] elements
  const float* alpha;  // int8 only
  const void* bias;    // float (int8) or half (float16); may be null for float16
  const void* z;       // [M, K] of the output type, or null
  float beta;
  int relu;
  void* y;  // [M, K]
  int m, k, kPad;
  // Where the epilogue's output tile starts, in bytes from the pipeline's first stage: 0 (it reuses
  // the stages) or past them, in which case Z's tile was copied there with the first k-step.
  int tileAt, zPrefetched;
  int h, w_, c, oh, ow, r, s;
  int strideH, strideW, padH, padW, dilH, dilW;
  // A fused 1x1 shortcut (Im2ColGeometry's c2 > 0; the TMA convolution tiles only): its input, and
  // per output channel the factor that takes the main product's accumulators into the shortcut's
  // scale before its k-steps add to them.
  const uint8_t* x2;
  const float* ratio;
  int h2, w2, c2, stride2;
};

// Shared-memory address of 16-byte chunk `chunk` of row `row` in a stage with rows of BK bytes (64 or
// 128: four or eight chunks). The chunks are XOR-ed with a function of the row so that the eight
// consecutive rows an ldmatrix phase reads at one logical chunk land in eight distinct bank groups.
// With BK = 128 this is also the layout wgmma reads as "128-byte swizzle, K-major" (8-row atoms of
// 1,024 bytes), the one TMA writes.
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

// The epilogue of one channel pair (n, n + 1) per output type: pair(p, n) loads the pair's constants
// once for every row a thread holds of it, finish<kZ>(...) finishes one row's pair; `out` holds Z's
// pair on entry when kZ (the tile's Z was copied in). kZ is a template argument so that the unrolled
// loops carry no per-pair test of p.z.
struct Int8Out {
  using Acc = int32_t;
  static constexpr int kElem = 1, kOut = 1;  // bytes per input element, per output element
  struct Pair {
    float2 alpha, bias;
    float biasedFloor;  // q8Bits' floor: -127 (the symmetric clamp) or 0 (ReLU, which implies it)
  };
  __device__ static Pair pair(const ConvArgs& p, int n) {
    return {__ldg(reinterpret_cast<const float2*>(p.alpha + n)),
            __ldg(reinterpret_cast<const float2*>(static_cast<const float*>(p.bias) + n)),
            kRoundBias + (p.relu ? 0.f : -127.f)};
  }
  template <bool kZ>
  __device__ static void finish(const ConvArgs& p, const Pair& c, Acc acc0, Acc acc1, uint8_t* out) {
    float v0 = fmaf(float(acc0), c.alpha.x, c.bias.x), v1 = fmaf(float(acc1), c.alpha.y, c.bias.y);
    uint16_t* o = reinterpret_cast<uint16_t*>(out);
    if constexpr (kZ) {
      const float2 z = int8PairToFloat2(*o);
      v0 = fmaf(p.beta, z.x, v0);
      v1 = fmaf(p.beta, z.y, v1);
    }
    *o = static_cast<uint16_t>(packQ8Pair(q8Bits(v0, c.biasedFloor), q8Bits(v1, c.biasedFloor)));
  }
};
struct HalfOut {
  using Acc = float;
  static constexpr int kElem = 2, kOut = 2;
  struct Pair {
    float2 bias;
    bool relu;
  };
  __device__ static Pair pair(const ConvArgs& p, int n) {
    const float2 bias = p.bias ? __half22float2(*reinterpret_cast<const __half2*>(static_cast<const __half*>(p.bias) + n))
                               : make_float2(0.f, 0.f);
    return {bias, p.relu != 0};
  }
  template <bool kZ>
  __device__ static void finish(const ConvArgs& p, const Pair& c, Acc acc0, Acc acc1, uint8_t* out) {
    float v0 = acc0 + c.bias.x, v1 = acc1 + c.bias.y;
    __half2* o = reinterpret_cast<__half2*>(out);
    if constexpr (kZ) {
      const float2 zz = __half22float2(*o);
      v0 += zz.x, v1 += zz.y;
    }
    if (c.relu) v0 = fmaxf(v0, 0.f), v1 = fmaxf(v1, 0.f);
    *o = __floats2half2_rn(v0, v1);
  }
};

// Copies k-step kt (BK bytes of K) of W's rows blockN .. blockN + BN - 1 into a stage in the swizzled
// K-major layout, zero past K and past the last channel: the thread copies chunk `chunk` of rows
// firstRow, + kThreads / (BK / 16), ... (kBytes: W's row length in bytes).
template <int BN, int BK, int kThreads>
__device__ __forceinline__ void copyFilterStep(const ConvArgs& p, uint32_t smemB, int kt, int chunk, int firstRow,
                                               int kBytes, int blockN) {
  constexpr int kChunks = BK / 16, kRows = BN * kChunks / kThreads, kRowStep = kThreads / kChunks;
  static_assert(BN * kChunks % kThreads == 0, "tile shape");
  const int kk = kt * BK + chunk * 16;
  const bool inK = kk < kBytes;
#pragma unroll
  for (int i = 0; i < kRows; ++i) {
    const int row = firstRow + i * kRowStep;
    const bool valid = inK && blockN + row < p.k;
    const uint8_t* src = valid ? p.w + int64_t(blockN + row) * kBytes + kk : p.w;
    copyAsync16(smemB + swizzle<BK>(row, chunk), src, valid);
  }
}

// Copies one BK-byte k-step of the A (patches) and W tiles of a BM x BN block into a shared-memory
// stage with 16-byte asynchronous copies, zero-filling outside the image, past K and past the last
// pixel or channel. A thread always copies the same chunk column of the same rows: only the filter
// tap moves with the k-step, so the rows' image coordinates are computed once.
template <class T, int BM, int BN, int BK, int kThreads>
struct PatchLoader {
  static constexpr int kChunks = BK / 16;  // per row
  static constexpr int kRowsA = BM * kChunks / kThreads;  // per thread
  static constexpr int kRowStep = kThreads / kChunks;
  static_assert(BM * kChunks % kThreads == 0 && BN * kChunks % kThreads == 0, "tile shape");

  const ConvArgs& p;
  int chunk, firstRow, cBytes, kBytes, blockN;
  const uint8_t* rowBase[kRowsA];
  int rowH[kRowsA], rowW[kRowsA];

  __device__ PatchLoader(const ConvArgs& args, int tid, int blockM, int blockN_) : p(args), blockN(blockN_) {
    chunk = tid % kChunks;
    firstRow = tid / kChunks;
    cBytes = p.c * T::kElem;
    kBytes = p.kPad * T::kElem;
#pragma unroll
    for (int i = 0; i < kRowsA; ++i) {
      const int m = blockM + firstRow + i * kRowStep;
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
  }
  __device__ int kTiles() const { return (kBytes + BK - 1) / BK; }

  // smemA / smemB: shared-memory addresses of the stage's A (BM rows) and W (BN rows).
  __device__ __forceinline__ void load(uint32_t smemA, uint32_t smemB, int kt) const {
    loadA(smemA, kt);
    loadW(smemB, kt);
  }
  // The patches alone (A's BM rows of k-step kt).
  __device__ __forceinline__ void loadA(uint32_t smemA, int kt) const {
    const int kk = kt * BK + chunk * 16;
    const bool inK = kk < kBytes;
    const int tap = kk / cBytes, ch = kk - tap * cBytes;
    const int r = tap / p.s, s = tap - r * p.s;
#pragma unroll
    for (int i = 0; i < kRowsA; ++i) {
      const int row = firstRow + i * kRowStep;
      const int ih = rowH[i] + r * p.dilH, iw = rowW[i] + s * p.dilW;
      const bool valid = inK && ih >= 0 && ih < p.h && iw >= 0 && iw < p.w_;
      const uint8_t* src = valid ? rowBase[i] + (int64_t(ih) * p.w_ + iw) * cBytes + ch : p.x;
      copyAsync16(smemA + swizzle<BK>(row, chunk), src, valid);
    }
  }
  // The filter alone (W's BN rows of k-step kt).
  __device__ __forceinline__ void loadW(uint32_t smemB, int kt) const {
    copyFilterStep<BN, BK, kThreads>(p, smemB, kt, chunk, firstRow, kBytes, blockN);
  }
};

// Bytes of shared memory the epilogue's output tile needs.
template <class T, int BM, int BN>
__host__ __device__ constexpr int epilogueBytes() {
  return BM * (BN * T::kOut + 16);
}

// The output pixel (row of Y) of each row of a tile: `Rows` is either the tile's first pixel (an
// int: rows are consecutive pixels, the tile's usual case) or a callable row -> pixel, -1 for a row
// with no pixel (the shifted-window kernel's padding rows, wgmma_conv.cu).
template <class Rows>
__device__ __forceinline__ int tilePixel(const ConvArgs& p, const Rows& rows, int row) {
  if constexpr (std::is_integral<Rows>::value) {
    const int m = rows + row;
    return m < p.m ? m : -1;
  } else {
    return rows(row);
  }
}

// Visits the 8- or 16-byte vectors (Vec) of a BM x BN output tile that are inside Y: body(offset in the
// shared tile, offset in Y). A vector is in range or out as a whole: K % 8 == 0, and K * kOut % 16 == 0
// for 16-byte vectors. `rows`: the tile's pixels (tilePixel).
// tid: the thread's index among the kThreads that share the tile.
template <class T, int BM, int BN, int kThreads, int kVec, class Rows, class Body>
__device__ __forceinline__ void forTileVectors(const ConvArgs& p, const Rows& rows, int blockN, Body&& body,
                                               int tid = threadIdx.x) {
  constexpr int kRowBytes = BN * T::kOut, kPitch = kRowBytes + 16, kVecsPerRow = kRowBytes / kVec;
  for (int v = tid; v < BM * kVecsPerRow; v += kThreads) {
    const int row = v / kVecsPerRow, col = (v - row * kVecsPerRow) * kVec;
    const int m = tilePixel(p, rows, row), n = blockN + col / T::kOut;
    if (m >= 0 && n < p.k) body(row * kPitch + col, (int64_t(m) * p.k + n) * T::kOut);
  }
}

// Starts copying Z's tile into the output tile at shared address `tile` (cp.async, in the caller's
// current group), so that the residual arrives while the block computes instead of after it. Only
// where K * kOut % 16 == 0 (the launch checks, see planSharedMemory).
template <class T, int BM, int BN, int kThreads, class Rows>
__device__ __forceinline__ void prefetchZ(const ConvArgs& p, uint32_t tile, const Rows& blockM, int blockN,
                                          int tid = threadIdx.x) {
  const uint8_t* z = static_cast<const uint8_t*>(p.z);
  forTileVectors<T, BM, BN, kThreads, 16>(
      p, blockM, blockN, [&](int at, int64_t global) { copyAsync16(tile + at, z + global, true); }, tid);
}

template <class T, int BM, int BN, int kThreads, int kVec, class Rows>
__device__ __forceinline__ void copyTileVectors(const ConvArgs& p, uint8_t* tile, const Rows& blockM, int blockN, bool toTile,
                                                int tid = threadIdx.x) {
  using Vec = typename std::conditional<kVec == 16, uint4, uint2>::type;
  uint8_t* y = static_cast<uint8_t*>(p.y);
  const uint8_t* z = static_cast<const uint8_t*>(p.z);
  forTileVectors<T, BM, BN, kThreads, kVec>(
      p, blockM, blockN,
      [&](int at, int64_t global) {
        if (toTile)
          *reinterpret_cast<Vec*>(tile + at) = *reinterpret_cast<const Vec*>(z + global);
        else
          *reinterpret_cast<Vec*>(y + global) = *reinterpret_cast<const Vec*>(tile + at);
      },
      tid);
}

// The epilogue through shared memory, so that global memory sees whole rows of the tile: Z's tile is
// read in (when there is a Z and it was not prefetched), every thread puts its finished channel pairs
// into the tile (finishPairs(tile, pitch, hasZ) calls T::finish<hasZ> on each, hasZ a
// std::bool_constant), then the block writes the tile
// out, 16 bytes per thread where K allows it, else 8. The caller has waited for its copies and
// synchronized: the pipeline's shared memory is free.
template <class T, int BM, int BN, int kThreads, class Rows, class FinishPairs>
__device__ __forceinline__ void storeThroughSharedMemory(const ConvArgs& p, uint8_t* tile, const Rows& blockM, int blockN,
                                                         FinishPairs&& finishPairs) {
  constexpr int kPitch = BN * T::kOut + 16;  // the 16 spread a phase's rows over the banks
  const bool wide = (p.k * T::kOut) % 16 == 0;
  if (p.z && !p.zPrefetched) {
    if (wide)
      copyTileVectors<T, BM, BN, kThreads, 16>(p, tile, blockM, blockN, true);
    else
      copyTileVectors<T, BM, BN, kThreads, 8>(p, tile, blockM, blockN, true);
    __syncthreads();
  }
  if (p.z)
    finishPairs(tile, kPitch, std::true_type{});
  else
    finishPairs(tile, kPitch, std::false_type{});
  __syncthreads();
  if (wide)
    copyTileVectors<T, BM, BN, kThreads, 16>(p, tile, blockM, blockN, false);
  else
    copyTileVectors<T, BM, BN, kThreads, 8>(p, tile, blockM, blockN, false);
}

// The largest dynamic shared memory a block may have on this GPU (opt-in).
inline int maxSharedMemoryPerBlock() {
  static const int bytes = [] {
    int device = 0, v = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) != cudaSuccess)
      return 48 * 1024;
    return v;
  }();
  return bytes;
}

// A launch's shared memory: only as many pipeline stages as the layer has k-steps (a 1x1 over 64
// channels has one: the other stages would only cost occupancy), then the output tile, placed past
// the stages with Z prefetched into it where that fits, else over them. Sets a.tileAt and
// a.zPrefetched; returns the bytes to launch with (`slack` added for the kernel's own alignment).
// maxBytes: the most any launch of the tile asks for, for cudaFuncAttributeMaxDynamicSharedMemorySize.
template <class T, int BM, int BN, int BK, int STAGES>
struct SharedMemoryPlan {
  static constexpr int kOut = epilogueBytes<T, BM, BN>(), kFullPipeline = STAGES * (BM + BN) * BK;
  static int maxBytes(int slack) {
    const int most = kFullPipeline + kOut + slack;
    return most < maxSharedMemoryPerBlock() ? most : maxSharedMemoryPerBlock();
  }
  static int apply(ConvArgs& a, int slack) {
    const int kTiles = (a.kPad * T::kElem + BK - 1) / BK;
    const int stages = kTiles < 1 ? 1 : (kTiles < STAGES ? kTiles : STAGES);
    const int pipeline = stages * (BM + BN) * BK;
    a.zPrefetched = a.z != nullptr && (a.k * T::kOut) % 16 == 0 && pipeline + kOut + slack <= maxBytes(slack);
    a.tileAt = a.zPrefetched ? pipeline : 0;
    return (a.zPrefetched ? pipeline + kOut : (pipeline > kOut ? pipeline : kOut)) + slack;
  }
};

}  // namespace kiln::cuda::implicit_gemm

namespace kiln::cuda {
// wgmma tile `tile` (0 .. kWgmmaTiles - 1) of the INT8 convolution (wgmma_conv.cu).
void launchWgmmaInt8Conv(int tile, const implicit_gemm::ConvArgs& args, const Im2ColGeometry& g, cudaStream_t stream);
// Whether wgmma tile `tile` is a TMA convolution tile that takes layer g with its fused shortcut.
bool wgmmaTmaConvTakesShortcut(int tile, const Im2ColGeometry& g, int64_t kOut);
}  // namespace kiln::cuda
