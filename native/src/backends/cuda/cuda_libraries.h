// The library side of the CUDA backend kept behind plain functions, so that most sources need only
// the CUDA runtime headers: handle lifetimes and the versions an engine is bound to.
#pragma once
#include <cuda_runtime.h>

#include <string>

namespace kiln::cuda {

void* createCublasLtHandle();
void destroyCublasLtHandle(void* handle);
void* createCudnnHandle(cudaStream_t stream);
void destroyCudnnHandle(void* handle);

// "cuda=13.0;cublas=13.1;cudnn=9.14": the runtime, cuBLASLt and cuDNN versions loaded in this
// process (major.minor: patch releases keep kernels and numerics compatible).
std::string cudaLibraryVersions();

}  // namespace kiln::cuda
