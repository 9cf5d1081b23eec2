// The generic epilogue (bias per channel, residual, activation) used after cuDNN convolutions and
// after cuBLASLt GEMMs whose activation has no cuBLASLt epilogue.
#include <cuda_fp16.h>

#include "backends/cuda/cuda_common.h"
#include "backends/cuda/cuda_ops.h"

namespace kiln::cuda {
namespace {

__device__ __forceinline__ float activate(Activation k, float x, float a, float b) {
  switch (k) {
    case Activation::None: return x;
    case Activation::Relu: return x > 0.f ? x : 0.f;
    case Activation::LeakyRelu: return x >= 0.f ? x : a * x;
    case Activation::Sigmoid: return 1.f / (1.f + __expf(-x));
    case Activation::Tanh: return tanhf(x);
    case Activation::Clip: return fminf(fmaxf(x, a), b);
    case Activation::HardSigmoid: return fmaxf(0.f, fminf(1.f, a * x + b));
    case Activation::HardSwish: return x * fmaxf(0.f, fminf(1.f, x / 6.f + 0.5f));
    case Activation::Gelu: return 0.5f * x * (1.f + erff(x * 0.70710678118654752f));
    case Activation::GeluTanh: return 0.5f * x * (1.f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
    case Activation::Silu: return x / (1.f + __expf(-x));
  }
  return x;
}

template <class T>
__device__ __forceinline__ float ld(const T* p, int64_t i);
template <>
__device__ __forceinline__ float ld<float>(const float* p, int64_t i) { return p[i]; }
template <>
__device__ __forceinline__ float ld<__half>(const __half* p, int64_t i) { return __half2float(p[i]); }
__device__ __forceinline__ void st(float* p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void st(__half* p, int64_t i, float v) { p[i] = __float2half(v); }

template <class T>
__global__ void epilogueKernel(T* y, const T* bias, const T* z, int64_t n, int64_t channels, int64_t inner,
                               Activation k, float a, float b) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    float v = ld(y, i);
    if (bias) v += ld(bias, (i / inner) % channels);
    if (z) v += ld(z, i);
    st(y, i, activate(k, v, a, b));
  }
}

}  // namespace

ActivationParams readActivationAttrs(const Node& node) {
  ActivationParams p;
  p.kind = parseActivation(node.getString("activation", ""));
  std::vector<float> params = node.getFloats("activation_params");
  switch (p.kind) {
    case Activation::LeakyRelu: p.a = params.size() > 0 ? params[0] : 0.01f; break;
    case Activation::HardSigmoid:
      p.a = params.size() > 0 ? params[0] : 0.2f;
      p.b = params.size() > 1 ? params[1] : 0.5f;
      break;
    case Activation::Clip:
      p.a = params.size() > 0 ? params[0] : -INFINITY;
      p.b = params.size() > 1 ? params[1] : INFINITY;
      break;
    default: break;
  }
  return p;
}

void launchEpilogue(void* y, const void* bias, const void* z, DType type, int64_t n, int64_t channels, int64_t inner,
                    const ActivationParams& act, cudaStream_t stream) {
  if (n == 0 || (bias == nullptr && z == nullptr && act.kind == Activation::None)) return;
  if (channels < 1) channels = 1;
  if (inner < 1) inner = 1;
  if (type == DType::Float16) {
    epilogueKernel<__half><<<gridFor(n), 256, 0, stream>>>(static_cast<__half*>(y), static_cast<const __half*>(bias),
                                                           static_cast<const __half*>(z), n, channels, inner, act.kind, act.a, act.b);
  } else {
    epilogueKernel<float><<<gridFor(n), 256, 0, stream>>>(static_cast<float*>(y), static_cast<const float*>(bias),
                                                          static_cast<const float*>(z), n, channels, inner, act.kind, act.a, act.b);
  }
}

}  // namespace kiln::cuda
