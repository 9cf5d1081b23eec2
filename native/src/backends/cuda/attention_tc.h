// Tensor-core FlashAttention-2 for float16 (attention_tc.cu), used by the attention kernels in nn.cu.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace kiln::cuda {

// Logical [B,H,S,D] tensors given by element strides (b, h, s, d), so any layout works.
struct AttentionShape {
  int64_t B, H, Sq, Sk, D, Dv;
  int64_t q[4], k[4], v[4], o[4];
  int64_t mask[4];  // strides over [B,H,Sq,Sk], 0 on broadcast dims
  float scale;
  int causal;
  int vectorized = 0;  // set by launchTensorCoreAttention: 16-byte loads of Q/K/V rows
};

// Head dims up to 128 (Q/K and V alike), and at least 16 queries.
bool tensorCoreAttentionSupports(const AttentionShape& shape);
// A block's shape: `rows` groups of 16 queries (1, 2 or 4) x `splits` warps sharing each group's
// keys (rows * splits <= 4). rows 0: chosen from the grid size and the GPU's `multiprocessors`.
struct AttentionBlock {
  int rows = 0;
  int splits = 1;
};
void launchTensorCoreAttention(const void* q, const void* k, const void* v, const void* mask, void* o,
                               const AttentionShape& shape, int multiprocessors, AttentionBlock block,
                               cudaStream_t stream);

}  // namespace kiln::cuda
