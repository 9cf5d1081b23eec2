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

// float16 with channels innermost (a GEMM's output, an NHWC convolution's), everything in whole
// 16-byte vectors: 8 halves per thread and step, the activation fixed at compile time, 32-bit
// indices. The generic kernel's 2-byte accesses and run-time activation switch made BERT-base's
// erf-GELU pass after the [4096 x 3072] intermediate GEMM take longer than the GEMM's own epilogue
// work by a wide margin.
template <Activation K>
__global__ void epilogueHalf8(uint4* y, const uint4* bias, const uint4* z, uint32_t vectors, uint32_t channelVectors,
                              float a, float b) {
  for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < vectors; i += gridDim.x * blockDim.x) {
    uint4 v = y[i];
    __half2* h = reinterpret_cast<__half2*>(&v);
    float2 f[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) f[j] = __half22float2(h[j]);
    if (bias) {
      uint4 bv = bias[i % channelVectors];
      const __half2* bh = reinterpret_cast<const __half2*>(&bv);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float2 c = __half22float2(bh[j]);
        f[j].x += c.x, f[j].y += c.y;
      }
    }
    if (z) {
      uint4 zv = z[i];
      const __half2* zh = reinterpret_cast<const __half2*>(&zv);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float2 c = __half22float2(zh[j]);
        f[j].x += c.x, f[j].y += c.y;
      }
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) h[j] = __floats2half2_rn(activate(K, f[j].x, a, b), activate(K, f[j].y, a, b));
    y[i] = v;
  }
}

// channelVectors: the bias's length in 16-byte vectors (1 without a bias).
template <Activation K>
void launchHalf8(void* y, const void* bias, const void* z, int64_t n, uint32_t channelVectors,
                 const ActivationParams& act, cudaStream_t stream) {
  const uint32_t vectors = static_cast<uint32_t>(n / 8);
  epilogueHalf8<K><<<gridFor(vectors), 256, 0, stream>>>(static_cast<uint4*>(y), static_cast<const uint4*>(bias),
                                                          static_cast<const uint4*>(z), vectors, channelVectors, act.a,
                                                          act.b);
}

bool launchVectorizedHalf(void* y, const void* bias, const void* z, int64_t n, int64_t channels, int64_t inner,
                          const ActivationParams& act, cudaStream_t stream) {
  auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  if (n % 8 != 0 || n / 8 >= (int64_t(1) << 31) || !aligned(y) || (z && !aligned(z)) ||
      (bias && (inner != 1 || channels % 8 != 0 || !aligned(bias))))
    return false;
  const uint32_t cv = bias ? static_cast<uint32_t>(channels / 8) : 1;
  switch (act.kind) {
    case Activation::None: launchHalf8<Activation::None>(y, bias, z, n, cv, act, stream); return true;
    case Activation::Relu: launchHalf8<Activation::Relu>(y, bias, z, n, cv, act, stream); return true;
    case Activation::Gelu: launchHalf8<Activation::Gelu>(y, bias, z, n, cv, act, stream); return true;
    case Activation::GeluTanh: launchHalf8<Activation::GeluTanh>(y, bias, z, n, cv, act, stream); return true;
    case Activation::Silu: launchHalf8<Activation::Silu>(y, bias, z, n, cv, act, stream); return true;
    case Activation::Sigmoid: launchHalf8<Activation::Sigmoid>(y, bias, z, n, cv, act, stream); return true;
    default: return false;  // the rarer activations stay on the generic kernel
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
  if (type == DType::Float16 && launchVectorizedHalf(y, bias, z, n, channels, inner, act, stream)) return;
  if (type == DType::Float16) {
    epilogueKernel<__half><<<gridFor(n), 256, 0, stream>>>(static_cast<__half*>(y), static_cast<const __half*>(bias),
                                                           static_cast<const __half*>(z), n, channels, inner, act.kind, act.a, act.b);
  } else {
    epilogueKernel<float><<<gridFor(n), 256, 0, stream>>>(static_cast<float*>(y), static_cast<const float*>(bias),
                                                          static_cast<const float*>(z), n, channels, inner, act.kind, act.a, act.b);
  }
}

}  // namespace kiln::cuda
