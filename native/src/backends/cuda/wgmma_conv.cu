// INT8 convolution as an implicit GEMM on Hopper's warpgroup tensor-core products (wgmma, sm_90a),
// the same computation as implicit_gemm_conv.cu's mma.sync kernels:
// Y[m, k] = q(act(alpha[k] * sum_kk A[m, kk] W[k, kk] + bias[k] + beta * Z[m, k])).
//
// Why a second kernel: on the H100, mma.sync runs the tensor cores at about half the rate wgmma
// does, so an INT8 layer on mma.sync is no faster than the same layer in float16 on cuDNN's Hopper
// kernels. Here each warpgroup (four warps) issues m64nBNk32 products that read both operands from
// shared memory, asynchronously: while one k-step's products run, the next stages' patches are in
// flight and nothing waits on registers.
//
// Stages hold 128 (or 64) bytes of K per row in the swizzled K-major layout wgmma reads (the same
// swizzles the mma.sync kernel's stages use), filled by the shared patch gatherer with cp.async
// (implicit_gemm_device.cuh). Pipeline, per k-step kt, with STAGES stages and one product group in
// flight:
//   wait for tile kt's copies; fence them into the async proxy; barrier
//   start copying tile kt + STAGES - 2 into the stage tile kt - 2 used (its products finished: each
//     warpgroup waited for them before the barrier)
//   issue tile kt's k32 products (BK / 32 of them); wait until only they are in flight
//
// The file is compiled for sm_90a only where the compiler has it (CMakeLists.txt); elsewhere the kernels
// are empty and wgmmaConvAvailable() says so, from a probe compiled in the same module (the driver loads
// one image of a module, so the probe answers for the kernels too).
#include <cuda.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>

#include "backends/cuda/cuda_common.h"
#include "backends/cuda/implicit_gemm_conv.h"
#include "backends/cuda/implicit_gemm_device.cuh"
#include "backends/cuda/shifted_window.h"
#include "backends/cuda/tma_grid.h"

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define KILN_WGMMA_DEVICE 1
#endif

namespace kiln::cuda {
namespace {

using namespace implicit_gemm;

// Shared memory of the persistent kernels (ring and warp-specialized), from the dynamic shared
// memory's first 1,024-byte boundary (the swizzle atoms'; launches add the slack): W's kTiles
// k-steps, STAGES patch stages of BM rows, two output tiles, then the kernel's own extra bytes. All
// 1,024-byte aligned: BN * BK, BM * BK and BM * (BN + 16) are multiples of 1,024.
template <int BM, int BN, int BK, int STAGES>
struct PersistentSmem {
  static constexpr int kOutBytes = epilogueBytes<Int8Out, BM, BN>();
  uint32_t base, ring;  // shared-window addresses of W's first k-step and of the first patch stage
  uint8_t* smem;        // generic pointer to `base`
  int kTiles;
  __device__ PersistentSmem(uint8_t* smemRaw, int kPad) : kTiles((kPad + BK - 1) / BK) {
    const uint32_t raw = static_cast<uint32_t>(__cvta_generic_to_shared(smemRaw));
    base = (raw + 1023u) & ~1023u;
    ring = base + kTiles * BN * BK;
    smem = smemRaw + (base - raw);
  }
  __device__ uint32_t w(int kt) const { return base + kt * BN * BK; }
  __device__ uint32_t stage(int s) const { return ring + s * BM * BK; }
  __device__ uint32_t out(int i) const { return stage(STAGES) + i * kOutBytes; }
  __device__ uint32_t extra() const { return out(2); }
  __device__ uint8_t* generic(uint32_t address) const { return smem + (address - base); }
  // Host: bytes of a launch with kTiles k-steps and `extraBytes` past the output tiles.
  static constexpr int bytes(int kTiles, int extraBytes) {
    return kTiles * BN * BK + STAGES * BM * BK + 2 * kOutBytes + extraBytes;
  }
};

// m64nNk32 s8 x s8 -> s32, both operands from shared memory (descriptors), D += A * B (D = A * B
// where accumulate is 0).
#ifdef KILN_WGMMA_DEVICE
template <int N>
struct WgmmaS8;
template <>
struct WgmmaS8<64> {
  __device__ static void mma(int32_t (&d)[32], uint64_t descA, uint64_t descB, int accumulate = 1) {
    asm volatile(
        "{\n.reg .pred accumulate;\nsetp.ne.b32 accumulate, %34, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k32.s32.s8.s8 {"
        "%0, %1, %2, %3, %4, %5, %6, %7, "
        "%8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, "
        "%24, %25, %26, %27, %28, %29, %30, %31"
        "}, %32, %33, accumulate;\n}\n"
        : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3]),
          "+r"(d[4]), "+r"(d[5]), "+r"(d[6]), "+r"(d[7]),
          "+r"(d[8]), "+r"(d[9]), "+r"(d[10]), "+r"(d[11]),
          "+r"(d[12]), "+r"(d[13]), "+r"(d[14]), "+r"(d[15]),
          "+r"(d[16]), "+r"(d[17]), "+r"(d[18]), "+r"(d[19]),
          "+r"(d[20]), "+r"(d[21]), "+r"(d[22]), "+r"(d[23]),
          "+r"(d[24]), "+r"(d[25]), "+r"(d[26]), "+r"(d[27]),
          "+r"(d[28]), "+r"(d[29]), "+r"(d[30]), "+r"(d[31])
        : "l"(descA), "l"(descB), "r"(accumulate));
  }
};

template <>
struct WgmmaS8<128> {
  __device__ static void mma(int32_t (&d)[64], uint64_t descA, uint64_t descB, int accumulate = 1) {
    asm volatile(
        "{\n.reg .pred accumulate;\nsetp.ne.b32 accumulate, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k32.s32.s8.s8 {"
        "%0, %1, %2, %3, %4, %5, %6, %7, "
        "%8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, "
        "%24, %25, %26, %27, %28, %29, %30, %31, "
        "%32, %33, %34, %35, %36, %37, %38, %39, "
        "%40, %41, %42, %43, %44, %45, %46, %47, "
        "%48, %49, %50, %51, %52, %53, %54, %55, "
        "%56, %57, %58, %59, %60, %61, %62, %63"
        "}, %64, %65, accumulate;\n}\n"
        : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3]),
          "+r"(d[4]), "+r"(d[5]), "+r"(d[6]), "+r"(d[7]),
          "+r"(d[8]), "+r"(d[9]), "+r"(d[10]), "+r"(d[11]),
          "+r"(d[12]), "+r"(d[13]), "+r"(d[14]), "+r"(d[15]),
          "+r"(d[16]), "+r"(d[17]), "+r"(d[18]), "+r"(d[19]),
          "+r"(d[20]), "+r"(d[21]), "+r"(d[22]), "+r"(d[23]),
          "+r"(d[24]), "+r"(d[25]), "+r"(d[26]), "+r"(d[27]),
          "+r"(d[28]), "+r"(d[29]), "+r"(d[30]), "+r"(d[31]),
          "+r"(d[32]), "+r"(d[33]), "+r"(d[34]), "+r"(d[35]),
          "+r"(d[36]), "+r"(d[37]), "+r"(d[38]), "+r"(d[39]),
          "+r"(d[40]), "+r"(d[41]), "+r"(d[42]), "+r"(d[43]),
          "+r"(d[44]), "+r"(d[45]), "+r"(d[46]), "+r"(d[47]),
          "+r"(d[48]), "+r"(d[49]), "+r"(d[50]), "+r"(d[51]),
          "+r"(d[52]), "+r"(d[53]), "+r"(d[54]), "+r"(d[55]),
          "+r"(d[56]), "+r"(d[57]), "+r"(d[58]), "+r"(d[59]),
          "+r"(d[60]), "+r"(d[61]), "+r"(d[62]), "+r"(d[63])
        : "l"(descA), "l"(descB), "r"(accumulate));
  }
};

template <>
struct WgmmaS8<256> {
  __device__ static void mma(int32_t (&d)[128], uint64_t descA, uint64_t descB, int accumulate = 1) {
    asm volatile(
        "{\n.reg .pred accumulate;\nsetp.ne.b32 accumulate, %130, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n256k32.s32.s8.s8 {"
        "%0, %1, %2, %3, %4, %5, %6, %7, "
        "%8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, "
        "%24, %25, %26, %27, %28, %29, %30, %31, "
        "%32, %33, %34, %35, %36, %37, %38, %39, "
        "%40, %41, %42, %43, %44, %45, %46, %47, "
        "%48, %49, %50, %51, %52, %53, %54, %55, "
        "%56, %57, %58, %59, %60, %61, %62, %63, "
        "%64, %65, %66, %67, %68, %69, %70, %71, "
        "%72, %73, %74, %75, %76, %77, %78, %79, "
        "%80, %81, %82, %83, %84, %85, %86, %87, "
        "%88, %89, %90, %91, %92, %93, %94, %95, "
        "%96, %97, %98, %99, %100, %101, %102, %103, "
        "%104, %105, %106, %107, %108, %109, %110, %111, "
        "%112, %113, %114, %115, %116, %117, %118, %119, "
        "%120, %121, %122, %123, %124, %125, %126, %127"
        "}, %128, %129, accumulate;\n}\n"
        : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3]),
          "+r"(d[4]), "+r"(d[5]), "+r"(d[6]), "+r"(d[7]),
          "+r"(d[8]), "+r"(d[9]), "+r"(d[10]), "+r"(d[11]),
          "+r"(d[12]), "+r"(d[13]), "+r"(d[14]), "+r"(d[15]),
          "+r"(d[16]), "+r"(d[17]), "+r"(d[18]), "+r"(d[19]),
          "+r"(d[20]), "+r"(d[21]), "+r"(d[22]), "+r"(d[23]),
          "+r"(d[24]), "+r"(d[25]), "+r"(d[26]), "+r"(d[27]),
          "+r"(d[28]), "+r"(d[29]), "+r"(d[30]), "+r"(d[31]),
          "+r"(d[32]), "+r"(d[33]), "+r"(d[34]), "+r"(d[35]),
          "+r"(d[36]), "+r"(d[37]), "+r"(d[38]), "+r"(d[39]),
          "+r"(d[40]), "+r"(d[41]), "+r"(d[42]), "+r"(d[43]),
          "+r"(d[44]), "+r"(d[45]), "+r"(d[46]), "+r"(d[47]),
          "+r"(d[48]), "+r"(d[49]), "+r"(d[50]), "+r"(d[51]),
          "+r"(d[52]), "+r"(d[53]), "+r"(d[54]), "+r"(d[55]),
          "+r"(d[56]), "+r"(d[57]), "+r"(d[58]), "+r"(d[59]),
          "+r"(d[60]), "+r"(d[61]), "+r"(d[62]), "+r"(d[63]),
          "+r"(d[64]), "+r"(d[65]), "+r"(d[66]), "+r"(d[67]),
          "+r"(d[68]), "+r"(d[69]), "+r"(d[70]), "+r"(d[71]),
          "+r"(d[72]), "+r"(d[73]), "+r"(d[74]), "+r"(d[75]),
          "+r"(d[76]), "+r"(d[77]), "+r"(d[78]), "+r"(d[79]),
          "+r"(d[80]), "+r"(d[81]), "+r"(d[82]), "+r"(d[83]),
          "+r"(d[84]), "+r"(d[85]), "+r"(d[86]), "+r"(d[87]),
          "+r"(d[88]), "+r"(d[89]), "+r"(d[90]), "+r"(d[91]),
          "+r"(d[92]), "+r"(d[93]), "+r"(d[94]), "+r"(d[95]),
          "+r"(d[96]), "+r"(d[97]), "+r"(d[98]), "+r"(d[99]),
          "+r"(d[100]), "+r"(d[101]), "+r"(d[102]), "+r"(d[103]),
          "+r"(d[104]), "+r"(d[105]), "+r"(d[106]), "+r"(d[107]),
          "+r"(d[108]), "+r"(d[109]), "+r"(d[110]), "+r"(d[111]),
          "+r"(d[112]), "+r"(d[113]), "+r"(d[114]), "+r"(d[115]),
          "+r"(d[116]), "+r"(d[117]), "+r"(d[118]), "+r"(d[119]),
          "+r"(d[120]), "+r"(d[121]), "+r"(d[122]), "+r"(d[123]),
          "+r"(d[124]), "+r"(d[125]), "+r"(d[126]), "+r"(d[127])
        : "l"(descA), "l"(descB), "r"(accumulate));
  }
};


__device__ __forceinline__ void wgmmaFence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmmaCommit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmmaWait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// Makes this thread's finished cp.async writes to shared memory visible to wgmma's (async proxy) reads.
__device__ __forceinline__ void fenceAsyncProxy() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
// Keeps the compiler from moving reads or writes of an accumulator across the asynchronous products.
__device__ __forceinline__ void fenceOperand(int32_t& r) { asm volatile("" : "+r"(r)::"memory"); }

// Shared-memory barriers (mbarrier) between the warp-specialized kernel's producer and consumers:
// an arrive releases, a wait for a phase's completion acquires.
__device__ __forceinline__ void mbarrierInit(uint32_t bar, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbarrierArrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
// Waits until phase `parity` (the barrier's completed phases counted mod 2) has completed.
__device__ __forceinline__ void mbarrierWait(uint32_t bar, int parity) {
  uint32_t done = 0;
  while (!done)
    asm volatile(
        "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
}
// A barrier among the 128 threads of one warpgroup (ids 1.., 0 is __syncthreads').
__device__ __forceinline__ void warpgroupBarrier(int id) { asm volatile("bar.sync %0, 128;\n" ::"r"(id) : "memory"); }

// Shared-memory matrix descriptor: K-major rows of BK bytes with the BK-byte swizzle (layout type 1:
// 128 bytes, 2: 64 bytes), 8-row atoms 8 * BK bytes apart (the stride byte offset); the leading byte
// offset is unused for these layouts.
template <int BK>
__device__ __forceinline__ uint64_t smemDescriptor(uint32_t address) {
  constexpr uint64_t layout = BK == 128 ? 1 : 2;
  return uint64_t((address & 0x3FFFF) >> 4) | (uint64_t(1) << 16) | (uint64_t(8 * BK >> 4) << 32) | (layout << 62);
}
// A warpgroup's finished m64 x BN accumulators into the output tile (Int8Out::finish on each channel
// pair): accumulator 4j + e of a warp is row g (+8 for e >= 2) of its 16, channel
// 8j + 2 * (lane % 4) + (e & 1); `rows` is the tile at the thread's first row (g of its warp's 16).
template <int BN, bool kZ>
__device__ __forceinline__ void finishWarpgroupRows(const ConvArgs& p, const int32_t (&acc)[BN / 2], int blockN,
                                                    uint8_t* rows, int pitch) {
  const int cpair = (threadIdx.x & 3) * 2;
#pragma unroll
  for (int j = 0; j < BN / 8; ++j) {
    const int col = j * 8 + cpair, n = blockN + col;
    if (n >= p.k) continue;  // K % 8 == 0: both channels of the pair are in range together
    const Int8Out::Pair c = Int8Out::pair(p, n);
#pragma unroll
    for (int half = 0; half < 2; ++half)
      Int8Out::finish<kZ>(p, c, acc[4 * j + half * 2], acc[4 * j + half * 2 + 1], rows + half * 8 * pitch + col);
  }
}

#endif  // KILN_WGMMA_DEVICE

// BK: bytes of K per stage row, one swizzle atom wide (128, or 64 where K is short).
template <int BM, int BN, int STAGES, int BK>
__global__ void __launch_bounds__(BM / 64 * 128) convWgmmaInt8(ConvArgs p) {
#ifdef KILN_WGMMA_DEVICE
  static_assert(BM % 64 == 0 && STAGES >= 3, "warpgroups of 64 rows; one stage computing, one draining, one loading");
  static_assert(BK == 64 || BK == 128, "64- or 128-byte swizzle atoms");
  constexpr int kThreads = BM / 64 * 128, kAcc = BN / 2;
  constexpr int kStageA = BM * BK, kStageB = BN * BK;
  extern __shared__ __align__(1024) uint8_t smemRaw[];
  // The swizzle atoms must start on 1,024-byte boundaries (the launch adds the slack).
  const uint32_t raw = static_cast<uint32_t>(__cvta_generic_to_shared(smemRaw));
  const uint32_t base = (raw + 1023u) & ~1023u;
  uint8_t* smem = smemRaw + (base - raw);
  // Stage s holds its A tile then its W tile, so a launch with fewer stages than STAGES (only as many
  // as the layer has k-steps) uses a prefix of the memory; both tiles stay 1,024-byte aligned.
  auto stageA = [&](int stage) { return base + stage * (kStageA + kStageB); };
  auto stageB = [&](int stage) { return base + stage * (kStageA + kStageB) + kStageA; };

  const int tid = threadIdx.x, warpgroup = tid / 128;
  const int blockM = blockIdx.x * BM, blockN = blockIdx.y * BN;
  const PatchLoader<Int8Out, BM, BN, BK, kThreads> loader(p, tid, blockM, blockN);
  const int kTiles = loader.kTiles();

  int32_t acc[kAcc];
#pragma unroll
  for (int i = 0; i < kAcc; ++i) acc[i] = 0;

#pragma unroll
  for (int st = 0; st < STAGES - 2; ++st) {
    if (st < kTiles) loader.load(stageA(st), stageB(st), st);
    if (st == 0 && p.zPrefetched) prefetchZ<Int8Out, BM, BN, kThreads>(p, base + p.tileAt, blockM, blockN);
    commitAsync();
  }
  for (int kt = 0; kt < kTiles; ++kt) {
    waitAsync<STAGES - 3>();
    fenceAsyncProxy();
    __syncthreads();
    const int next = kt + STAGES - 2;
    if (next < kTiles) loader.load(stageA(next % STAGES), stageB(next % STAGES), next);
    commitAsync();
    const int stage = kt % STAGES;
    const uint32_t a = stageA(stage) + warpgroup * 64 * BK, b = stageB(stage);
    wgmmaFence();
#pragma unroll
    for (int ks = 0; ks < BK / 32; ++ks)
      WgmmaS8<BN>::mma(acc, smemDescriptor<BK>(a + ks * 32), smemDescriptor<BK>(b + ks * 32));
    wgmmaCommit();
    wgmmaWait<1>();
  }
  wgmmaWait<0>();
#pragma unroll
  for (int i = 0; i < kAcc; ++i) fenceOperand(acc[i]);
  waitAsync<0>();
  __syncthreads();  // every warpgroup is done with the stages: the epilogue reuses their shared memory

  const int rowBase = warpgroup * 64 + ((tid / 32) & 3) * 16 + ((tid & 31) >> 2);
  storeThroughSharedMemory<Int8Out, BM, BN, kThreads>(p, smem + p.tileAt, blockM, blockN, [&](uint8_t* tile, int pitch, auto hasZ) {
    finishWarpgroupRows<BN, hasZ>(p, acc, blockN, tile + rowBase * pitch, pitch);
  });
#endif
}

// A resident grid for the layers whose whole filter slice fits in shared memory beside the
// pipeline (1x1s over up to 512 channels, 3x3s over 64): one block per tile, as above, runs each
// block's loads, products and stores one after another, and a 1x1 over 64 channels is all
// epilogue (ResNet-50's bottleneck ends took 3x their bytes' time so). Here about one wave of blocks
// stays resident: each loads its BN x K slice of W once, then walks M tiles (blockIdx.x, + gridDim.x,
// ...) through one ring of STAGES patch stages that runs on across tile boundaries, so the next
// tile's patches (and its residual Z, into the other of two output tiles) are in flight while this
// one computes and stores. Per k-step f of the block's sequence:
//   wait for stage f's copies; fence them into the async proxy; barrier
//   start copying k-step f + STAGES - 2 (this tile's or the next one's; with the next tile's first
//     k-step, its Z) into the stage k-step f - 2 used
//   issue k-step f's products; at a tile's last k-step wait for them and run the epilogue
// Needs STAGES - 2 <= k-steps, so that a Z prefetch never lands in the output tile the previous
// tile's epilogue is still reading (the launch checks, see kPersistentTiles).
template <int BM, int BN, int BK, int STAGES>
__global__ void __launch_bounds__(BM / 64 * 128, BN <= 128 ? 2 : 1) convWgmmaInt8Ring(ConvArgs p, int mTiles) {
#ifdef KILN_WGMMA_DEVICE
  static_assert(BM % 64 == 0 && (BK == 64 || BK == 128) && STAGES >= 3, "64-row warpgroups, 64/128-byte atoms, 3+ stages");
  constexpr int kThreads = BM / 64 * 128, kAcc = BN / 2, kAhead = STAGES - 2;
  using Loader = PatchLoader<Int8Out, BM, BN, BK, kThreads>;
  extern __shared__ __align__(1024) uint8_t smemRaw[];
  // W's k-steps, the ring, two output tiles.
  const PersistentSmem<BM, BN, BK, STAGES> shared(smemRaw, p.kPad);
  const int kTiles = shared.kTiles;
  auto stageW = [&](int kt) { return shared.w(kt); };
  auto stageA = [&](int f) { return shared.stage(f % STAGES); };
  auto outTile = [&](int i) { return shared.out(i & 1); };

  const int tid = threadIdx.x, warpgroup = tid / 128;
  const int blockN = blockIdx.y * BN, step = gridDim.x;
  if (int(blockIdx.x) >= mTiles) return;
  {
    // W whole and the first tile's Z in the first copy group, then one group per k-step ahead.
    const Loader first(p, tid, blockIdx.x * BM, blockN);
    for (int kt = 0; kt < kTiles; ++kt) first.loadW(stageW(kt), kt);
    if (p.zPrefetched) prefetchZ<Int8Out, BM, BN, kThreads>(p, outTile(0), blockIdx.x * BM, blockN);
#pragma unroll
    for (int kt = 0; kt < kAhead; ++kt) {
      first.loadA(stageA(kt), kt);
      commitAsync();
    }
  }

  const int rowBase = warpgroup * 64 + ((tid / 32) & 3) * 16 + ((tid & 31) >> 2);
  // A tile's first product overwrites the accumulators (zeroing them between products would make
  // ptxas serialize the products).
  int32_t acc[kAcc];
#pragma unroll
  for (int j = 0; j < kAcc; ++j) acc[j] = 0;
  int f = 0;
  for (int i = 0, t = blockIdx.x; t < mTiles; ++i, t += step) {
    const int nextT = t + step;
    const Loader cur(p, tid, t * BM, blockN), next(p, tid, nextT * BM, blockN);
    for (int kt = 0; kt < kTiles; ++kt, ++f) {
      waitAsync<STAGES - 3>();
      fenceAsyncProxy();
      __syncthreads();
      const int ahead = kt + kAhead;
      if (ahead < kTiles) {
        cur.loadA(stageA(f + kAhead), ahead);
      } else if (nextT < mTiles) {
        next.loadA(stageA(f + kAhead), ahead - kTiles);
        if (ahead == kTiles && p.zPrefetched) prefetchZ<Int8Out, BM, BN, kThreads>(p, outTile(i + 1), nextT * BM, blockN);
      }
      commitAsync();
      const uint32_t a = stageA(f) + warpgroup * 64 * BK, b = stageW(kt);
      wgmmaFence();
#pragma unroll
      for (int ks = 0; ks < BK / 32; ++ks)
        WgmmaS8<BN>::mma(acc, smemDescriptor<BK>(a + ks * 32), smemDescriptor<BK>(b + ks * 32), kt > 0 || ks > 0);
      wgmmaCommit();
      if (kt + 1 < kTiles) wgmmaWait<1>();
    }
    wgmmaWait<0>();
#pragma unroll
    for (int j = 0; j < kAcc; ++j) fenceOperand(acc[j]);
    storeThroughSharedMemory<Int8Out, BM, BN, kThreads>(p, shared.generic(outTile(i)), t * BM, blockN, [&](uint8_t* tile, int pitch, auto hasZ) {
      finishWarpgroupRows<BN, hasZ>(p, acc, blockN, tile + rowBase * pitch, pitch);
    });
  }
  waitAsync<0>();
#endif
}

#ifdef KILN_WGMMA_DEVICE
// A consumer warpgroup's products for one 64-row tile fed from its ring of RING stages: k-step kt
// is ring step h0 + kt, taken once `full(h)` completes its round h / RING, multiplied with W's
// k-step `wStep(kt)`, and freed (`empty(h)`) once the next k-step's products are issued, the last
// once all are done. The warp-specialized and TMA tiles share it.
template <int BN, int BK, int RING, class Full, class Empty, class StageA, class WStep>
__device__ __forceinline__ void consumeRingTile(int32_t (&acc)[BN / 2], int h0, int kTiles, Full full, Empty empty,
                                                StageA stageA, WStep wStep, bool accumulate = false) {
  for (int kt = 0; kt < kTiles; ++kt) {
    const int h = h0 + kt;
    mbarrierWait(full(h), (h / RING) & 1);
    const uint32_t a = stageA(h), b = wStep(kt);
    wgmmaFence();
#pragma unroll
    for (int ks = 0; ks < BK / 32; ++ks)
      WgmmaS8<BN>::mma(acc, smemDescriptor<BK>(a + ks * 32), smemDescriptor<BK>(b + ks * 32), accumulate || kt > 0 || ks > 0);
    wgmmaCommit();
    if (kt > 0) {
      wgmmaWait<1>();
      mbarrierArrive(empty(h - 1));
    }
  }
  wgmmaWait<0>();
  mbarrierArrive(empty(h0 + kTiles - 1));
#pragma unroll
  for (int j = 0; j < BN / 2; ++j) fenceOperand(acc[j]);
}
#endif  // KILN_WGMMA_DEVICE

// A warp-specialized persistent grid for the same layers as the ring tiles (the block's whole W slice
// fits in shared memory), where the ring tiles still run one tile's loads, products and epilogue in
// the same warps: here the third warpgroup only gathers patches, ahead of the products, and the
// first two warpgroups take the block's M tiles of 64 rows in turn (tiles c, c + 2, ... of the
// block's sequence), so one's products run while the other's epilogue does. Each consumer has its
// own ring of STAGES / 2 stages with full/empty mbarriers (one ring per consumer: with one shared
// ring, a consumer could wait on a stage two phases ahead, which a parity wait cannot tell from the
// phase before), and its own output tile, into which it prefetches its next tile's Z as soon as it
// has written the current one out. The producer fills the rings in the block's k-step order and
// publishes a stage once its own copies have landed (cp.async.wait_group, the async-proxy fence,
// then the arrive), kLag k-steps behind the newest copies it started.
template <int BN, int BK, int STAGES>
__global__ void __launch_bounds__(384, 1) convWgmmaInt8Ws(ConvArgs p, int mTiles) {
#ifdef KILN_WGMMA_DEVICE
  // A consumer frees its k-step h only once it has issued h + 1 (wgmmaWait<1>), and the producer
  // publishes h + 1 only after starting the copies of h + 1 + kLag. So before the producer reuses
  // the stage of h (for h + kRing, the same tile's k-step when a tile has more than kRing) it must
  // not need h + 1 published: h + 1 + kLag < h + kRing. With kLag = kRing - 1 a tile of more k-steps
  // than kRing deadlocks (producer and consumer each waiting for the other).
  constexpr int BM = 64, kAcc = BN / 2, kRing = STAGES / 2, kLag = kRing >= 4 ? 2 : 1;
  constexpr int kPitch = BN + 16;
  static_assert((BK == 64 || BK == 128) && STAGES % 2 == 0 && kLag + 2 <= kRing,
                "64/128-byte atoms; the producer must not wait to reuse a stage whose release needs a later publish");
  using Loader = PatchLoader<Int8Out, BM, BN, BK, 128>;
  extern __shared__ __align__(1024) uint8_t smemRaw[];
  // W's k-steps, the two rings (STAGES stages), one output tile per consumer, then the barriers.
  const PersistentSmem<BM, BN, BK, STAGES> shared(smemRaw, p.kPad);
  const int kTiles = shared.kTiles;
  const uint32_t barAt = shared.extra();
  // Consumer c's k-step h (its tiles' k-steps in order) uses stage h % kRing of ring c.
  auto slot = [&](int c, int h) { return c * kRing + h % kRing; };
  auto full = [&](int c, int h) { return barAt + slot(c, h) * 8; };
  auto empty = [&](int c, int h) { return barAt + (STAGES + slot(c, h)) * 8; };
  auto stageA = [&](int c, int h) { return shared.stage(slot(c, h)); };

  const int tid = threadIdx.x, warpgroup = tid / 128, wtid = tid % 128;
  const int blockN = blockIdx.y * BN, step = gridDim.x;
  if (int(blockIdx.x) >= mTiles) return;
  if (tid == 0) {
    for (int st = 0; st < STAGES; ++st) {
      mbarrierInit(barAt + st * 8, 128);              // full: the producer's threads
      mbarrierInit(barAt + (STAGES + st) * 8, 128);  // empty: the consuming warpgroup's threads
    }
  }
  __syncthreads();

  if (warpgroup == 2) {
    // The producer needs few registers; the consumers' accumulators get them (384 threads share 64K:
    // 128 x 88 + 256 x 208).
    asm volatile("setmaxnreg.dec.sync.aligned.u32 88;\n" ::: "memory");
    // The block's k-step g is k-step g % kTiles of its tile g / kTiles, which consumer (tile & 1)
    // takes as its k-step h. W whole travels with k-step 0.
    auto publish = [&](int g) {
      const int i = g / kTiles;
      mbarrierArrive(full(i & 1, (i >> 1) * kTiles + g % kTiles));
    };
    int g = 0;
    for (int i = 0, t = blockIdx.x; t < mTiles; ++i, t += step) {
      const Loader loader(p, wtid, t * BM, blockN);
      if (i == 0)
        for (int kt = 0; kt < kTiles; ++kt) loader.loadW(shared.w(kt), kt);
      const int c = i & 1;
      for (int kt = 0; kt < kTiles; ++kt, ++g) {
        const int h = (i >> 1) * kTiles + kt;
        if (h >= kRing) mbarrierWait(empty(c, h), (h / kRing - 1) & 1);
        loader.loadA(stageA(c, h), kt);
        commitAsync();
        if (g >= kLag) {
          waitAsync<kLag>();
          fenceAsyncProxy();
          publish(g - kLag);
        }
      }
    }
    waitAsync<0>();
    fenceAsyncProxy();
    for (int q = g > kLag ? g - kLag : 0; q < g; ++q) publish(q);
    return;
  }

  asm volatile("setmaxnreg.inc.sync.aligned.u32 208;\n" ::: "memory");
  // Consumer `warpgroup`: its thread's first row of a 64-row tile (finishWarpgroupRows).
  const int rowBase = ((wtid / 32) & 3) * 16 + ((tid & 31) >> 2), barrier = 1 + warpgroup;
  const uint32_t out = shared.out(warpgroup);
  uint8_t* outTile = shared.generic(out);
  int t = blockIdx.x + warpgroup * step;
  if (t < mTiles && p.zPrefetched) prefetchZ<Int8Out, BM, BN, 128>(p, out, t * BM, blockN, wtid);
  commitAsync();
  int32_t acc[kAcc];
#pragma unroll
  for (int j = 0; j < kAcc; ++j) acc[j] = 0;
  for (int h = 0; t < mTiles; t += 2 * step, h += kTiles) {
    consumeRingTile<BN, BK, kRing>(
        acc, h, kTiles, [&](int q) { return full(warpgroup, q); }, [&](int q) { return empty(warpgroup, q); },
        [&](int q) { return stageA(warpgroup, q); }, [&](int kt) { return shared.w(kt); });

    if (p.z && !p.zPrefetched) copyTileVectors<Int8Out, BM, BN, 128, 8>(p, outTile, t * BM, blockN, true, wtid);
    waitAsync<0>();  // this tile's Z, prefetched
    warpgroupBarrier(barrier);
    if (p.z)
      finishWarpgroupRows<BN, true>(p, acc, blockN, outTile + rowBase * kPitch, kPitch);
    else
      finishWarpgroupRows<BN, false>(p, acc, blockN, outTile + rowBase * kPitch, kPitch);
    warpgroupBarrier(barrier);
    if ((p.k * Int8Out::kOut) % 16 == 0)
      copyTileVectors<Int8Out, BM, BN, 128, 16>(p, outTile, t * BM, blockN, false, wtid);
    else
      copyTileVectors<Int8Out, BM, BN, 128, 8>(p, outTile, t * BM, blockN, false, wtid);
    warpgroupBarrier(barrier);  // the tile is written out: the next tile's Z may land in it
    const int nextT = t + 2 * step;
    if (nextT < mTiles && p.zPrefetched) prefetchZ<Int8Out, BM, BN, 128>(p, out, nextT * BM, blockN, wtid);
    commitAsync();
  }
  waitAsync<0>();
#endif
}

#ifdef KILN_WGMMA_DEVICE
// The tensor memory accelerator (TMA): a 2-D box of a tensor map between global and shared memory,
// issued by one thread. Loads complete on an mbarrier (the box's bytes counted as transactions,
// zero-filled parts included); stores are a bulk group of the issuing thread.
__device__ __forceinline__ void mbarrierExpectTx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void tmaLoad2d(uint32_t dst, const CUtensorMap* map, int inner, int outer, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(inner), "r"(outer), "r"(bar)
      : "memory");
}
__device__ __forceinline__ void tmaStore2d(const CUtensorMap* map, uint32_t src, int inner, int outer) {
  asm volatile("cp.async.bulk.tensor.2d.global.shared::cta.tile.bulk_group [%0, {%1, %2}], [%3];\n" ::"l"(
                   reinterpret_cast<uint64_t>(map)),
               "r"(inner), "r"(outer), "r"(src)
               : "memory");
}
// 3-D boxes: (channel, column, row) of the stride-2 TMA tiles' activations (TmaMaps).
__device__ __forceinline__ void tmaLoad3d(uint32_t dst, const CUtensorMap* map, int channel, int column, int row,
                                          uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], [%5];\n" ::"r"(
          dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(channel), "r"(column), "r"(row), "r"(bar)
      : "memory");
}
__device__ __forceinline__ void tmaStore3d(const CUtensorMap* map, uint32_t src, int channel, int column, int row) {
  asm volatile("cp.async.bulk.tensor.3d.global.shared::cta.tile.bulk_group [%0, {%1, %2, %3}], [%4];\n" ::"l"(
                   reinterpret_cast<uint64_t>(map)),
               "r"(channel), "r"(column), "r"(row), "r"(src)
               : "memory");
}
// An im2col box (convWgmmaInt8TmaConv): `channels` on from `channel` of the map's pixelsPerColumn
// pixels that a filter tap at offset (offsetW, offsetH) reads for consecutive output pixels, the
// first of which has its filter corner at (w, h) of image n; TMA walks the output grid (its
// bounding box, at the map's strides) across rows and images and zero-fills what lies outside X.
__device__ __forceinline__ void tmaLoadIm2col(uint32_t dst, const CUtensorMap* map, int channel, int w, int h, int n,
                                              uint16_t offsetW, uint16_t offsetH, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.im2col.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4, %5}], [%6], "
      "{%7, %8};\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(channel), "r"(w), "r"(h), "r"(n), "r"(bar), "h"(offsetW), "h"(offsetH)
      : "memory");
}
__device__ __forceinline__ void bulkCommit() { asm volatile("cp.async.bulk.commit_group;\n" ::: "memory"); }
// Waits until all but this thread's N newest bulk stores have read their shared memory (it may be
// written again).
template <int N>
__device__ __forceinline__ void bulkWaitRead() { asm volatile("cp.async.bulk.wait_group.read %0;\n" ::"n"(N) : "memory"); }
__device__ __forceinline__ void bulkWaitAll() { asm volatile("cp.async.bulk.wait_group 0;\n" ::: "memory"); }

// The output slots' barriers of a TMA kernel's two consumers (zFull(c, u): Z landed, one TMA
// arrival; zEmpty(c, u): the slot's store has read it, one arrival from finishTmaSlot), then the
// fences that make every barrier the thread initialized visible to the TMA unit (the async proxy)
// and to the block's other threads once it has synchronized.
template <int SLOTS, class ZFull, class ZEmpty>
__device__ __forceinline__ void initSlotBarriersAndPublish(ZFull zFull, ZEmpty zEmpty) {
  for (int c = 0; c < 2; ++c)
    for (int u = 0; u < SLOTS; ++u) {
      mbarrierInit(zFull(c, u), 1);
      mbarrierInit(zEmpty(c, u), 1);
    }
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  fenceAsyncProxy();
}

// A TMA consumer's epilogue for its tile u, in place in the output slot `out` (`tile` its generic
// address) of 64 rows x BN channels: waits until the slot has the tile's Z (or, without a
// residual, until the slot's last store has read it), writes Y's pairs over Z's, and stores the
// slot as TMA boxes (`store`, issued by the warpgroup's first thread as one bulk group). Channel pair
// (col, col + 1) of row r lives in box col / ZB at row r, 16-byte chunk (col % ZB) / 16 swizzled by
// the row, as TMA lays a box out. Then it frees the slot of tile u - lag once that slot's store has
// read it (zEmpty): lag > 0 lets this store run under the next tiles' products instead of holding
// the warpgroup; but a slot freed later is refilled with Z later, so with a residual only four
// slots keep Z a tile ahead with lag 1.
template <int BN, int SLOTS, class ZFull, class ZEmpty, class Store>
__device__ __forceinline__ void finishTmaSlot(const ConvArgs& p, const int32_t (&acc)[BN / 2], uint8_t* tile, uint32_t out,
                                              int blockN, int u, int barrier, ZFull zFull, ZEmpty zEmpty, Store store) {
  constexpr int BM = 64, ZB = BN < 128 ? BN : 128;
  const int tid = threadIdx.x, wtid = tid % 128, rowBase = ((wtid / 32) & 3) * 16 + ((tid & 31) >> 2), cpair = (tid & 3) * 2;
  const bool hasZ = p.z != nullptr;
  if (hasZ)
    mbarrierWait(zFull(u), (u / SLOTS) & 1);
  else if (u >= SLOTS)
    mbarrierWait(zEmpty(u), (u / SLOTS - 1) & 1);  // the slot's last store has read it
#pragma unroll
  for (int j = 0; j < BN / 8; ++j) {
    const int col = j * 8 + cpair, n = blockN + col;
    if (n >= p.k) continue;
    const Int8Out::Pair pc = Int8Out::pair(p, n);
    const int box = col / ZB, within = col % ZB;
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int row = rowBase + half * 8;
      uint8_t* at = tile + box * BM * ZB + swizzle<ZB>(row, within >> 4) + (within & 15);
      if (hasZ)
        Int8Out::finish<true>(p, pc, acc[4 * j + half * 2], acc[4 * j + half * 2 + 1], at);
      else
        Int8Out::finish<false>(p, pc, acc[4 * j + half * 2], acc[4 * j + half * 2 + 1], at);
    }
  }
  fenceAsyncProxy();  // the slot's generic writes, before the TMA store reads them
  warpgroupBarrier(barrier);
  if (wtid == 0) {
    store();
    bulkCommit();
    const int lag = hasZ ? (SLOTS - 2) / 2 : SLOTS - 1;
    if (lag == 0) bulkWaitRead<0>();
    else if (lag == 1) bulkWaitRead<1>();
    else bulkWaitRead<SLOTS - 1>();
    if (u >= lag) mbarrierArrive(zEmpty(u - lag));
  }
  __syncwarp();  // warp 0 converged again before the next products (wgmma is .sync.aligned)
}

// A fused shortcut's hand-over (convWgmmaInt8TmaConv): the main product's accumulators times the
// channel's ratio (its alpha over the shortcut's), rounded, so the shortcut's k-steps add to them
// in the one scale the epilogue applies. Rounding costs at most half a unit of the shortcut's
// accumulator, a small fraction of an output step; the lowering bounds the product below 2^31.
// The accumulator layout is finishTmaSlot's: acc[4j + 2 half + e] is channel j * 8 + cpair + e.
template <int BN>
__device__ __forceinline__ void rescaleForShortcut(const ConvArgs& p, int32_t (&acc)[BN / 2], int blockN) {
  const int cpair = (threadIdx.x & 3) * 2;
#pragma unroll
  for (int j = 0; j < BN / 8; ++j) {
    const int n = blockN + j * 8 + cpair;
    if (n >= p.k) continue;
    const float2 r = __ldg(reinterpret_cast<const float2*>(p.ratio + n));
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      acc[4 * j + half * 2] = __float2int_rn(float(acc[4 * j + half * 2]) * r.x);
      acc[4 * j + half * 2 + 1] = __float2int_rn(float(acc[4 * j + half * 2 + 1]) * r.y);
    }
  }
}
#endif  // KILN_WGMMA_DEVICE

// The tensor maps of a TMA tile's layer: W as [K, kPad] (boxes BK x BN), A, Y and Z as tma_grid.h
// lays them out (boxes of BK or ZB channels x 64 pixels). Stride 1 keeps 2-D maps: as 3-D maps of
// one row its tiles ran 3-8% slower on the H100.
struct TmaMaps {
  CUtensorMap a, w, y, z;
  CUtensorMap a2;  // a fused shortcut's input, as A (the TMA convolution tiles)
};

// A 1x1 convolution is a plain GEMM over NHWC pixels (at stride 2, every other pixel of every other
// row), and ResNet-50's (its bottlenecks' both ends and its downsamples, 37 of 53 layers, most of the
// INT8 engine's time) are short-K and memory-bound: a
// 1x1 over 64 channels to 256 moves 7 bytes per product. What they need is every byte in flight,
// all the time, which the tiles above cannot keep up: their copies are 16-byte cp.async issued by
// the computing threads, their stores wait for the epilogue, and a tile's loads, products and
// stores run one after another. Here a persistent block of three warpgroups works like a
// TMA-fed GEMM: one thread of the third warpgroup (the producer) issues every load as a TMA box
// into rings guarded by mbarriers: W's BN x kPad slice once (resident), then per 64-row M tile its
// k-steps of A into the consumer's A ring and its residual Z into the consumer's output slot; the
// first two warpgroups (consumers) take the block's tiles in turn, so one's products run while the
// other finishes. A consumer's epilogue runs in place: it reads Z's pair from the slot, writes Y's
// pair over it, and one thread stores the slot as a TMA box, then frees a slot for Z SLOTS tiles on
// once its store has read it: without a residual, or with four slots, the slot of an earlier tile,
// so the store runs under the next tile's products (more slots: the residual loads run further
// ahead). TMA zero-fills and clips the tails (M, K, kPad), so no bounds are tested.
// Slots are boxes of ZB = min(BN, 128) channels, swizzled as wide (64 or 128 bytes): the eight rows
// an epilogue phase touches hit distinct banks.
// BLOCKS: blocks per SM. Where a tile has one k-step (1x1s over 64 channels) its epilogue is most of
// its work, and two consumer warpgroups per SM leave the schedulers waiting on its latency; two
// blocks of 64-channel tiles (32 accumulators) fit in the registers without setmaxnreg's split.
template <int BN, int BK, int RING, int SLOTS, int BLOCKS>
__global__ void __launch_bounds__(384, BLOCKS) convWgmmaInt8Tma(ConvArgs p, const __grid_constant__ TmaMaps maps, TmaGrid grid) {
#ifdef KILN_WGMMA_DEVICE
  constexpr int BM = 64, kAcc = BN / 2, ZB = BN < 128 ? BN : 128, kSlot = BM * BN;
  static_assert((BK == 64 || BK == 128) && (ZB == 64 || ZB == 128) && RING >= 2 && SLOTS >= 2,
                "64/128-byte atoms, two+ stages and slots");
  static_assert(BLOCKS == 1 || BN == 64, "two blocks per SM: 32 accumulators per consumer thread");
  extern __shared__ __align__(1024) uint8_t smemRaw[];
  const int kTiles = (p.kPad + BK - 1) / BK;
  // W's k-steps, each consumer's A ring, each consumer's two output slots, then the barriers.
  const uint32_t raw = static_cast<uint32_t>(__cvta_generic_to_shared(smemRaw));
  const uint32_t base = (raw + 1023u) & ~1023u;
  uint8_t* smem = smemRaw + (base - raw);
  const uint32_t ringAt = base + kTiles * BN * BK, slotAt = ringAt + 2 * RING * BM * BK, barAt = slotAt + 2 * SLOTS * kSlot;
  auto wStep = [&](int kt) { return base + kt * BN * BK; };
  auto aStage = [&](int c, int h) { return ringAt + (c * RING + h % RING) * BM * BK; };
  auto slot = [&](int c, int u) { return slotAt + (c * SLOTS + u % SLOTS) * kSlot; };
  // Barriers: W full; per consumer c, A stage full and empty (RING each), slot full and empty (2 each).
  const uint32_t wFull = barAt;
  auto aFull = [&](int c, int h) { return barAt + 8 * (1 + c * RING + h % RING); };
  auto aEmpty = [&](int c, int h) { return barAt + 8 * (1 + 2 * RING + c * RING + h % RING); };
  auto zFull = [&](int c, int u) { return barAt + 8 * (1 + 4 * RING + c * SLOTS + u % SLOTS); };
  auto zEmpty = [&](int c, int u) { return barAt + 8 * (1 + 4 * RING + 2 * SLOTS + c * SLOTS + u % SLOTS); };

  const int tid = threadIdx.x, warpgroup = tid / 128, wtid = tid % 128;
  const int blockN = blockIdx.y * BN, step = gridDim.x, mTiles = grid.mTiles;
  const bool hasZ = p.z != nullptr;
  if (int(blockIdx.x) >= mTiles) return;
  if (tid == 0) {
    mbarrierInit(wFull, 1);
    for (int c = 0; c < 2; ++c)
      for (int s = 0; s < RING; ++s) {
        mbarrierInit(aFull(c, s), 1);
        mbarrierInit(aEmpty(c, s), 128);
      }
    initSlotBarriersAndPublish<SLOTS>(zFull, zEmpty);
  }
  __syncthreads();

  if (warpgroup == 2) {
    if constexpr (BLOCKS == 1) asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n" ::: "memory");
    if (wtid != 0) return;
    mbarrierExpectTx(wFull, uint32_t(kTiles * BN * BK));
    for (int kt = 0; kt < kTiles; ++kt) tmaLoad2d(wStep(kt), &maps.w, kt * BK, blockN, wFull);
    // Tile i of the block goes to consumer i & 1 as its tile u = i >> 1, whose k-step kt is the
    // consumer's h = u * kTiles + kt.
    for (int i = 0, t = blockIdx.x; t < mTiles; ++i, t += step) {
      const int c = i & 1, u = i >> 1;
      if (hasZ) {
        if (u >= SLOTS) mbarrierWait(zEmpty(c, u), (u / SLOTS - 1) & 1);
        mbarrierExpectTx(zFull(c, u), kSlot);
        for (int b = 0; b < BN / ZB; ++b) {
          if (grid.strided)
            tmaLoad3d(slot(c, u) + b * BM * ZB, &maps.z, blockN + b * ZB, grid.column(t), grid.row(t), zFull(c, u));
          else
            tmaLoad2d(slot(c, u) + b * BM * ZB, &maps.z, blockN + b * ZB, t * BM, zFull(c, u));
        }
      }
      for (int kt = 0; kt < kTiles; ++kt) {
        const int h = u * kTiles + kt;
        if (h >= RING) mbarrierWait(aEmpty(c, h), (h / RING - 1) & 1);
        mbarrierExpectTx(aFull(c, h), BM * BK);
        if (grid.strided)
          tmaLoad3d(aStage(c, h), &maps.a, kt * BK, grid.column(t), grid.row(t), aFull(c, h));
        else
          tmaLoad2d(aStage(c, h), &maps.a, kt * BK, t * BM, aFull(c, h));
      }
    }
    return;
  }

  // Consumers: BN = 256 takes 128 accumulators (384 threads share 64K registers: 128 x 40 + 256 x 232).
  if constexpr (BLOCKS == 1) asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n" ::: "memory");
  const int c = warpgroup;
  int32_t acc[kAcc];
#pragma unroll
  for (int j = 0; j < kAcc; ++j) acc[j] = 0;
  mbarrierWait(wFull, 0);
  for (int u = 0, t = blockIdx.x + c * step; t < mTiles; ++u, t += 2 * step) {
    consumeRingTile<BN, BK, RING>(
        acc, u * kTiles, kTiles, [&](int h) { return aFull(c, h); }, [&](int h) { return aEmpty(c, h); },
        [&](int h) { return aStage(c, h); }, wStep);

    const uint32_t out = slot(c, u);
    finishTmaSlot<BN, SLOTS>(
        p, acc, smem + (out - base), out, blockN, u, 1 + c, [&](int q) { return zFull(c, q); },
        [&](int q) { return zEmpty(c, q); },
        [&] {
          for (int b = 0; b < BN / ZB; ++b) {
            if (grid.strided)
              tmaStore3d(&maps.y, out + b * BM * ZB, blockN + b * ZB, grid.column(t), grid.row(t));
            else
              tmaStore2d(&maps.y, out + b * BM * ZB, blockN + b * ZB, t * BM);
          }
        });
  }
  if (wtid == 0) bulkWaitAll();
#endif
}

// Convolutions with taps (ResNet's 3x3s over 64+ channels) as a TMA-fed implicit GEMM. The
// resident tiles gather their patches with cp.async from the computing threads and run a tile's
// loads, products and epilogue one after another, which left these layers at about a third of the
// INT8 rate (slower than cuDNN's float16 on the 3x3s over 128+ channels). Here TMA's im2col mode
// does the gather: k-step kt is tap kt / (C / BK)'s BK channels, and one box brings that tap's
// pixels for the tile's 128 consecutive output pixels (zero-filled where the tap falls on the
// padding or past the last image), with W's BN x BK k-step beside it, into one stage of a ring of
// RING. A persistent block of three warpgroups walks tiles of 128 pixels x BN channels (t =
// blockIdx.x, + gridDim.x, ...; the N blocks of one M tile adjacent, so they share its pixels in
// L2): one thread of the third issues the loads and each tile's residual Z into its output slots;
// the first two each multiply their 64 rows of every stage with its W (one W k-step feeds both)
// and run the TMA tiles' epilogue (finishTmaSlot) on their half, while the producer already fills
// the ring with the next tile's k-steps. A stage is freed once both consumers' products on it are
// done (256 arrivals). BLOCKS > 1 (BN = 64: 32 accumulators) runs two blocks per SM so that one's
// epilogue overlaps the other's products. RESIDENT: W's BN x kPad slice is loaded once and stays
// (blockIdx.y the N block, tiles the M tiles), so only A streams; for layer1's 3x3s, whose 64
// output channels make W a third of a streamed stage's bytes.
// A fused shortcut (p.x2: a ResNet downsample, int8_lowering.cc) adds its 1x1 k-steps after the
// main product's, its A boxes from its own im2col map (a2) over the same output pixels, its W in
// the same rows after the main one's R*S*C bytes; between the two the consumers take their
// accumulators into the shortcut's scale (rescaleForShortcut), so the downsample's output never
// goes through memory and the epilogue reads no residual.
template <int BN, int BK, int RING, int SLOTS, int BLOCKS, bool RESIDENT>
__global__ void __launch_bounds__(384, BLOCKS) convWgmmaInt8TmaConv(ConvArgs p, const __grid_constant__ TmaMaps maps, int tiles) {
#ifdef KILN_WGMMA_DEVICE
  constexpr int BM = 128, kAcc = BN / 2, ZB = BN < 128 ? BN : 128, kSlot = 64 * BN, kStage = (BM + (RESIDENT ? 0 : BN)) * BK;
  static_assert((BK == 64 || BK == 128) && (ZB == 64 || ZB == 128) && RING >= 2 && SLOTS >= 2,
                "64/128-byte atoms, two+ stages and slots");
  static_assert(BLOCKS == 1 || BN == 64, "two blocks per SM: 32 accumulators per consumer thread");
  extern __shared__ __align__(1024) uint8_t smemRaw[];
  const int kTiles = p.kPad / BK, cSteps = p.c / BK, mainSteps = p.x2 ? kTiles - p.c2 / BK : kTiles;
  // W's k-steps if resident, the ring (stage: A's 128 rows, then W's BN unless resident), each
  // consumer's output slots, then the barriers.
  const uint32_t raw = static_cast<uint32_t>(__cvta_generic_to_shared(smemRaw));
  const uint32_t base = (raw + 1023u) & ~1023u;
  uint8_t* smem = smemRaw + (base - raw);
  const uint32_t ringAt = base + (RESIDENT ? kTiles * BN * BK : 0), slotAt = ringAt + RING * kStage,
                 barAt = slotAt + 2 * SLOTS * kSlot, wFull = barAt + 8 * (2 * RING + 4 * SLOTS);
  auto aStage = [&](int h) { return ringAt + (h % RING) * kStage; };
  // W's k-step kt of ring step h.
  auto wAt = [&](int h, int kt) { return RESIDENT ? base + kt * BN * BK : aStage(h) + BM * BK; };
  auto slot = [&](int c, int u) { return slotAt + (c * SLOTS + u % SLOTS) * kSlot; };
  auto full = [&](int h) { return barAt + 8 * (h % RING); };
  auto empty = [&](int h) { return barAt + 8 * (RING + h % RING); };
  auto zFull = [&](int c, int u) { return barAt + 8 * (2 * RING + c * SLOTS + u % SLOTS); };
  auto zEmpty = [&](int c, int u) { return barAt + 8 * (2 * RING + 2 * SLOTS + c * SLOTS + u % SLOTS); };

  const int tid = threadIdx.x, warpgroup = tid / 128, wtid = tid % 128;
  // Tile t's first pixel and channel: resident blocks keep their N block and walk M tiles.
  const int nBlocks = RESIDENT ? 1 : (p.k + BN - 1) / BN;
  auto firstPixel = [&](int t) { return (t / nBlocks) * BM; };
  auto firstChannel = [&](int t) { return RESIDENT ? int(blockIdx.y) * BN : (t % nBlocks) * BN; };
  const bool hasZ = p.z != nullptr;
  if (int(blockIdx.x) >= tiles) return;
  if (tid == 0) {
    mbarrierInit(wFull, 1);
    for (int s = 0; s < RING; ++s) {
      mbarrierInit(full(s), 1);
      mbarrierInit(empty(s), 256);
    }
    initSlotBarriersAndPublish<SLOTS>(zFull, zEmpty);
  }
  __syncthreads();

  if (warpgroup == 2) {
    if constexpr (BLOCKS == 1) asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n" ::: "memory");
    if (wtid != 0) return;
    if constexpr (RESIDENT) {
      mbarrierExpectTx(wFull, uint32_t(kTiles * BN * BK));
      for (int kt = 0; kt < kTiles; ++kt) tmaLoad2d(wAt(0, kt), &maps.w, kt * BK, firstChannel(0), wFull);
    }
    // The block's tile i takes ring steps h = i * kTiles + kt.
    for (int i = 0, t = blockIdx.x, h = 0; t < tiles; ++i, t += gridDim.x) {
      const int m0 = firstPixel(t), blockN = firstChannel(t);
      if (hasZ) {
        for (int c = 0; c < 2; ++c) {
          if (i >= SLOTS) mbarrierWait(zEmpty(c, i), (i / SLOTS - 1) & 1);
          mbarrierExpectTx(zFull(c, i), kSlot);
          for (int b = 0; b < BN / ZB; ++b)
            tmaLoad2d(slot(c, i) + b * 64 * ZB, &maps.z, blockN + b * ZB, m0 + c * 64, zFull(c, i));
        }
      }
      // The filter corner of the tile's first output pixel; TMA walks the other 127 from there.
      const Im2colCorner corner = im2colCorner(m0, p.oh, p.ow, p.strideH, p.strideW, p.padH, p.padW);
      const Im2colCorner corner2 = p.x2 ? im2colCorner(m0, p.oh, p.ow, p.stride2, p.stride2, 0, 0) : corner;
      for (int kt = 0; kt < kTiles; ++kt, ++h) {
        if (h >= RING) mbarrierWait(empty(h), (h / RING - 1) & 1);
        mbarrierExpectTx(full(h), kStage);
        const int tap = kt / cSteps, r = tap / p.s, s = tap % p.s;
        if (kt < mainSteps)
          tmaLoadIm2col(aStage(h), &maps.a, (kt % cSteps) * BK, corner.w, corner.h, corner.image, uint16_t(s * p.dilW),
                        uint16_t(r * p.dilH), full(h));
        else
          tmaLoadIm2col(aStage(h), &maps.a2, (kt - mainSteps) * BK, corner2.w, corner2.h, corner2.image, 0, 0, full(h));
        if constexpr (!RESIDENT) tmaLoad2d(wAt(h, kt), &maps.w, kt * BK, blockN, full(h));
      }
    }
    return;
  }

  // Consumers: BN = 256 takes 128 accumulators (384 threads share 64K registers: 128 x 40 + 256 x 232).
  if constexpr (BLOCKS == 1) asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n" ::: "memory");
  const int c = warpgroup;
  int32_t acc[kAcc];
#pragma unroll
  for (int j = 0; j < kAcc; ++j) acc[j] = 0;
  if constexpr (RESIDENT) mbarrierWait(wFull, 0);
  for (int i = 0, t = blockIdx.x; t < tiles; ++i, t += gridDim.x) {
    const int m0 = firstPixel(t), blockN = firstChannel(t), h0 = i * kTiles;
    auto stageA = [&](int h) { return aStage(h) + c * 64 * BK; };
    consumeRingTile<BN, BK, RING>(acc, h0, mainSteps, full, empty, stageA, [&](int kt) { return wAt(h0 + kt, kt); });
    if (mainSteps < kTiles) {
      rescaleForShortcut<BN>(p, acc, blockN);
      const int h1 = h0 + mainSteps;
      consumeRingTile<BN, BK, RING>(
          acc, h1, kTiles - mainSteps, full, empty, stageA, [&](int kt) { return wAt(h1 + kt, mainSteps + kt); }, true);
    }
    const uint32_t out = slot(c, i);
    finishTmaSlot<BN, SLOTS>(
        p, acc, smem + (out - base), out, blockN, i, 1 + c, [&](int q) { return zFull(c, q); },
        [&](int q) { return zEmpty(c, q); },
        [&] {
          for (int b = 0; b < BN / ZB; ++b) tmaStore2d(&maps.y, out + b * 64 * ZB, blockN + b * ZB, m0 + c * 64);
        });
  }
  if (wtid == 0) bulkWaitAll();
#endif
}

#ifdef KILN_WGMMA_DEVICE
// Descriptor of a K-major operand without swizzle: 8-row core matrices of 16-byte rows, rows 16
// bytes apart (consecutive pixels of one 16-channel plane), 8-row groups 128 bytes apart, the
// second 16 bytes of each row's k32 `secondHalf` bytes on (the leading byte offset: the next
// channel plane, or the next pixel).
__device__ __forceinline__ uint64_t planeDescriptor(uint32_t address, int secondHalf) {
  return uint64_t((address & 0x3FFFF) >> 4) | (uint64_t(secondHalf >> 4) << 16) | (uint64_t(128 >> 4) << 32);
}
#endif

#ifdef KILN_WGMMA_DEVICE
// The shifted-window kernels' loads and k-steps (both kernels below): the block's input window (with
// W's first k-step) and W's k-steps through a ring of STAGES swizzled stages from `base`, the window
// after them; `multiply(w, kk)` issues the products of K byte kk (one k32) against W's stage at w,
// one product group in flight. Returns with the products done and every copy landed.
template <int BN, int BK, int STAGES, class Multiply>
__device__ __forceinline__ void shiftedWindowMainloop(const ConvArgs& p, const ShiftedWindow& win, uint32_t base, int q0,
                                                      int blockN, Multiply&& multiply) {
  constexpr int kThreads = 256;
  auto stageW = [&](int stage) { return base + stage * BN * BK; };
  const uint32_t window = base + STAGES * BN * BK;
  const int tid = threadIdx.x;
  const int kTiles = (p.kPad + BK - 1) / BK, chunk = tid % (BK / 16), firstRow = tid / (BK / 16);
#pragma unroll
  for (int st = 0; st < STAGES - 2; ++st) {
    if (st == 0) {
      for (int j = tid; j < win.copies(); j += kThreads) {
        int at = 0;
        const int64_t from = win.copySource(q0, j, at);
        copyAsync16(window + at, from >= 0 ? p.x + from : p.x, from >= 0);
      }
    }
    if (st < kTiles) copyFilterStep<BN, BK, kThreads>(p, stageW(st), st, chunk, firstRow, p.kPad, blockN);
    commitAsync();
  }
  for (int kt = 0; kt < kTiles; ++kt) {
    waitAsync<STAGES - 3>();
    fenceAsyncProxy();
    __syncthreads();
    const int next = kt + STAGES - 2;
    if (next < kTiles) copyFilterStep<BN, BK, kThreads>(p, stageW(next % STAGES), next, chunk, firstRow, p.kPad, blockN);
    commitAsync();
    const uint32_t w = stageW(kt % STAGES);
    wgmmaFence();
#pragma unroll
    for (int ks = 0; ks < BK / 32; ++ks) multiply(w + ks * 32, kt * BK + ks * 32);
    wgmmaCommit();
    wgmmaWait<1>();
  }
  wgmmaWait<0>();
  waitAsync<0>();
}
#endif

// Undilated convolutions of stride 1 or 2 (ResNet's 3x3s and 1x1s, and its space-to-depth stem: a
// 4x4 over 16 channels) without a patch matrix. Over C = 16 * 2^j channels a pixel's 16-channel
// group is exactly one 16-byte row of a wgmma core matrix, so the block copies the input window its
// BM output rows read once, as planes of 16 channels with pixels 16 bytes apart ([phase][C /
// 16][pixels][16]), and tap (r, s)'s k32 product of an m64 row block reads A straight from plane
// c / 16 at the block's first pixel + r * wp + s (stride 1): the descriptor's rows are the window's
// pixels, shifted. A tile's gather is then the window's C * (BM + (R - 1) * wp + S - 1) bytes
// instead of BM rows of R * S * C, which for a 3x3 is about 7x fewer copies (the im2col tiles spend
// most of a 3x3's time issuing them). W streams through a ring of STAGES swizzled k-steps as in
// convWgmmaInt8; the window comes with the first. The epilogue skips the padding rows. The index
// math (the grid, stride 2's phases) is ShiftedWindow's (shifted_window.h).
// MW: m64 row blocks per warpgroup (BM = 128 * MW): two halve the W bytes per output row, which for
// the 3x3s over 256+ channels outweigh the window's.
template <int BN, int BK, int STAGES, int MW>
__global__ void __launch_bounds__(256, BN * MW <= 128 ? 2 : 1) convWgmmaInt8Shifted(ConvArgs p, ShiftedWindow win) {
#ifdef KILN_WGMMA_DEVICE
  static_assert((BK == 64 || BK == 128) && STAGES >= 3, "64/128-byte atoms; one stage computing, one draining, one loading");
  static_assert(MW == 1 || MW == 2, "one or two m64 row blocks per warpgroup");
  constexpr int BM = 128 * MW, kThreads = 256, kAcc = BN / 2;
  extern __shared__ __align__(1024) uint8_t smemRaw[];
  // W's stages first (swizzle atoms on 1,024-byte boundaries; the launch adds the slack), then the window.
  const uint32_t raw = static_cast<uint32_t>(__cvta_generic_to_shared(smemRaw));
  const uint32_t base = (raw + 1023u) & ~1023u;
  uint8_t* smem = smemRaw + (base - raw);
  const int tid = threadIdx.x, warpgroup = tid / 128;
  const int q0 = blockIdx.x * BM, blockN = blockIdx.y * BN;

  int32_t acc[MW][kAcc];
#pragma unroll
  for (int h = 0; h < MW; ++h)
#pragma unroll
    for (int i = 0; i < kAcc; ++i) acc[h][i] = 0;
  const uint32_t rowsAt = base + STAGES * BN * BK + warpgroup * MW * 64 * 16;
  const int secondHalf = win.secondHalf();
  shiftedWindowMainloop<BN, BK, STAGES>(p, win, base, q0, blockN, [&](uint32_t w, int kk) {
    const uint32_t a = rowsAt + win.tapOffset(kk);
#pragma unroll
    for (int h = 0; h < MW; ++h) WgmmaS8<BN>::mma(acc[h], planeDescriptor(a + h * 64 * 16, secondHalf), smemDescriptor<BK>(w));
  });
#pragma unroll
  for (int h = 0; h < MW; ++h)
#pragma unroll
    for (int i = 0; i < kAcc; ++i) fenceOperand(acc[h][i]);
  __syncthreads();  // the epilogue's tile reuses the stages

  auto pixelOf = [&](int row) { return win.outputPixel(q0 + row); };
  const int rowBase = warpgroup * MW * 64 + ((tid / 32) & 3) * 16 + ((tid & 31) >> 2);
  storeThroughSharedMemory<Int8Out, BM, BN, kThreads>(p, smem, pixelOf, blockN, [&](uint8_t* tile, int pitch, auto hasZ) {
#pragma unroll
    for (int h = 0; h < MW; ++h) finishWarpgroupRows<BN, hasZ>(p, acc[h], blockN, tile + (rowBase + h * 64) * pitch, pitch);
  });
#endif
}

// The shifted-window convolution with the operands swapped, for layers of 64 output channels
// (ResNet-50's stem and layer1's 3x3s). There a m64n64k32 product reads as many shared-memory bytes
// as it multiplies (2 KB of pixels and 2 KB of W for 64 x 64 x 32), so convWgmmaInt8Shifted runs
// them at about 40% of the INT8 rate. Here each warpgroup computes Y^T for its NP pixels: wgmma's A
// is W's 64 channels (the swizzled k-steps), its B the window's pixels (the same plane descriptors),
// m64nNPk32, which reads (64 + NP) * 32 bytes for 64 * NP * 32 products. A thread's accumulators are
// two channels (its row g and g + 8) of NP / 4 pixels; the epilogue writes them as bytes into the
// [pixel][channel] tile that storeThroughSharedMemory copies out (its Z, if any, read there).
template <int BK, int STAGES, int NP>
__global__ void __launch_bounds__(256, NP <= 128 ? 2 : 1) convWgmmaInt8ShiftedT(ConvArgs p, ShiftedWindow win) {
#ifdef KILN_WGMMA_DEVICE
  static_assert((BK == 64 || BK == 128) && STAGES >= 3, "64/128-byte atoms; one stage computing, one draining, one loading");
  static_assert(NP == 128 || NP == 256, "128 or 256 pixels per warpgroup");
  constexpr int BN = 64, BM = 2 * NP, kThreads = 256, kAcc = NP / 2;
  extern __shared__ __align__(1024) uint8_t smemRaw[];
  const uint32_t raw = static_cast<uint32_t>(__cvta_generic_to_shared(smemRaw));
  const uint32_t base = (raw + 1023u) & ~1023u;
  uint8_t* smem = smemRaw + (base - raw);
  const int tid = threadIdx.x, warpgroup = tid / 128;
  const int q0 = blockIdx.x * BM, blockN = blockIdx.y * BN;

  int32_t acc[kAcc];
#pragma unroll
  for (int i = 0; i < kAcc; ++i) acc[i] = 0;
  const uint32_t pixelsAt = base + STAGES * BN * BK + warpgroup * NP * 16;
  const int secondHalf = win.secondHalf();
  shiftedWindowMainloop<BN, BK, STAGES>(p, win, base, q0, blockN, [&](uint32_t w, int kk) {
    WgmmaS8<NP>::mma(acc, smemDescriptor<BK>(w), planeDescriptor(pixelsAt + win.tapOffset(kk), secondHalf));
  });
#pragma unroll
  for (int i = 0; i < kAcc; ++i) fenceOperand(acc[i]);
  __syncthreads();  // the epilogue's tile reuses the stages and the window
  // Accumulator 4j + e: channel g (+8 for e >= 2) of the warp's 16, pixel 8j + 2 * (lane % 4) + (e & 1).
  auto pixelOf = [&](int row) { return win.outputPixel(q0 + row); };
  const int lane = tid & 31, channel0 = ((tid / 32) & 3) * 16 + lane / 4, pixel0 = warpgroup * NP + (lane & 3) * 2;
  const float floor = kRoundBias + (p.relu ? 0.f : -127.f);
  storeThroughSharedMemory<Int8Out, BM, BN, kThreads>(p, smem, pixelOf, blockN, [&](uint8_t* tile, int pitch, auto hasZ) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int channel = channel0 + half * 8, n = blockN + channel;
      if (n >= p.k) continue;
      const float alpha = __ldg(p.alpha + n), bias = __ldg(static_cast<const float*>(p.bias) + n);
#pragma unroll
      for (int j = 0; j < NP / 8; ++j)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          uint8_t* at = tile + (pixel0 + j * 8 + e) * pitch + channel;
          float v = fmaf(float(acc[4 * j + half * 2 + e]), alpha, bias);
          if constexpr (decltype(hasZ)::value) v = fmaf(p.beta, float(static_cast<int8_t>(*at)), v);
          *at = static_cast<uint8_t>(q8Bits(v, floor));
        }
    }
  });
#endif
}

__global__ void wgmmaProbe(int* compiled) {
#ifdef KILN_WGMMA_DEVICE
  *compiled = 1;
#else
  *compiled = 0;
#endif
}

template <int BM, int BN, int STAGES, int BK>
void launchWgmmaTile(ConvArgs args, cudaStream_t stream) {
  constexpr int threads = BM / 64 * 128;
  constexpr int kAlignSlack = 1024;  // the kernel aligns the stages to 1,024 bytes
  using Plan = SharedMemoryPlan<Int8Out, BM, BN, BK, STAGES>;
  auto kernel = convWgmmaInt8<BM, BN, STAGES, BK>;
  // Set once per instantiation, before any capture (the first launch is a timing run).
  static const cudaError_t attr =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, Plan::maxBytes(kAlignSlack));
  KILN_CUDA_CHECK(attr);
  const int smemBytes = Plan::apply(args, kAlignSlack);
  dim3 grid(static_cast<unsigned>((args.m + BM - 1) / BM), static_cast<unsigned>((args.k + BN - 1) / BN));
  kernel<<<grid, threads, smemBytes, stream>>>(args);
}

// A persistent kernel (ring or warp-specialized; kThreads threads, BM-row M tiles, layers of MINKT
// to MAXKT k-steps of BK bytes, kExtra bytes of shared memory past the output tiles) launched as one
// wave of resident blocks, each walking M tiles blockIdx.x, + gridDim.x, ... of its N block. The
// wave for each k-step count is worked out once per kernel, before any capture (the first launch is
// a timing run).
template <void (*kKernel)(ConvArgs, int), int kThreads, int BM, int BN, int BK, int STAGES, int MINKT, int MAXKT,
          int kExtra>
void launchPersistent(ConvArgs args, cudaStream_t stream) {
  constexpr int kAlignSlack = 1024;  // the kernel aligns its shared memory to 1,024 bytes
  using Smem = PersistentSmem<BM, BN, BK, STAGES>;
  static int wave[MAXKT + 1];
  static const bool ready = [] {
    KILN_CUDA_CHECK(cudaFuncSetAttribute(kKernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         Smem::bytes(MAXKT, kExtra) + kAlignSlack));
    int device = 0, sms = 0;
    KILN_CUDA_CHECK(cudaGetDevice(&device));
    KILN_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    for (int kt = MINKT; kt <= MAXKT; ++kt) {
      int perSm = 0;
      KILN_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&perSm, kKernel, kThreads,
                                                                    Smem::bytes(kt, kExtra) + kAlignSlack));
      wave[kt] = (perSm < 1 ? 1 : perSm) * sms;
    }
    return true;
  }();
  (void)ready;
  const int kTiles = (args.kPad + BK - 1) / BK;
  KILN_CHECK(kTiles >= MINKT && kTiles <= MAXKT, Internal, "persistent wgmma tile launched on a layer whose K it does not take");
  args.zPrefetched = args.z != nullptr && args.k % 16 == 0;
  args.tileAt = 0;
  const int mTiles = (args.m + BM - 1) / BM, nBlocks = (args.k + BN - 1) / BN;
  int blocks = wave[kTiles] / nBlocks;
  blocks = blocks < 1 ? 1 : (blocks > mTiles ? mTiles : blocks);
  dim3 grid(static_cast<unsigned>(blocks), static_cast<unsigned>(nBlocks));
  kKernel<<<grid, kThreads, Smem::bytes(kTiles, kExtra) + kAlignSlack, stream>>>(args, mTiles);
}

// Ring tiles take STAGES - 2 k-steps and up; warp-specialized ones 64-row tiles, 384 threads and
// their full and empty mbarriers past the output tiles.
template <int BM, int BN, int BK, int STAGES, int MAXKT>
void launchWgmmaRing(ConvArgs args, cudaStream_t stream) {
  launchPersistent<convWgmmaInt8Ring<BM, BN, BK, STAGES>, BM / 64 * 128, BM, BN, BK, STAGES, STAGES - 2, MAXKT, 0>(
      args, stream);
}
template <int BN, int BK, int STAGES, int MAXKT>
void launchWgmmaWs(ConvArgs args, cudaStream_t stream) {
  launchPersistent<convWgmmaInt8Ws<BN, BK, STAGES>, 384, 64, BN, BK, STAGES, 1, MAXKT, 2 * STAGES * 8>(args, stream);
}

// A driver function (cuTensorMapEncodeTiled, ...Im2col), found through the runtime (no link against libcuda).
void* driverEntry(const char* name) {
  void* entry = nullptr;
  cudaDriverEntryPointQueryResult found{};
#if CUDART_VERSION >= 12050
  const cudaError_t err = cudaGetDriverEntryPointByVersion(name, &entry, 12000, cudaEnableDefault, &found);
#else
  const cudaError_t err = cudaGetDriverEntryPoint(name, &entry, cudaEnableDefault, &found);
#endif
  KILN_CHECK(err == cudaSuccess && found == cudaDriverEntryPointSuccess && entry != nullptr, Internal,
             std::string("the CUDA driver has no ") + name + " (TMA needs CUDA 12+)");
  return entry;
}
using EncodeTiled = decltype(&cuTensorMapEncodeTiled);
EncodeTiled encodeTiled() {
  static const EncodeTiled fn = reinterpret_cast<EncodeTiled>(driverEntry("cuTensorMapEncodeTiled"));
  return fn;
}
using EncodeIm2col = decltype(&cuTensorMapEncodeIm2col);
EncodeIm2col encodeIm2col() {
  static const EncodeIm2col fn = reinterpret_cast<EncodeIm2col>(driverEntry("cuTensorMapEncodeIm2col"));
  return fn;
}

// An int8 tensor map of `rank` (2 or 3) dimensions, innermost (contiguous bytes) first: their
// extents, the byte strides of the outer ones, and the box; swizzled as wide as the box's inner
// extent (64 or 128 bytes: the layouts wgmma and the epilogue read).
CUtensorMap tensorMap(const void* data, int rank, const cuuint64_t* dims, const cuuint64_t* strides, const cuuint32_t* box) {
  CUtensorMap map;
  const cuuint32_t elementStrides[3] = {1, 1, 1};
  const CUtensorMapSwizzle swizzle = box[0] == 128 ? CU_TENSOR_MAP_SWIZZLE_128B : CU_TENSOR_MAP_SWIZZLE_64B;
  const CUresult r = encodeTiled()(&map, CU_TENSOR_MAP_DATA_TYPE_UINT8, cuuint32_t(rank), const_cast<void*>(data), dims, strides,
                                   box, elementStrides, CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle,
                                   CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  KILN_CHECK(r == CUDA_SUCCESS, Internal, "cuTensorMapEncodeTiled failed (" + std::to_string(int(r)) + ")");
  return map;
}

// A TMA tile's tensor maps on a layer (tma_grid.h's shapes).
template <int BN, int BK>
TmaMaps tmaMaps(const ConvArgs& a, const TmaGrid& grid) {
  constexpr uint32_t kOutBox = BN < 128 ? BN : 128;
  const uint64_t wDims[2] = {uint64_t(a.kPad), uint64_t(a.k)}, wStrides[1] = {uint64_t(a.kPad)};
  const uint32_t wBox[2] = {BK, BN};
  const TmaMapShape in = tmaActivationShape(grid, a.m, a.ow, a.w_, a.c), out = tmaOutputShape(grid, a.m, a.ow, a.k);
  const uint32_t aBox[3] = {BK, uint32_t(grid.columns), uint32_t(grid.rows)},
                 outBox[3] = {kOutBox, uint32_t(grid.columns), uint32_t(grid.rows)};
  TmaMaps maps;
  maps.w = tensorMap(a.w, 2, wDims, wStrides, wBox);
  maps.a = tensorMap(a.x, in.rank, in.dims, in.strides, aBox);
  maps.y = tensorMap(a.y, out.rank, out.dims, out.strides, outBox);
  maps.z = a.z ? tensorMap(a.z, out.rank, out.dims, out.strides, outBox) : maps.y;
  return maps;
}

// Shared memory of a TMA tile on a layer of kTiles k-steps (the kernel's layout, plus its alignment slack).
constexpr int tmaSmemBytes(int bn, int bk, int ring, int slots, int kTiles) {
  return kTiles * bn * bk + 2 * ring * 64 * bk + 2 * slots * 64 * bn + 8 * (1 + 4 * ring + 4 * slots) + 1024;
}

// Whether a TMA tile (BN, BK, RING, SLOTS) takes layer g: a 1x1 without padding, of stride 1 or of
// stride 2 over an even height (TmaMaps), over rows of 16-byte multiples (C, kPad and K: TMA's
// strides), whose W slice fits in shared memory beside the rings.
bool tmaTileTakes(const Im2ColGeometry& g, int64_t kOut, int bn, int bk, int ring, int slots) {
  if (g.r != 1 || g.s != 1 || g.padH != 0 || g.padW != 0) return false;
  const bool unit = g.strideH == 1 && g.strideW == 1 && g.oh == g.h && g.ow == g.w;
  const bool halving = g.strideH == 2 && g.strideW == 2 && g.h % 2 == 0 && g.oh * 2 == g.h && g.ow == (g.w + 1) / 2;
  if (!unit && !halving) return false;
  if (g.c % 16 != 0 || g.kPad % 16 != 0 || kOut % 16 != 0) return false;
  const int kTiles = int((g.kPad + bk - 1) / bk);
  return tmaSmemBytes(bn, bk, ring, slots, kTiles) <= maxSharedMemoryPerBlock();
}

// One wave of a persistent TMA kernel (384 threads) launched with `bytes` of shared memory: the
// GPU's SMs times the blocks that reside on one (up to BLOCKS). The kernel may take all of an SM's
// shared memory (set once per kernel, before any capture: the first launch is a timing run).
template <auto kKernel, int BLOCKS>
int tmaWave(int bytes) {
  static const int sms = [] {
    KILN_CUDA_CHECK(cudaFuncSetAttribute(kKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, maxSharedMemoryPerBlock()));
    int device = 0, count = 0;
    KILN_CUDA_CHECK(cudaGetDevice(&device));
    KILN_CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device));
    return count;
  }();
  int perSm = 1;
  if (BLOCKS > 1) {
    KILN_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&perSm, kKernel, 384, bytes));
    perSm = perSm < 1 ? 1 : (perSm > BLOCKS ? BLOCKS : perSm);
  }
  return perSm * sms;
}

// Launches TMA tile (BN, BK, RING, SLOTS, BLOCKS) on a layer tmaTileTakes: one wave of resident blocks
// (up to BLOCKS per SM, as many as the layer's shared memory lets reside), split over the N blocks,
// each walking M tiles of 64 rows.
template <int BN, int BK, int RING, int SLOTS, int BLOCKS>
void launchWgmmaTma(ConvArgs args, cudaStream_t stream) {
  constexpr auto kernel = convWgmmaInt8Tma<BN, BK, RING, SLOTS, BLOCKS>;
  const int kTiles = (args.kPad + BK - 1) / BK;
  const TmaGrid tiles = planTmaGrid(args.m, args.ow, args.strideH);
  const TmaMaps maps = tmaMaps<BN, BK>(args, tiles);
  args.zPrefetched = 0, args.tileAt = 0;
  const int mTiles = tiles.mTiles, nBlocks = (args.k + BN - 1) / BN, bytes = tmaSmemBytes(BN, BK, RING, SLOTS, kTiles);
  int blocks = tmaWave<kernel, BLOCKS>(bytes) / nBlocks;
  blocks = blocks < 1 ? 1 : (blocks > mTiles ? mTiles : blocks);
  dim3 grid(static_cast<unsigned>(blocks), static_cast<unsigned>(nBlocks));
  kernel<<<grid, 384, bytes, stream>>>(args, maps, tiles);
}

// The TMA convolution tiles' maps (convWgmmaInt8TmaConv): A as X's im2col view, [N, H, W, C] with
// boxes of BK channels of 128 output pixels, its bounding box the filter corners of the output grid
// (the first at -pad, the last at -pad + (out - 1) * stride, walked at the stride); W as [K, kPad]
// (boxes BK x BN); Y and Z as [M, K] (boxes ZB x 64).
template <int BN, int BK>
TmaMaps tmaConvMaps(const ConvArgs& a) {
  constexpr uint32_t kOutBox = BN < 128 ? BN : 128;
  const int images = int(int64_t(a.m) / (int64_t(a.oh) * a.ow));
  // An [images, h, w, c] input's im2col view at the layer's output grid (boxes of BK channels of
  // 128 pixels).
  auto im2colMap = [&](CUtensorMap* map, const uint8_t* x, int h, int w, int c, int strideH, int strideW, int padH,
                       int padW, const char* what) {
    const uint64_t cc = uint64_t(c);
    const uint64_t dims[4] = {cc, uint64_t(w), uint64_t(h), uint64_t(images)},
                   strides[3] = {cc, uint64_t(w) * cc, uint64_t(h) * w * cc};
    const Im2colBox box = planIm2colBox(h, w, a.oh, a.ow, strideH, strideW, padH, padW);
    const cuuint32_t traversal[4] = {1, cuuint32_t(strideW), cuuint32_t(strideH), 1};
    const CUresult r = encodeIm2col()(map, CU_TENSOR_MAP_DATA_TYPE_UINT8, 4, const_cast<uint8_t*>(x), dims, strides, box.lower,
                                      box.upper, BK, 128, traversal, CU_TENSOR_MAP_INTERLEAVE_NONE,
                                      BK == 128 ? CU_TENSOR_MAP_SWIZZLE_128B : CU_TENSOR_MAP_SWIZZLE_64B,
                                      CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    KILN_CHECK(r == CUDA_SUCCESS, Internal,
               std::string("cuTensorMapEncodeIm2col failed for ") + what + " (" + std::to_string(int(r)) + ")");
  };
  TmaMaps maps;
  im2colMap(&maps.a, a.x, a.h, a.w_, a.c, a.strideH, a.strideW, a.padH, a.padW, "X");
  maps.a2 = maps.a;
  // A fused shortcut's input: a 1x1 at its stride, no padding, over the same output grid.
  if (a.x2 != nullptr) im2colMap(&maps.a2, a.x2, a.h2, a.w2, a.c2, a.stride2, a.stride2, 0, 0, "the shortcut's X2");
  const uint64_t wDims[2] = {uint64_t(a.kPad), uint64_t(a.k)}, wStrides[1] = {uint64_t(a.kPad)};
  const uint32_t wBox[2] = {BK, BN};
  const uint64_t outDims[2] = {uint64_t(a.k), uint64_t(a.m)}, outStrides[1] = {uint64_t(a.k)};
  const uint32_t outBox[2] = {kOutBox, 64};
  maps.w = tensorMap(a.w, 2, wDims, wStrides, wBox);
  maps.y = tensorMap(a.y, 2, outDims, outStrides, outBox);
  maps.z = a.z ? tensorMap(a.z, 2, outDims, outStrides, outBox) : maps.y;
  return maps;
}

// Shared memory of a TMA convolution tile on a layer of kTiles k-steps (the kernel's layout, plus
// its alignment slack).
constexpr int tmaConvSmemBytes(int bn, int bk, int ring, int slots, bool resident, int kTiles) {
  return (resident ? kTiles * bn * bk : 0) + ring * (128 + (resident ? 0 : bn)) * bk + 2 * slots * 64 * bn +
         8 * (2 * ring + 4 * slots + 1) + 1024;
}

// Whether a TMA convolution tile takes layer g: a square filter (1x1s too: there it is a GEMM
// whose W streams with A, for the 1x1s to many channels whose W slice the other TMA tiles keep
// resident one narrow N block at a time), or with KILN_CUDA_INT8_S2D_TAPS=on any R x S one (R x 1:
// the packed space-to-depth stem; not yet run on a GPU, so off by default), with the same stride,
// padding and dilation both ways (GPU tests cover only those, so the order of the im2col map's
// corners is not left to chance), over
// whole k-steps of channels (a k-step is one tap's), K a multiple of 16 (Y's rows are TMA strides),
// within im2col's limits on a 4-D map (corners in [-128, 127], tap offsets up to 255, traversal
// strides up to 8).
// A fused shortcut (g.c2 > 0) likewise: whole k-steps of its channels, a stride up to 8, its
// corners within range, and its input the size its stride maps onto the output grid.
bool tmaConvTileTakes(const Im2ColGeometry& g, int64_t kOut, int bn, int bk, int ring, int slots, bool resident) {
  if (g.strideH != g.strideW || g.padH != g.padW || g.dilH != g.dilW) return false;
  if (g.r != g.s && !envIs("KILN_CUDA_INT8_S2D_TAPS", "on")) return false;
  if (g.c % bk != 0 || g.kPad != int64_t(g.r) * g.s * g.c + g.c2 || kOut % 16 != 0 || kOut < bn) return false;
  if (g.strideH < 1 || g.strideH > 8 || g.padH > 128 || (std::max(g.r, g.s) - 1) * g.dilH > 255) return false;
  auto inRange = [](int corner) { return corner >= -128 && corner <= 127; };
  const Im2colBox box = planIm2colBox(int(g.h), int(g.w), int(g.oh), int(g.ow), g.strideH, g.strideW, g.padH, g.padW);
  if (!inRange(box.upper[0]) || !inRange(box.upper[1]) || g.n * g.oh * g.ow < 128) return false;
  if (g.c2 > 0) {
    if (g.c2 % bk != 0 || g.stride2 < 1 || g.stride2 > 8) return false;
    if ((g.h2 - 1) / g.stride2 + 1 != g.oh || (g.w2 - 1) / g.stride2 + 1 != g.ow) return false;
    const Im2colBox box2 = planIm2colBox(int(g.h2), int(g.w2), int(g.oh), int(g.ow), g.stride2, g.stride2, 0, 0);
    if (!inRange(box2.upper[0]) || !inRange(box2.upper[1])) return false;
  }
  return tmaConvSmemBytes(bn, bk, ring, slots, resident, int(g.kPad / bk)) <= maxSharedMemoryPerBlock();
}

// Launches TMA convolution tile (BN, BK, RING, SLOTS, BLOCKS, RESIDENT) on a layer tmaConvTileTakes:
// one wave of resident blocks (up to BLOCKS per SM, as many as the layer's shared memory lets
// reside) walking the layer's tiles of 128 pixels x BN channels (RESIDENT: split over the N blocks,
// each walking M tiles).
template <int BN, int BK, int RING, int SLOTS, int BLOCKS, bool RESIDENT>
void launchWgmmaTmaConv(ConvArgs args, cudaStream_t stream) {
  constexpr auto kernel = convWgmmaInt8TmaConv<BN, BK, RING, SLOTS, BLOCKS, RESIDENT>;
  const int bytes = tmaConvSmemBytes(BN, BK, RING, SLOTS, RESIDENT, args.kPad / BK);
  const TmaMaps maps = tmaConvMaps<BN, BK>(args);
  args.zPrefetched = 0, args.tileAt = 0;
  const int mTiles = (args.m + 127) / 128, nBlocks = (args.k + BN - 1) / BN;
  const int tiles = RESIDENT ? mTiles : mTiles * nBlocks, gridN = RESIDENT ? nBlocks : 1;
  int blocks = tmaWave<kernel, BLOCKS>(bytes) / gridN;
  blocks = blocks < 1 ? 1 : (blocks > tiles ? tiles : blocks);
  kernel<<<dim3(unsigned(blocks), unsigned(gridN)), 384, bytes, stream>>>(args, maps, tiles);
}

// A shifted-window tile's window and shared memory for layer g, or false where the kernel does not
// take g (planShiftedWindow) or the window beside W's stages exceeds the GPU's shared memory.
struct ShiftedPlan {
  ShiftedWindow win;
  int bytes;
};
bool shiftedPlan(const Im2ColGeometry& g, int bm, int bn, int bk, int stages, ShiftedPlan& plan) {
  constexpr int kAlignSlack = 1024;
  if (!planShiftedWindow(g.n, g.h, g.w, g.c, g.oh, g.ow, g.r, g.s, g.strideH, g.strideW, g.padH, g.padW, g.dilH, g.dilW,
                         g.kPad, bm, bk, plan.win))
    return false;
  const int64_t stagesAndWindow = int64_t(stages) * bn * bk + plan.win.windowBytes;
  const int64_t bytes = std::max<int64_t>(stagesAndWindow, int64_t(bm) * (bn + 16)) + kAlignSlack;
  if (bytes > maxSharedMemoryPerBlock()) return false;
  plan.bytes = int(bytes);
  return true;
}

// Launches a shifted-window kernel (plain or transposed) with blocks of BM pixels x BN channels on a
// layer `plan` (shiftedPlan with the tile's shape) took.
template <void (*kKernel)(ConvArgs, ShiftedWindow), int BM, int BN>
void launchShiftedWindow(ConvArgs args, const ShiftedPlan& plan, cudaStream_t stream) {
  // Set once per instantiation, before any capture (the first launch is a timing run).
  static const cudaError_t attr =
      cudaFuncSetAttribute(kKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, maxSharedMemoryPerBlock());
  KILN_CUDA_CHECK(attr);
  args.zPrefetched = 0, args.tileAt = 0;
  dim3 grid(static_cast<unsigned>((plan.win.rows + BM - 1) / BM), static_cast<unsigned>((args.k + BN - 1) / BN));
  kKernel<<<grid, 256, plan.bytes, stream>>>(args, plan.win);
}

// Block shapes (BM x BN, stages, bytes of K per stage), timed per layer with the mma.sync ones: wide
// tiles for the big layers, 64-row and 64-channel ones (two blocks per SM) where a layer has few
// pixels or channels, 64-byte k-steps (three blocks per SM) for the 1x1 layers over 64 channels,
// which a 128-byte step would half fill with zeros.
using Launch = void (*)(ConvArgs, cudaStream_t);
const Launch kWgmmaLaunches[] = {
    &launchWgmmaTile<128, 128, 5, 128>, &launchWgmmaTile<128, 256, 4, 128>, &launchWgmmaTile<64, 128, 4, 128>,
    &launchWgmmaTile<128, 64, 4, 128>,  &launchWgmmaTile<64, 64, 6, 128>,   &launchWgmmaTile<256, 128, 4, 128>,
    &launchWgmmaTile<128, 128, 4, 64>,  &launchWgmmaTile<128, 256, 3, 64>,
};

// Ring tiles (BM x BN, bytes per k-step, stages, most k-steps): each runs layers of STAGES - 2 to
// MAXKT k-steps and hands any other to the resident-block tile named with it (so a tile forced for a
// whole model still runs all of it). Shared memory: 68 KB (1x1 over 64 channels) to 164 KB.
// Then the warp-specialized tiles (BN, bytes per k-step, stages, most k-steps; 64-row M tiles),
// which take 1 to MAXKT k-steps. Shared memory: 83 KB (1x1 over 64 channels to 256) to 212 KB.
struct PersistentTile {
  Launch launch;
  int bk, minKTiles, maxKTiles, fallback;
  bool warpSpecialized;
};
template <int BM, int BN, int BK, int STAGES, int MAXKT>
constexpr PersistentTile ringTile(int fallback) {
  return {&launchWgmmaRing<BM, BN, BK, STAGES, MAXKT>, BK, STAGES - 2, MAXKT, fallback, false};
}
template <int BN, int BK, int STAGES, int MAXKT>
constexpr PersistentTile wsTile(int fallback) {
  return {&launchWgmmaWs<BN, BK, STAGES, MAXKT>, BK, 1, MAXKT, fallback, true};
}
const PersistentTile kPersistentTiles[] = {
    ringTile<128, 128, 64, 3, 1>(6), ringTile<128, 256, 64, 3, 1>(7), ringTile<128, 128, 128, 3, 2>(0),
    ringTile<128, 64, 128, 3, 5>(3), ringTile<128, 128, 128, 4, 4>(0), wsTile<256, 64, 8, 1>(7),
    wsTile<128, 64, 8, 1>(6),        wsTile<128, 128, 6, 8>(0),        wsTile<256, 128, 6, 4>(1),
    wsTile<64, 128, 8, 8>(3),
};
// Then the shifted-window tiles (BN, bytes per k-step, stages, m64 blocks per warpgroup: 128- or
// 256-row M tiles), each handing a layer it does not take (shiftedPlan) to the resident-block tile
// named with it.
struct ShiftedTile {
  void (*launch)(ConvArgs, const ShiftedPlan&, cudaStream_t);
  int bm, bn, bk, stages, fallback;
  bool plan(const Im2ColGeometry& g, ShiftedPlan& out) const { return shiftedPlan(g, bm, bn, bk, stages, out); }
};
template <int BN, int BK, int STAGES, int MW>
constexpr ShiftedTile shiftedTile(int fallback) {
  return {&launchShiftedWindow<convWgmmaInt8Shifted<BN, BK, STAGES, MW>, 128 * MW, BN>, 128 * MW, BN, BK, STAGES, fallback};
}
const ShiftedTile kShiftedTiles[] = {
    shiftedTile<128, 128, 4, 1>(0), shiftedTile<256, 128, 3, 1>(1), shiftedTile<64, 64, 4, 1>(3),
    shiftedTile<128, 64, 4, 1>(6),  shiftedTile<128, 128, 4, 2>(0), shiftedTile<64, 64, 4, 2>(3),
};
// Then the TMA tiles (BN, bytes per k-step, A stages and output slots per consumer; 64-row M
// tiles), for the 1x1s of stride 1 or 2 (tmaTileTakes), each handing any other layer to the
// resident-block tile named with it: 64-byte k-steps for the 1x1s over 64 channels, 128-byte ones
// otherwise; BN = 64 keeps W resident up to 2,048 channels. Tiles 6-8 have four output slots per
// consumer, for the residual 1x1s (the residual is most of their bytes; with two slots the 64 ->
// 256 ones ran at half their bandwidth floor, with four they take 19 of ResNet-50's layers). The
// last four run two blocks per SM (BLOCKS), for the 1x1s whose one k-step leaves the epilogue most
// of the work (the last: four slots, and a ring of two so that two fit beside W over 512 channels).
struct TmaTile {
  Launch launch;
  int bn, bk, ring, slots, fallback;
  bool takes(const Im2ColGeometry& g, int64_t kOut) const {
    return kOut >= bn && g.kPad >= bk && g.n * g.oh * g.ow >= 64 && tmaTileTakes(g, kOut, bn, bk, ring, slots);
  }
};
template <int BN, int BK, int RING, int SLOTS = 2, int BLOCKS = 1>
constexpr TmaTile tmaTile(int fallback) {
  return {&launchWgmmaTma<BN, BK, RING, SLOTS, BLOCKS>, BN, BK, RING, SLOTS, fallback};
}
const TmaTile kTmaTiles[] = {
    tmaTile<256, 64, 4>(7),       tmaTile<64, 64, 4>(4),       tmaTile<256, 128, 4>(1),
    tmaTile<128, 128, 4>(0),      tmaTile<64, 128, 4>(3),      tmaTile<128, 128, 3>(0),
    tmaTile<256, 64, 4, 4>(7),    tmaTile<64, 64, 4, 4>(4),    tmaTile<128, 128, 4, 4>(0),
    tmaTile<64, 64, 4, 2, 2>(4),  tmaTile<64, 64, 4, 4, 2>(4), tmaTile<64, 128, 4, 2, 2>(3),
    tmaTile<64, 128, 2, 4, 2>(3),
};
// Then the transposed shifted-window tiles (bytes per k-step, stages, pixels per warpgroup; 64
// output channels a block), for the layers of 64 channels (they take the same layers as the
// shifted-window tiles, and KILN_CUDA_WGMMA_SHIFTED=off leaves them out too).
template <int BK, int STAGES, int NP>
constexpr ShiftedTile transposedTile(int fallback) {
  return {&launchShiftedWindow<convWgmmaInt8ShiftedT<BK, STAGES, NP>, 2 * NP, 64>, 2 * NP, 64, BK, STAGES, fallback};
}
const ShiftedTile kTransposedTiles[] = {
    transposedTile<64, 4, 128>(4), transposedTile<64, 4, 256>(4),
    transposedTile<128, 4, 128>(4), transposedTile<128, 4, 256>(4),
};
// Then the TMA convolution tiles (BN, bytes per k-step, stages, output slots per consumer, blocks
// per SM; 128-pixel M tiles), for square filters (tmaConvTileTakes), each handing any other layer
// to the resident-block tile named with it: 256 and 128 channels for the 3x3s over 128+, 64 (two
// blocks per SM) for layer1's 3x3s over 64, with 64- or 128-byte k-steps; 256 x 64-byte k-steps
// for the 1x1s over 64 channels; 64 channels with W resident (two blocks per SM) for layer1's 3x3s;
// four output slots per consumer (the residual loads a tile further ahead) for the residual 1x1s.
struct TmaConvTile {
  Launch launch;
  int bn, bk, ring, slots, fallback;
  bool resident;
  bool takes(const Im2ColGeometry& g, int64_t kOut) const {
    return tmaConvTileTakes(g, kOut, bn, bk, ring, slots, resident);
  }
};
template <int BN, int BK, int RING, int SLOTS = 2, int BLOCKS = 1, bool RESIDENT = false>
constexpr TmaConvTile tmaConvTile(int fallback) {
  return {&launchWgmmaTmaConv<BN, BK, RING, SLOTS, BLOCKS, RESIDENT>, BN, BK, RING, SLOTS, fallback, RESIDENT};
}
const TmaConvTile kTmaConvTiles[] = {
    tmaConvTile<256, 128, 3>(1),         tmaConvTile<128, 128, 5>(0),
    tmaConvTile<64, 64, 4, 2, 2>(4),     tmaConvTile<64, 128, 3, 2, 2>(4),
    tmaConvTile<256, 64, 4>(7),          tmaConvTile<64, 64, 6, 2, 2, true>(4),
    tmaConvTile<128, 128, 4, 4>(0),
};
constexpr int kResidentTiles = sizeof(kWgmmaLaunches) / sizeof(kWgmmaLaunches[0]);
constexpr int kPersistentEnd = kResidentTiles + sizeof(kPersistentTiles) / sizeof(kPersistentTiles[0]);
constexpr int kShiftedEnd = kPersistentEnd + sizeof(kShiftedTiles) / sizeof(kShiftedTiles[0]);
constexpr int kTmaEnd = kShiftedEnd + sizeof(kTmaTiles) / sizeof(kTmaTiles[0]);
constexpr int kTransposedEnd = kTmaEnd + sizeof(kTransposedTiles) / sizeof(kTransposedTiles[0]);
static_assert(kTransposedEnd + sizeof(kTmaConvTiles) / sizeof(kTmaConvTiles[0]) == kWgmmaTiles, "kWgmmaTiles");

// The shifted-window tile `tile` names (plain or transposed).
const ShiftedTile& shiftedTileOf(int tile) {
  return tile >= kTmaEnd ? kTransposedTiles[tile - kTmaEnd] : kShiftedTiles[tile - kPersistentEnd];
}

}  // namespace

bool wgmmaConvAvailable() {
  static const bool available = [] {
    // KILN_CUDA_WGMMA=off: the mma.sync tiles only (comparisons, or a driver that mishandles sm_90a).
    if (envIs("KILN_CUDA_WGMMA", "off")) return false;
    int device = 0, major = 0, minor = 0;
    if (cudaGetDevice(&device) != cudaSuccess) return false;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess)
      return false;
    if (major != 9 || minor != 0) return false;  // sm_90a code runs on sm_90 only
    int* flag = nullptr;
    if (cudaMalloc(&flag, sizeof(int)) != cudaSuccess) return false;
    int compiled = 0;
    wgmmaProbe<<<1, 1>>>(flag);
    const bool ran = cudaGetLastError() == cudaSuccess &&
                     cudaMemcpy(&compiled, flag, sizeof(int), cudaMemcpyDeviceToHost) == cudaSuccess;
    cudaFree(flag);
    cudaGetLastError();  // a module without an image for this GPU must not poison later checks
    return ran && compiled == 1;
  }();
  return available;
}

void launchWgmmaInt8Conv(int tile, const ConvArgs& args, const Im2ColGeometry& g, cudaStream_t stream) {
  KILN_CHECK(tile >= 0 && tile < kWgmmaTiles, Internal, "no wgmma convolution tile " + std::to_string(tile));
  KILN_CHECK(wgmmaConvAvailable(), Internal, "wgmma convolution tiles need an sm_90 GPU and an sm_90a build");
  if (g.c2 > 0) {
    KILN_CHECK(wgmmaTmaConvTakesShortcut(tile, g, args.k), Internal,
               "wgmma tile " + std::to_string(tile) + " does not take this fused shortcut convolution");
    return kTmaConvTiles[tile - kTransposedEnd].launch(args, stream);
  }
  if (tile < kResidentTiles) return kWgmmaLaunches[tile](args, stream);
  if (tile < kPersistentEnd) {
    const PersistentTile& persistent = kPersistentTiles[tile - kResidentTiles];
    return wgmmaTileRunsAsItself(tile, g, args.k) ? persistent.launch(args, stream)
                                                   : kWgmmaLaunches[persistent.fallback](args, stream);
  }
  if (tile >= kShiftedEnd && tile < kTmaEnd) {
    const TmaTile& tma = kTmaTiles[tile - kShiftedEnd];
    return tma.takes(g, args.k) ? tma.launch(args, stream) : kWgmmaLaunches[tma.fallback](args, stream);
  }
  if (tile >= kTransposedEnd) {
    const TmaConvTile& conv = kTmaConvTiles[tile - kTransposedEnd];
    return conv.takes(g, args.k) ? conv.launch(args, stream) : kWgmmaLaunches[conv.fallback](args, stream);
  }
  const ShiftedTile& shifted = shiftedTileOf(tile);
  ShiftedPlan plan;
  return shifted.plan(g, plan) ? shifted.launch(args, plan, stream) : kWgmmaLaunches[shifted.fallback](args, stream);
}

bool wgmmaTmaConvTakesShortcut(int tile, const Im2ColGeometry& g, int64_t kOut) {
  return g.c2 > 0 && tile >= kTransposedEnd && tile < kWgmmaTiles && kTmaConvTiles[tile - kTransposedEnd].takes(g, kOut);
}

WgmmaTileKind wgmmaTileKind(int tile) {
  if (tile < kResidentTiles || tile >= kWgmmaTiles) return WgmmaTileKind::Resident;
  if ((tile >= kShiftedEnd && tile < kTmaEnd) || tile >= kTransposedEnd) return WgmmaTileKind::Tma;
  if (tile >= kTmaEnd) return WgmmaTileKind::Shifted;
  if (tile >= kPersistentEnd) return WgmmaTileKind::Shifted;
  return kPersistentTiles[tile - kResidentTiles].warpSpecialized ? WgmmaTileKind::WarpSpecialized : WgmmaTileKind::Ring;
}

bool wgmmaTileEnabled(int tile) {
  static const bool warpSpecialized = !envIs("KILN_CUDA_WGMMA_WS", "off"), shifted = !envIs("KILN_CUDA_WGMMA_SHIFTED", "off"),
                    tma = !envIs("KILN_CUDA_WGMMA_TMA", "off");
  const WgmmaTileKind kind = wgmmaTileKind(tile);
  return (kind != WgmmaTileKind::WarpSpecialized || warpSpecialized) && (kind != WgmmaTileKind::Shifted || shifted) &&
         (kind != WgmmaTileKind::Tma || tma);
}

bool wgmmaTileRunsAsItself(int tile, const Im2ColGeometry& g, int64_t kOut) {
  if (tile < 0 || tile >= kWgmmaTiles) return false;
  if (tile < kResidentTiles) return true;
  if (tile < kPersistentEnd) {
    const PersistentTile& persistent = kPersistentTiles[tile - kResidentTiles];
    const int64_t kTiles = (g.kPad + persistent.bk - 1) / persistent.bk;
    return kTiles >= persistent.minKTiles && kTiles <= persistent.maxKTiles;
  }
  if (tile >= kShiftedEnd && tile < kTmaEnd) return kTmaTiles[tile - kShiftedEnd].takes(g, kOut);
  if (tile >= kTransposedEnd) return kTmaConvTiles[tile - kTransposedEnd].takes(g, kOut);
  ShiftedPlan plan;
  return shiftedTileOf(tile).plan(g, plan);
}

}  // namespace kiln::cuda
