// Tensor-core FlashAttention for float16 (kiln.Attention / kiln.CudaAttention, head dims up to 128),
// FlashAttention-2 style: one block of up to 4 warps per (batch, head, 16*R queries), each warp
// owning 16 query rows (R row groups) and, where the grid is too small to fill the GPU, a slice
// of every key tile (S key splits merged at the end). Key/value tiles of 64 rows are
// double-buffered in shared memory (cp.async: the next tile loads while this one is used). Every
// product runs on mma.sync.m16n8k16 (f16 in, f32 accumulation) with operands from ldmatrix:
//   S = Q K^T stays in registers; the online softmax (running max and sum per row, base-2
//   exponentials) works on those registers with quad shuffles; P is repacked to f16 in registers
//   as the A operand of O += P V (the accumulator layout of m16n8k16 is its A layout), and O stays
//   in registers until the end, where it is staged through shared memory for 16-byte stores.
// The kernel is compiled for head-dim capacities 32, 64 and 128; a smaller head dim is zero-padded
// in shared memory (zero Q/K columns add nothing to S, zero V columns are not written). Layouts come
// as element strides, so [B,H,S,D] and [B,S,H,D] tensors are read and written in place; rows that
// are 16-byte aligned and contiguous load with cp.async, anything else element by element.
#include <cuda_fp16.h>
#include <cuda_pipeline.h>

#include <cstdint>

#include "backends/cuda/attention_tc.h"
#include "backends/cuda/cuda_common.h"

namespace kiln::cuda {
namespace {

constexpr int kKeys = 64;  // keys per tile
constexpr float kLog2e = 1.4426950408889634f;

// Shared-memory rows are padded by 8 halves (16 bytes): the 8 row addresses of one ldmatrix then
// fall in 8 different 16-byte bank groups.
template <int DMAX>
struct Tiles {
  static constexpr int kStride = DMAX + 8;  // halves per row
  template <int W>
  static constexpr size_t bytes() {
    return size_t(16 * W + 4 * kKeys) * kStride * sizeof(__half);  // Q, K[2], V[2]
  }
};

__device__ inline uint32_t smemAddress(const void* p) { return static_cast<uint32_t>(__cvta_generic_to_shared(p)); }

__device__ inline void ldmatrixX4(uint32_t (&r)[4], const __half* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smemAddress(p)));
}

__device__ inline void ldmatrixX4Trans(uint32_t (&r)[4], const __half* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smemAddress(p)));
}

// d[4] += a[4] (16x16, row) * b[2] (16x8, col)
__device__ inline void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ inline uint32_t packHalf2(float lo, float hi) {
  __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}

// rows x DMAX halves of a [rows][D] tensor slice (row stride rs, element stride es) into shared
// memory; rows past `valid` and columns past D are zero.
template <int DMAX>
__device__ inline void loadRows(__half* dst, const __half* src, int rows, int64_t valid, int D, int64_t rs, int64_t es,
                                bool vectorized, int tid, int threads) {
  constexpr int kStride = Tiles<DMAX>::kStride;
  constexpr int kChunks = DMAX / 8;
  if (vectorized) {
    const int d8 = D / 8;  // D % 8 == 0 when vectorized
    for (int e = tid; e < rows * kChunks; e += threads) {
      const int r = e / kChunks, c = e - r * kChunks;
      __half* to = dst + r * kStride + c * 8;
      if (r < valid && c < d8) __pipeline_memcpy_async(to, src + r * rs + c * 8, 16);
      else *reinterpret_cast<uint4*>(to) = make_uint4(0, 0, 0, 0);
    }
  } else {
    const __half zero = __float2half(0.f);
    for (int e = tid; e < rows * DMAX; e += threads) {
      const int r = e / DMAX, d = e - r * DMAX;
      dst[r * kStride + d] = r < valid && d < D ? src[r * rs + d * es] : zero;
    }
  }
}

// R row groups of 16 queries x S key splits = W warps. With S > 1 the warps of one row group
// take disjoint 64/S-key slices of every tile and their partial softmax states are merged at the
// end: a grid too small to fill the GPU (BERT at batch 1: 12 heads x 128 queries) still gets four
// warps per block working in parallel instead of one walking every key alone.
template <int DMAX, int R, int S>
__global__ void __launch_bounds__(R * S * 32) flashAttentionMma(const __half* Q, const __half* K, const __half* V,
                                                                const __half* mask, __half* O, AttentionShape p) {
  constexpr int W = R * S;
  constexpr int kStride = Tiles<DMAX>::kStride;
  constexpr int kRows = 16 * R;
  constexpr int kSlice = kKeys / S;    // keys of each tile per warp
  constexpr int kDChunks = DMAX / 16;  // k-steps of Q K^T, d-tile pairs of P V
  extern __shared__ __align__(128) unsigned char smem[];
  __half* qs = reinterpret_cast<__half*>(smem);
  __half* ks = qs + kRows * kStride;   // [2][kKeys][kStride]
  __half* vs = ks + 2 * kKeys * kStride;

  const int tid = threadIdx.x, lane = tid % 32;
  const int warp = (tid / 32) % R, split = (tid / 32) / R;  // row group, key slice
  const int g = lane / 4, t = lane % 4;  // mma fragment coordinates: row group, thread in group
  const int D = static_cast<int>(p.D);
  const int64_t bh = blockIdx.y;
  const int64_t b = bh / p.H, h = bh % p.H;
  const int64_t q0 = static_cast<int64_t>(blockIdx.x) * kRows;
  const __half* qBase = Q + b * p.q[0] + h * p.q[1] + q0 * p.q[2];
  const __half* kBase = K + b * p.k[0] + h * p.k[1];
  const __half* vBase = V + b * p.v[0] + h * p.v[1];
  const bool vec = p.vectorized != 0;
  const int tiles = static_cast<int>((p.Sk + kKeys - 1) / kKeys);

  auto loadKv = [&](int tile, int buffer) {
    const int64_t k0 = int64_t(tile) * kKeys;
    loadRows<DMAX>(ks + buffer * kKeys * kStride, kBase + k0 * p.k[2], kKeys, p.Sk - k0, D, p.k[2], p.k[3], vec, tid,
                   W * 32);
    loadRows<DMAX>(vs + buffer * kKeys * kStride, vBase + k0 * p.v[2], kKeys, p.Sk - k0, D, p.v[2], p.v[3], vec, tid,
                   W * 32);
  };
  loadRows<DMAX>(qs, qBase, kRows, p.Sq - q0, D, p.q[2], p.q[3], vec, tid, W * 32);
  loadKv(0, 0);
  __pipeline_commit();

  // This warp's two query rows per thread (g and g + 8 of its 16).
  const int64_t rowA = q0 + warp * 16 + g, rowB = rowA + 8;
  const float scale = p.scale * kLog2e;  // scores in base 2
  // Rows past Sq are computed (their Q is zero) but never written; their mask reads stay in bounds.
  const int64_t lastRow = p.Sq - 1;
  const __half* maskA = mask ? mask + b * p.mask[0] + h * p.mask[1] + min(rowA, lastRow) * p.mask[2] : nullptr;
  const __half* maskB = mask ? mask + b * p.mask[0] + h * p.mask[1] + min(rowB, lastRow) * p.mask[2] : nullptr;

  uint32_t qf[kDChunks][4];
  float o[DMAX / 8][4];
#pragma unroll
  for (int i = 0; i < DMAX / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
  float maxA = -INFINITY, maxB = -INFINITY, sumA = 0.f, sumB = 0.f;

  for (int tile = 0; tile < tiles; ++tile) {
    const int buffer = tile & 1;
    if (tile + 1 < tiles) {
      // The other buffer was last read in the previous iteration, which ended with a barrier.
      loadKv(tile + 1, buffer ^ 1);
      __pipeline_commit();
      __pipeline_wait_prior(1);
    } else {
      __pipeline_wait_prior(0);
    }
    __syncthreads();
    if (tile == 0) {
      // Q fragments once: 16 rows x DMAX as kDChunks A operands.
      const int mi = lane >> 3;
      const __half* row = qs + (warp * 16 + (mi & 1) * 8 + (lane & 7)) * kStride + (mi >> 1) * 8;
#pragma unroll
      for (int c = 0; c < kDChunks; ++c) ldmatrixX4(qf[c], row + c * 16);
    }
    const __half* kt = ks + buffer * kKeys * kStride;
    const __half* vt = vs + buffer * kKeys * kStride;

    // S[16 x kSlice] = Q K^T over this warp's keys of the tile: 16x8 accumulators.
    float s[kSlice / 8][4];
#pragma unroll
    for (int n = 0; n < kSlice / 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
    {
      const int mi = lane >> 3;
      const __half* kRow = kt + (split * kSlice + (mi >> 1) * 8 + (lane & 7)) * kStride + (mi & 1) * 8;
#pragma unroll
      for (int np = 0; np < kSlice / 16; ++np) {
#pragma unroll
        for (int c = 0; c < kDChunks; ++c) {
          uint32_t kf[4];
          ldmatrixX4(kf, kRow + np * 16 * kStride + c * 16);
          mma16816(s[2 * np], qf[c], kf[0], kf[1]);
          mma16816(s[2 * np + 1], qf[c], kf[2], kf[3]);
        }
      }
    }

    // Scale, mask, causal and key bounds; this tile's row maxima.
    const int64_t k0 = int64_t(tile) * kKeys + split * kSlice;
    float tileMaxA = -INFINITY, tileMaxB = -INFINITY;
#pragma unroll
    for (int n = 0; n < kSlice / 8; ++n) {
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const int64_t kj = k0 + n * 8 + 2 * t + j;
        float a = s[n][j] * scale, bb = s[n][2 + j] * scale;
        if (kj >= p.Sk) {
          a = bb = -INFINITY;
        } else {
          if (mask) {
            a += __half2float(maskA[kj * p.mask[3]]) * kLog2e;
            bb += __half2float(maskB[kj * p.mask[3]]) * kLog2e;
          }
          if (p.causal) {
            const int64_t shift = p.Sk - p.Sq;
            if (kj > rowA + shift) a = -INFINITY;
            if (kj > rowB + shift) bb = -INFINITY;
          }
        }
        s[n][j] = a, s[n][2 + j] = bb;
        tileMaxA = fmaxf(tileMaxA, a), tileMaxB = fmaxf(tileMaxB, bb);
      }
    }
    // The four threads of a quad hold one row.
    tileMaxA = fmaxf(tileMaxA, __shfl_xor_sync(0xffffffffu, tileMaxA, 1));
    tileMaxA = fmaxf(tileMaxA, __shfl_xor_sync(0xffffffffu, tileMaxA, 2));
    tileMaxB = fmaxf(tileMaxB, __shfl_xor_sync(0xffffffffu, tileMaxB, 1));
    tileMaxB = fmaxf(tileMaxB, __shfl_xor_sync(0xffffffffu, tileMaxB, 2));
    const float newMaxA = fmaxf(maxA, tileMaxA), newMaxB = fmaxf(maxB, tileMaxB);
    // A row with no unmasked key so far keeps reference 0: exp2(-inf - 0) = 0, never NaN.
    const float refA = newMaxA == -INFINITY ? 0.f : newMaxA, refB = newMaxB == -INFINITY ? 0.f : newMaxB;
    const float corrA = exp2f(maxA - refA), corrB = exp2f(maxB - refB);
    maxA = newMaxA, maxB = newMaxB;
    sumA *= corrA, sumB *= corrB;
#pragma unroll
    for (int i = 0; i < DMAX / 8; ++i) o[i][0] *= corrA, o[i][1] *= corrA, o[i][2] *= corrB, o[i][3] *= corrB;

    // P = exp2(S - ref) packed as f16 A operands (two 16x8 accumulators make one 16x16 A), O += P V.
    const int mi = lane >> 3;
    const __half* vRow = vt + (split * kSlice + (mi & 1) * 8 + (lane & 7)) * kStride + (mi >> 1) * 8;
#pragma unroll
    for (int kc = 0; kc < kSlice / 16; ++kc) {
      uint32_t pf[4];
      {
        const float* lo = s[2 * kc];
        const float* hi = s[2 * kc + 1];
        const float p0 = exp2f(lo[0] - refA), p1 = exp2f(lo[1] - refA), p2 = exp2f(lo[2] - refB), p3 = exp2f(lo[3] - refB);
        const float p4 = exp2f(hi[0] - refA), p5 = exp2f(hi[1] - refA), p6 = exp2f(hi[2] - refB), p7 = exp2f(hi[3] - refB);
        sumA += p0 + p1 + p4 + p5;
        sumB += p2 + p3 + p6 + p7;
        pf[0] = packHalf2(p0, p1);
        pf[1] = packHalf2(p2, p3);
        pf[2] = packHalf2(p4, p5);
        pf[3] = packHalf2(p6, p7);
      }
#pragma unroll
      for (int dp = 0; dp < kDChunks; ++dp) {
        uint32_t vf[4];
        ldmatrixX4Trans(vf, vRow + kc * 16 * kStride + dp * 16);
        mma16816(o[2 * dp], pf, vf[0], vf[1]);
        mma16816(o[2 * dp + 1], pf, vf[2], vf[3]);
      }
    }
    __syncthreads();  // both buffers free for the next iteration's loads
  }

  __pipeline_wait_prior(0);  // no key tiles at all (Sk = 0): Q's copy is still in flight
  // Row sums over the quad.
  sumA += __shfl_xor_sync(0xffffffffu, sumA, 1);
  sumA += __shfl_xor_sync(0xffffffffu, sumA, 2);
  sumB += __shfl_xor_sync(0xffffffffu, sumB, 1);
  sumB += __shfl_xor_sync(0xffffffffu, sumB, 2);
  if constexpr (S > 1) {
    // Merge the key slices' partial states (max, sum, unnormalized O) through the K/V buffers (no
    // longer read: the loop ended with a barrier): O = sum_s 2^(m_s - m) O_s, likewise the sums.
    float* partO = reinterpret_cast<float*>(ks);  // [S][R][16][DMAX]
    float* partM = partO + S * R * 16 * DMAX;     // [S][R][16]
    float* partL = partM + S * R * 16;
    float* myO = partO + (split * R + warp) * 16 * DMAX;
#pragma unroll
    for (int i = 0; i < DMAX / 8; ++i) {
      myO[g * DMAX + i * 8 + 2 * t] = o[i][0], myO[g * DMAX + i * 8 + 2 * t + 1] = o[i][1];
      myO[(g + 8) * DMAX + i * 8 + 2 * t] = o[i][2], myO[(g + 8) * DMAX + i * 8 + 2 * t + 1] = o[i][3];
    }
    if (t == 0) {
      const int at = (split * R + warp) * 16;
      partM[at + g] = maxA, partM[at + g + 8] = maxB;
      partL[at + g] = sumA, partL[at + g + 8] = sumB;
    }
    __syncthreads();
    if (split != 0) return;
    float mA = -INFINITY, mB = -INFINITY;
#pragma unroll
    for (int q = 0; q < S; ++q) {
      const int at = (q * R + warp) * 16;
      mA = fmaxf(mA, partM[at + g]), mB = fmaxf(mB, partM[at + g + 8]);
    }
    const float refA = mA == -INFINITY ? 0.f : mA, refB = mB == -INFINITY ? 0.f : mB;
    sumA = sumB = 0.f;
#pragma unroll
    for (int i = 0; i < DMAX / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
#pragma unroll
    for (int q = 0; q < S; ++q) {
      const int at = (q * R + warp) * 16;
      const float wA = exp2f(partM[at + g] - refA), wB = exp2f(partM[at + g + 8] - refB);
      sumA += wA * partL[at + g], sumB += wB * partL[at + g + 8];
      const float* from = partO + at * DMAX;
#pragma unroll
      for (int i = 0; i < DMAX / 8; ++i) {
        o[i][0] += wA * from[g * DMAX + i * 8 + 2 * t], o[i][1] += wA * from[g * DMAX + i * 8 + 2 * t + 1];
        o[i][2] += wB * from[(g + 8) * DMAX + i * 8 + 2 * t], o[i][3] += wB * from[(g + 8) * DMAX + i * 8 + 2 * t + 1];
      }
    }
  }
  // O / sum staged in this row group's own Q rows for 16-byte stores.
  const float invA = sumA > 0.f ? 1.f / sumA : 0.f, invB = sumB > 0.f ? 1.f / sumB : 0.f;
  __half* stage = qs + warp * 16 * kStride;
#pragma unroll
  for (int i = 0; i < DMAX / 8; ++i) {
    *reinterpret_cast<uint32_t*>(stage + g * kStride + i * 8 + 2 * t) = packHalf2(o[i][0] * invA, o[i][1] * invA);
    *reinterpret_cast<uint32_t*>(stage + (g + 8) * kStride + i * 8 + 2 * t) = packHalf2(o[i][2] * invB, o[i][3] * invB);
  }
  __syncwarp();
  __half* oBase = O + b * p.o[0] + h * p.o[1];
  const int64_t firstRow = q0 + warp * 16;
  if (vec && p.o[3] == 1 && reinterpret_cast<uintptr_t>(O) % 16 == 0 && p.o[0] % 8 == 0 && p.o[1] % 8 == 0 &&
      p.o[2] % 8 == 0) {
    const int d8 = D / 8;
    for (int e = lane; e < 16 * d8; e += 32) {
      const int r = e / d8, c = e - r * d8;
      if (firstRow + r < p.Sq)
        *reinterpret_cast<uint4*>(oBase + (firstRow + r) * p.o[2] + c * 8) = *reinterpret_cast<const uint4*>(stage + r * kStride + c * 8);
    }
  } else {
    for (int e = lane; e < 16 * D; e += 32) {
      const int r = e / D, d = e - r * D;
      if (firstRow + r < p.Sq) oBase[(firstRow + r) * p.o[2] + d * p.o[3]] = stage[r * kStride + d];
    }
  }
}

template <int DMAX, int R, int S>
void launchWith(const AttentionShape& p, const void* q, const void* k, const void* v, const void* mask, void* o,
                cudaStream_t stream) {
  constexpr size_t smem = Tiles<DMAX>::template bytes<R>();
  static_assert(size_t(S) * R * 16 * (DMAX + 2) * sizeof(float) <= 4 * kKeys * Tiles<DMAX>::kStride * sizeof(__half),
                "the split merge reuses the K/V buffers");
  static const bool configured = [] {
    KILN_CUDA_CHECK(cudaFuncSetAttribute(flashAttentionMma<DMAX, R, S>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem)));
    return true;
  }();
  (void)configured;
  dim3 grid(static_cast<unsigned>((p.Sq + 16 * R - 1) / (16 * R)), static_cast<unsigned>(p.B * p.H));
  flashAttentionMma<DMAX, R, S><<<grid, R * S * 32, smem, stream>>>(
      static_cast<const __half*>(q), static_cast<const __half*>(k), static_cast<const __half*>(v),
      static_cast<const __half*>(mask), static_cast<__half*>(o), p);
}

template <int DMAX>
void launchForDim(AttentionBlock block, const AttentionShape& p, const void* q, const void* k, const void* v,
                  const void* mask, void* o, cudaStream_t stream) {
  if (block.rows == 4) launchWith<DMAX, 4, 1>(p, q, k, v, mask, o, stream);
  else if (block.rows == 2 && block.splits == 2) launchWith<DMAX, 2, 2>(p, q, k, v, mask, o, stream);
  else if (block.rows == 2) launchWith<DMAX, 2, 1>(p, q, k, v, mask, o, stream);
  else if (block.splits == 4) launchWith<DMAX, 1, 4>(p, q, k, v, mask, o, stream);
  else if (block.splits == 2) launchWith<DMAX, 1, 2>(p, q, k, v, mask, o, stream);
  else launchWith<DMAX, 1, 1>(p, q, k, v, mask, o, stream);
}

}  // namespace

bool tensorCoreAttentionSupports(const AttentionShape& s) {
  // Fewer than 16 queries (decoding) would leave most of a 16-row fragment idle: the warp-per-query
  // kernel serves those.
  return s.D == s.Dv && s.D >= 1 && s.D <= 128 && s.Sq >= 16;
}

void launchTensorCoreAttention(const void* q, const void* k, const void* v, const void* mask, void* o,
                               const AttentionShape& shape, int multiprocessors, AttentionBlock block,
                               cudaStream_t stream) {
  AttentionShape p = shape;
  auto aligned = [](const void* ptr, const int64_t* st) {
    return reinterpret_cast<uintptr_t>(ptr) % 16 == 0 && st[3] == 1 && st[0] % 8 == 0 && st[1] % 8 == 0 && st[2] % 8 == 0;
  };
  p.vectorized = shape.D % 8 == 0 && aligned(q, shape.q) && aligned(k, shape.k) && aligned(v, shape.v) ? 1 : 0;
  if (block.rows == 0) {
    // The most query rows per block (4 warps share each K/V tile) that still give every
    // multiprocessor a block; below four row groups, the remaining warps split the keys.
    // BERT-base at batch 1 (12 heads, 128 queries): 96 blocks of 16 queries x 4 key slices.
    auto blocks = [&](int rows) { return (shape.Sq + rows - 1) / rows * shape.B * shape.H; };
    block.rows = blocks(64) >= multiprocessors ? 4 : blocks(32) >= multiprocessors ? 2 : 1;
    block.splits = 4 / block.rows;
  }
  if (p.D <= 32) launchForDim<32>(block, p, q, k, v, mask, o, stream);
  else if (p.D <= 64) launchForDim<64>(block, p, q, k, v, mask, o, stream);
  else launchForDim<128>(block, p, q, k, v, mask, o, stream);
}

}  // namespace kiln::cuda
