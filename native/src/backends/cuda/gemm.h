// cuBLASLt GEMM shared by MatMul/Gemm (gemm.cc) and 1x1 convolutions in NHWC (conv.cc).
#pragma once
#include <cuda_runtime.h>

#include "backends/cuda/cuda_ops.h"

namespace kiln::cuda {

// One GEMM in row-major terms. transA/transB: A is stored [K,M] / B is stored [N,K].
struct GemmCall {
  int64_t m = 0, n = 0, k = 0, batch = 1;
  bool transA = false, transB = false;
  int64_t strideA = 0, strideB = 0, strideD = 0;
  const void* a = nullptr;
  const void* b = nullptr;
  const void* c = nullptr;  // full [M,N] addend (beta), or null
  bool hasC = false;        // C is part of the call (set even where its pointer is not known yet)
  void* d = nullptr;
  const void* bias = nullptr;  // [N]
  float alpha = 1.f, beta = 0.f;
  ActivationParams act;
  DType type = DType::Float32;
  bool tf32 = false;  // float32 on TF32 tensor cores (BuildOptions::tf32)
};

// Kernel choice by timing: times cuBLASLt's top-8 heuristic algorithms for this call's shapes
// (pointers unused) once per process, or takes the result from the timing cache, and runGemm then
// uses the fastest. Must not be called while a stream is being captured.
void tuneGemm(const GemmCall& shape, size_t workspaceBytes);
// D = act(alpha op(A) op(B) + beta C + bias) in row-major terms; see gemm.cc.
void runGemm(const GemmCall& g, void* ltHandle, cudaStream_t stream, void* workspace, size_t workspaceBytes);

}  // namespace kiln::cuda
