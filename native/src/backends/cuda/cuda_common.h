// Shared pieces of the CUDA backend: error checks, the per-context execution state handed to
// kernels through KernelContext::stream, and CudaKernel, the base that gives every kernel a device
// copy of its constant inputs (uploaded once when the engine is loaded, shared by all contexts).
//
// Kernel contract on CUDA: run() only enqueues work on exec(ctx).stream; it never synchronizes,
// never allocates and never copies to or from the host, so the context can capture a whole run in
// a CUDA graph and replay it. Scratch comes from the planned workspace (workspaceBytes()).
#pragma once
#include <cuda_runtime.h>

#include <memory>
#include <string>
#include <vector>

#include "backends/kernel.h"
#include "core/error.h"

namespace kiln::cuda {

[[noreturn]] void throwCuda(cudaError_t err, const char* what, const char* file, int line);
#define KILN_CUDA_CHECK(expr)                                                            \
  do {                                                                                   \
    cudaError_t kiln_cuda_err = (expr);                                                  \
    if (kiln_cuda_err != cudaSuccess) ::kiln::cuda::throwCuda(kiln_cuda_err, #expr, __FILE__, __LINE__); \
  } while (0)

// What one execution context gives its kernels (KernelContext::stream points at this). The library
// handles are opaque here so that files not using them need no cuBLAS/cuDNN headers.
struct CudaExec {
  cudaStream_t stream = nullptr;
  void* cublasLt = nullptr;  // cublasLtHandle_t
  void* cudnn = nullptr;     // cudnnHandle_t, bound to `stream`
};

inline CudaExec& exec(const KernelContext& ctx) { return *static_cast<CudaExec*>(ctx.stream); }

// Arena offsets (activations and kernel workspaces) on the device: cuBLASLt's heuristics assume
// 256-byte aligned operands and refuse a workspace that is not (a 64-byte offset failed an INT8
// engine's fp16 GEMM with "cuBLASLt error 7").
constexpr size_t kCudaArenaAlignment = 256;

// Device memory owned by a shared_ptr (weights, constant inputs).
std::shared_ptr<void> deviceAlloc(size_t bytes);
std::shared_ptr<void> uploadToDevice(const void* host, size_t bytes);

class CudaKernel : public Kernel {
 public:
  explicit CudaKernel(const KernelCreateInfo& info);

 protected:
  // Input i's device data: the kernel's own copy for constants, the context's buffer otherwise.
  const void* in(const KernelContext& ctx, size_t i) const {
    return i < constants_.size() && constants_[i] ? constants_[i].get() : ctx.inputs[i]->data;
  }
  bool isConstant(size_t i) const { return i < constants_.size() && constants_[i] != nullptr; }
  const Tensor* hostConstant(size_t i) const { return i < hostConstants_.size() ? hostConstants_[i] : nullptr; }
  [[noreturn]] void unsupported(const std::string& why) const;

  Node node_;  // a copy: kernels outlive the graph they were compiled from
  std::vector<DType> inputTypes_, outputTypes_;

 private:
  std::vector<std::shared_ptr<void>> constants_;
  std::vector<const Tensor*> hostConstants_;  // the graph's tensors (the engine keeps the graph alive)
};

// Launch geometry for a flat loop over n elements.
inline unsigned gridFor(int64_t n, int block = 256) {
  int64_t g = (n + block - 1) / block;
  if (g > 65535 * 16) g = 65535 * 16;
  return static_cast<unsigned>(g < 1 ? 1 : g);
}

bool isFloatType(DType t);  // Float32 or Float16: what the compute kernels take

// Whether environment variable `var` is set to `value` (the KILN_CUDA_* overrides for tests and
// comparisons).
bool envIs(const char* var, const char* value);

}  // namespace kiln::cuda
