// Device helpers shared by the CUDA kernels (implemented in epilogue.cu).
#pragma once
#include <cuda_runtime.h>

#include "core/dtype.h"
#include "graph/fused_ops.h"
#include "graph/ir.h"

namespace kiln::cuda {

// A fused activation and its parameters (graph/fused_ops.h: activation, activation_params).
struct ActivationParams {
  Activation kind = Activation::None;
  float a = 0, b = 0;
};
ActivationParams readActivationAttrs(const Node& node);

// y = act(y + bias[channel] + z) in place over n elements, where channel = (i / inner) % channels;
// bias and z may be null. Float32 or float16 data.
// NHWC float16 rows of `c` channels (c < 8) widened to 8 with zeros: [pixels, c] -> [pixels, 8].
// Used for convolutions over few channels (an RGB stem), which cuDNN's tensor-core kernels need in
// whole vectors of 8.
void launchPadChannelsTo8(const void* x, void* y, int64_t pixels, int64_t c, cudaStream_t stream);
void launchEpilogue(void* y, const void* bias, const void* z, DType type, int64_t n, int64_t channels, int64_t inner,
                    const ActivationParams& act, cudaStream_t stream);

}  // namespace kiln::cuda
