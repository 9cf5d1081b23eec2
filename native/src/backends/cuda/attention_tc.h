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
// Blocks of `warps` warps (1, 2 or 4; 16 queries each); 0: the widest that gives each of the GPU's
// `multiprocessors` a block.
void launchTensorCoreAttention(const void* q, const void* k, const void* v, const void* mask, void* o,
                               const AttentionShape& shape, int multiprocessors, int warps, cudaStream_t stream);

}  // namespace kiln::cuda
