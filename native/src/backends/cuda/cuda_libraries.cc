#include "backends/cuda/cuda_libraries.h"

#include <cublasLt.h>
#include <cudnn.h>

#include "backends/cuda/cuda_common.h"

namespace kiln::cuda {

void* createCublasLtHandle() {
  cublasLtHandle_t h = nullptr;
  cublasStatus_t st = cublasLtCreate(&h);
  KILN_CHECK(st == CUBLAS_STATUS_SUCCESS, Internal, "cublasLtCreate failed with status " + std::to_string(int(st)));
  return h;
}

void destroyCublasLtHandle(void* handle) {
  if (handle) cublasLtDestroy(static_cast<cublasLtHandle_t>(handle));
}

void* createCudnnHandle(cudaStream_t stream) {
  cudnnHandle_t h = nullptr;
  cudnnStatus_t st = cudnnCreate(&h);
  KILN_CHECK(st == CUDNN_STATUS_SUCCESS, Internal, std::string("cudnnCreate failed: ") + cudnnGetErrorString(st));
  if (stream) cudnnSetStream(h, stream);
  return h;
}

void destroyCudnnHandle(void* handle) {
  if (handle) cudnnDestroy(static_cast<cudnnHandle_t>(handle));
}

std::string cudaLibraryVersions() {
  int runtime = 0;
  cudaRuntimeGetVersion(&runtime);
  size_t lt = cublasLtGetVersion();  // major*10000 + minor*100 + patch
  size_t dnn = cudnnGetVersion();    // major*10000 + minor*100 + patch (cuDNN 9)
  return "cuda=" + std::to_string(runtime / 1000) + "." + std::to_string(runtime % 1000 / 10) +
         ";cublas=" + std::to_string(lt / 10000) + "." + std::to_string(lt % 10000 / 100) +
         ";cudnn=" + std::to_string(dnn / 10000) + "." + std::to_string(dnn % 10000 / 100);
}

}  // namespace kiln::cuda
