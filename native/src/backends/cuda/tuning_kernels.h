// Kernels for build-time tactic timing (tuning_kernels.cu): scratch inputs filled with a fixed
// pseudo-random pattern (candidates are timed on data like a model's, not on zeros, and their
// results can be compared), and an output comparison that stays on the GPU.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "core/dtype.h"

namespace kiln::cuda {

// n values of `type` in [-1, 1) (float32, float16; int8: [-127, 127]), a function of (seed, index) only.
void fillTuningPattern(void* data, DType type, int64_t n, uint32_t seed, cudaStream_t stream);

// out[0] = max |a - b|, out[1] = max |b| over n values of `type` (out: 2 device floats).
void compareTuningOutputs(const void* a, const void* b, DType type, int64_t n, float* out, cudaStream_t stream);

}  // namespace kiln::cuda
