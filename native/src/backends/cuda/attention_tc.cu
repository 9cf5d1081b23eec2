// Tensor-core FlashAttention for float16 (kiln.Attention / kiln.CudaAttention, head dims that are
// multiples of 16 up to 128): one block of W warps (W = 1, 2 or 4, chosen so the grid fills the
// GPU) per (batch, head, 16*W queries); key/value tiles of 64 rows staged in shared memory, rows
// padded by 8 halves so the fragment loads hit distinct banks; S = Q K^T and O += P V on WMMA
// 16x16x16 fragments with float accumulation; the online softmax (running max and sum per query
// row, rescaling the partial output) in float. The score matrix never leaves shared memory.
// Layouts come as element strides, so [B,H,S,D] and [B,S,H,D] tensors are read and written in place.
#include <cuda_fp16.h>
#include <cuda_pipeline.h>
#include <mma.h>

#include "backends/cuda/attention_tc.h"
#include "backends/cuda/cuda_common.h"

namespace kiln::cuda {
namespace {

using namespace nvcuda;

constexpr int kKeys = 64;  // keys per tile

// Row strides padded off multiples of 32 banks (the softmax walks rows two lanes per row).
constexpr int kPStride = kKeys + 8;  // halves
__host__ __device__ inline int scoreStride(int d) { return (d > kKeys ? d : kKeys) + 4; }  // floats
__host__ __device__ inline int rowStride(int d) { return d + 8; }                          // halves, Q/K/V

template <int W>
struct Smem {
  static constexpr int kRows = 16 * W;  // queries per block
  // Offsets in bytes into the dynamic shared buffer, for head dim d. Every wmma pointer stays
  // 32-byte aligned: 16 rows of rowStride(d) halves are 32 * rowStride(d) bytes.
  __host__ __device__ static size_t q(int) { return 0; }
  __host__ __device__ static size_t k(int d) { return q(d) + size_t(kRows) * rowStride(d) * 2; }
  __host__ __device__ static size_t v(int d) { return k(d) + size_t(kKeys) * rowStride(d) * 2; }
  // float [W][16][scoreStride], half [W][16][kPStride], float [W][16][d]
  __host__ __device__ static size_t s(int d) { return v(d) + size_t(kKeys) * rowStride(d) * 2; }
  __host__ __device__ static size_t p(int d) { return s(d) + size_t(W) * 16 * scoreStride(d) * 4; }
  __host__ __device__ static size_t o(int d) { return p(d) + size_t(W) * 16 * kPStride * 2; }
  __host__ __device__ static size_t stats(int d) { return o(d) + size_t(W) * 16 * d * 4; }  // float [W][16] x3
  __host__ __device__ static size_t total(int d) { return stats(d) + size_t(W) * 16 * 3 * 4; }
};

template <int W>
__global__ void flashAttentionTc(const __half* Q, const __half* K, const __half* V, const __half* mask, __half* O,
                                 AttentionShape p) {
  using Layout = Smem<W>;
  constexpr int kRows = Layout::kRows;
  extern __shared__ __align__(128) unsigned char smem[];
  const int D = static_cast<int>(p.D);
  const int LD = rowStride(D);    // row stride of the Q/K/V tiles
  const int sw = scoreStride(D);  // row stride of the score/scratch buffer
  __half* qs = reinterpret_cast<__half*>(smem + Layout::q(D));
  __half* ks = reinterpret_cast<__half*>(smem + Layout::k(D));
  __half* vs = reinterpret_cast<__half*>(smem + Layout::v(D));
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float* sw_ = reinterpret_cast<float*>(smem + Layout::s(D)) + warp * 16 * sw;
  __half* pw = reinterpret_cast<__half*>(smem + Layout::p(D)) + warp * 16 * kPStride;
  float* ow = reinterpret_cast<float*>(smem + Layout::o(D)) + warp * 16 * D;
  float* stats = reinterpret_cast<float*>(smem + Layout::stats(D)) + warp * 16 * 3;  // max, sum, correction

  const int64_t bh = blockIdx.y;
  const int64_t b = bh / p.H, h = bh % p.H;
  const int64_t q0 = static_cast<int64_t>(blockIdx.x) * kRows;
  const __half* qBase = Q + b * p.q[0] + h * p.q[1];
  const __half* kBase = K + b * p.k[0] + h * p.k[1];
  const __half* vBase = V + b * p.v[0] + h * p.v[1];
  const __half zero = __float2half(0.f);

  if (p.vectorized) {
    // 8 halves (16 bytes) per load: rows are contiguous in d and 16-byte aligned.
    const int d8 = D / 8;
    for (int e = threadIdx.x; e < kRows * d8; e += blockDim.x) {
      const int r = e / d8, c = e - r * d8;
      if (q0 + r < p.Sq) __pipeline_memcpy_async(qs + r * LD + c * 8, qBase + (q0 + r) * p.q[2] + c * 8, 16);
      else *reinterpret_cast<uint4*>(qs + r * LD + c * 8) = make_uint4(0, 0, 0, 0);
    }
    __pipeline_commit();
  } else {
    for (int e = threadIdx.x; e < kRows * D; e += blockDim.x) {
      const int r = e / D, d = e - r * D;
      qs[r * LD + d] = q0 + r < p.Sq ? qBase[(q0 + r) * p.q[2] + d * p.q[3]] : zero;
    }
  }
  for (int e = lane; e < 16 * D; e += 32) ow[e] = 0.f;
  if (lane < 16) {
    stats[lane * 3] = -INFINITY;
    stats[lane * 3 + 1] = 0.f;
  }

  for (int64_t k0 = 0; k0 < p.Sk; k0 += kKeys) {
    __syncthreads();
    if (p.vectorized) {
      const int d8 = D / 8;
      // Asynchronous 16-byte copies (cp.async): every copy of the tile is in flight at once, where a
      // load-then-store loop waited one memory latency per iteration (32 of them per tile with one
      // warp per block, which was most of the kernel's time at BERT's batch 1).
      for (int e = threadIdx.x; e < kKeys * d8; e += blockDim.x) {
        const int r = e / d8, c = e - r * d8;
        __half* kd = ks + r * LD + c * 8;
        __half* vd = vs + r * LD + c * 8;
        if (k0 + r < p.Sk) {
          __pipeline_memcpy_async(kd, kBase + (k0 + r) * p.k[2] + c * 8, 16);
          __pipeline_memcpy_async(vd, vBase + (k0 + r) * p.v[2] + c * 8, 16);
        } else {
          *reinterpret_cast<uint4*>(kd) = make_uint4(0, 0, 0, 0);
          *reinterpret_cast<uint4*>(vd) = make_uint4(0, 0, 0, 0);
        }
      }
      __pipeline_commit();
      __pipeline_wait_prior(0);
    } else {
      for (int e = threadIdx.x; e < kKeys * D; e += blockDim.x) {
        const int r = e / D, d = e - r * D;
        const bool in = k0 + r < p.Sk;
        ks[r * LD + d] = in ? kBase[(k0 + r) * p.k[2] + d * p.k[3]] : zero;
        vs[r * LD + d] = in ? vBase[(k0 + r) * p.v[2] + d * p.v[3]] : zero;
      }
    }
    __syncthreads();

    // S_w[16][64] = Q_w K^T
    for (int j = 0; j < kKeys / 16; ++j) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::fill_fragment(acc, 0.f);
      for (int kk = 0; kk < D; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> a;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> bt;
        wmma::load_matrix_sync(a, qs + warp * 16 * LD + kk, LD);
        wmma::load_matrix_sync(bt, ks + j * 16 * LD + kk, LD);
        wmma::mma_sync(acc, a, bt, acc);
      }
      wmma::store_matrix_sync(sw_ + j * 16, acc, sw, wmma::mem_row_major);
    }
    __syncwarp();

    // Online softmax: two lanes per query row, 32 keys each (interleaved columns: fewer bank
    // conflicts).
    {
      const int r = lane / 2, half = lane % 2;
      const int64_t qi = q0 + warp * 16 + r;
      float vals[32];
      float tileMax = -INFINITY;
      for (int c = 0; c < 32; ++c) {
        const int col = 2 * c + half;
        const int64_t kj = k0 + col;
        float s = -INFINITY;
        if (kj < p.Sk && qi < p.Sq && !(p.causal && kj > qi + (p.Sk - p.Sq))) {
          s = sw_[r * sw + col] * p.scale;
          if (mask) s += __half2float(mask[b * p.mask[0] + h * p.mask[1] + qi * p.mask[2] + kj * p.mask[3]]);
        }
        vals[c] = s;
        tileMax = fmaxf(tileMax, s);
      }
      tileMax = fmaxf(tileMax, __shfl_xor_sync(0xffffffffu, tileMax, 1));
      const float oldMax = stats[r * 3];
      const float newMax = fmaxf(oldMax, tileMax);
      float sum = 0.f;
      for (int c = 0; c < 32; ++c) {
        const float e = newMax == -INFINITY || vals[c] == -INFINITY ? 0.f : __expf(vals[c] - newMax);
        sum += e;
        pw[r * kPStride + 2 * c + half] = __float2half(e);
      }
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      __syncwarp();
      if (half == 0) {
        const float corr = oldMax == -INFINITY ? (newMax == -INFINITY ? 1.f : 0.f) : __expf(oldMax - newMax);
        stats[r * 3] = newMax;
        stats[r * 3 + 1] = stats[r * 3 + 1] * corr + sum;
        stats[r * 3 + 2] = corr;
      }
    }
    __syncwarp();

    // O_w = O_w * corr + P_w V  (the P V tile goes through the score buffer as scratch)
    for (int dt = 0; dt < D / 16; ++dt) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::fill_fragment(acc, 0.f);
      for (int kk = 0; kk < kKeys; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> a;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::row_major> bv;
        wmma::load_matrix_sync(a, pw + kk, kPStride);
        wmma::load_matrix_sync(bv, vs + kk * LD + dt * 16, LD);
        wmma::mma_sync(acc, a, bv, acc);
      }
      wmma::store_matrix_sync(sw_ + dt * 16, acc, sw, wmma::mem_row_major);
    }
    __syncwarp();
    for (int e = lane; e < 16 * D; e += 32) {
      const int r = e / D, d = e - r * D;
      ow[e] = ow[e] * stats[r * 3 + 2] + sw_[r * sw + d];
    }
    __syncwarp();
  }

  for (int e = lane; e < 16 * D; e += 32) {
    const int r = e / D, d = e - r * D;
    const int64_t qi = q0 + warp * 16 + r;
    if (qi >= p.Sq) continue;
    const float l = stats[r * 3 + 1];
    O[b * p.o[0] + h * p.o[1] + qi * p.o[2] + d * p.o[3]] = __float2half(l > 0.f ? ow[e] / l : 0.f);
  }
}

}  // namespace

bool tensorCoreAttentionSupports(const AttentionShape& s) {
  // Fewer than 16 queries (decoding) would leave most of a 16-row fragment idle: the warp-per-query
  // kernel serves those.
  return s.D == s.Dv && s.D % 16 == 0 && s.D >= 16 && s.D <= 128 && s.Sq >= 16;
}

namespace {

template <int W>
void launchWith(const AttentionShape& p, const void* q, const void* k, const void* v, const void* mask, void* o,
                cudaStream_t stream) {
  static bool configured = false;
  if (!configured) {
    KILN_CUDA_CHECK(cudaFuncSetAttribute(flashAttentionTc<W>, cudaFuncAttributeMaxDynamicSharedMemorySize, 200 * 1024));
    configured = true;
  }
  const size_t smem = Smem<W>::total(static_cast<int>(p.D));
  dim3 grid(static_cast<unsigned>((p.Sq + Smem<W>::kRows - 1) / Smem<W>::kRows), static_cast<unsigned>(p.B * p.H));
  flashAttentionTc<W><<<grid, W * 32, smem, stream>>>(static_cast<const __half*>(q), static_cast<const __half*>(k),
                                                      static_cast<const __half*>(v), static_cast<const __half*>(mask),
                                                      static_cast<__half*>(o), p);
}

}  // namespace

void launchTensorCoreAttention(const void* q, const void* k, const void* v, const void* mask, void* o,
                               const AttentionShape& shape, int multiprocessors, int warps, cudaStream_t stream) {
  AttentionShape p = shape;
  auto aligned = [](const void* ptr, const int64_t* st) {
    return reinterpret_cast<uintptr_t>(ptr) % 16 == 0 && st[3] == 1 && st[0] % 8 == 0 && st[1] % 8 == 0 && st[2] % 8 == 0;
  };
  p.vectorized = aligned(q, shape.q) && aligned(k, shape.k) && aligned(v, shape.v) ? 1 : 0;
  // The widest block (4 warps share each K/V tile) that still gives every multiprocessor a block:
  // BERT-base at batch 1 (12 heads, 128 queries) has 24 blocks of 64 queries, 96 of 16.
  auto blocks = [&](int rows) { return (shape.Sq + rows - 1) / rows * shape.B * shape.H; };
  if (warps == 0) warps = blocks(64) >= multiprocessors ? 4 : blocks(32) >= multiprocessors ? 2 : 1;
  if (warps == 4) {
    launchWith<4>(p, q, k, v, mask, o, stream);
  } else if (warps == 2) {
    launchWith<2>(p, q, k, v, mask, o, stream);
  } else {
    launchWith<1>(p, q, k, v, mask, o, stream);
  }
}

}  // namespace kiln::cuda
