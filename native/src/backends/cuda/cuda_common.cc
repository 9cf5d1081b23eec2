#include "backends/cuda/cuda_common.h"

#include <cstdlib>
#include <string>

#include "runtime/engine_impl.h"

namespace kiln::cuda {

void throwCuda(cudaError_t err, const char* what, const char* file, int line) {
  ErrorCode code = err == cudaErrorMemoryAllocation ? ErrorCode::OutOfMemory : ErrorCode::Internal;
  fail(code, std::string("CUDA error ") + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ") in " + what +
                 " at " + file + ":" + std::to_string(line));
}

std::shared_ptr<void> deviceAlloc(size_t bytes) {
  void* p = nullptr;
  cudaError_t err = cudaMalloc(&p, bytes == 0 ? 256 : bytes);
  if (err != cudaSuccess)
    fail(ErrorCode::OutOfMemory, "cannot allocate " + std::to_string(bytes) + " bytes of GPU memory: " +
                                     cudaGetErrorString(err));
  return std::shared_ptr<void>(p, [](void* q) { cudaFree(q); });
}

std::shared_ptr<void> uploadToDevice(const void* host, size_t bytes) {
  std::shared_ptr<void> d = deviceAlloc(bytes);
  if (bytes > 0) KILN_CUDA_CHECK(cudaMemcpy(d.get(), host, bytes, cudaMemcpyHostToDevice));
  return d;
}

bool isFloatType(DType t) { return t == DType::Float32 || t == DType::Float16; }

bool envIs(const char* var, const char* value) {
  const char* v = std::getenv(var);
  return v != nullptr && std::string(v) == value;
}

CudaKernel::CudaKernel(const KernelCreateInfo& info)
    : node_(info.node), inputTypes_(info.inputTypes), outputTypes_(info.outputTypes) {
  constants_.resize(info.constantInputs.size());
  hostConstants_ = info.constantInputs;
  for (size_t i = 0; i < info.constantInputs.size(); ++i) {
    const Tensor* t = info.constantInputs[i];
    if (t == nullptr || t->dtype == DType::String) continue;
    constants_[i] = uploadToDevice(t->data, t->byteSize());
  }
}

void CudaKernel::unsupported(const std::string& why) const {
  fail(ErrorCode::UnsupportedOp, "node '" + node_.name + "' (" + qualifiedOp(node_) + ") on the cuda backend: " + why);
}

}  // namespace kiln::cuda
