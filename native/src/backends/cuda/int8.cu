// INT8 device kernels: quantize / dequantize, NHWC im2col for the INT8 convolutions, the requantizing
// epilogue (int32 accumulators -> int8 with per-channel scale, bias, residual and ReLU) and max
// pooling on int8. All are memory-bound loops; the GEMMs themselves run on cuBLASLt (IMMA).
#include <cuda_fp16.h>

#include "backends/cuda/cuda_common.h"
#include "backends/cuda/int8_ops.h"
#include "backends/cuda/quantize_device.cuh"

namespace kiln::cuda {
namespace {

#define KILN_GRID_LOOP(i, n) \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

__global__ void quantizeHalf(const __half* x, int8_t* y, int64_t n, float inv) {
  KILN_GRID_LOOP(i, n) y[i] = q8(__half2float(x[i]) * inv);
}
// Four halves in, four int8 out (n4 groups of four).
__global__ void quantizeHalf4(const uint2* x, char4* y, int64_t n4, float inv) {
  KILN_GRID_LOOP(i, n4) {
    uint2 v = x[i];
    __half2 a = *reinterpret_cast<__half2*>(&v.x), b = *reinterpret_cast<__half2*>(&v.y);
    float2 fa = __half22float2(a), fb = __half22float2(b);
    y[i] = make_char4(q8(fa.x * inv), q8(fa.y * inv), q8(fb.x * inv), q8(fb.y * inv));
  }
}
__global__ void quantizeFloat(const float* x, int8_t* y, int64_t n, float inv) {
  KILN_GRID_LOOP(i, n) y[i] = q8(x[i] * inv);
}
__global__ void dequantizeHalf(const int8_t* x, __half* y, int64_t n, float scale) {
  KILN_GRID_LOOP(i, n) y[i] = __float2half(float(x[i]) * scale);
}
__global__ void dequantizeFloat(const int8_t* x, float* y, int64_t n, float scale) {
  KILN_GRID_LOOP(i, n) y[i] = float(x[i]) * scale;
}

// One thread per 4 output bytes (C % 4 == 0: the four channels share one tap).
__global__ void im2col4(const int32_t* x, int32_t* out, Im2ColGeometry g, int64_t total) {
  const int64_t words = g.kPad / 4, c4 = g.c / 4, taps = int64_t(g.r) * g.s * c4;
  KILN_GRID_LOOP(i, total) {
    const int64_t m = i / words, w = i - m * words;
    int32_t v = 0;
    if (w < taps) {
      const int64_t c = w % c4, rs = w / c4;
      const int s = int(rs % g.s), r = int(rs / g.s);
      const int64_t ow = m % g.ow, t = m / g.ow, oh = t % g.oh, n = t / g.oh;
      const int64_t ih = oh * g.strideH - g.padH + int64_t(r) * g.dilH;
      const int64_t iw = ow * g.strideW - g.padW + int64_t(s) * g.dilW;
      if (ih >= 0 && ih < g.h && iw >= 0 && iw < g.w) v = x[((n * g.h + ih) * g.w + iw) * c4 + c];
    }
    out[i] = v;
  }
}

__global__ void im2col1(const int8_t* x, int8_t* out, Im2ColGeometry g, int64_t total) {
  const int64_t taps = int64_t(g.r) * g.s * g.c;
  KILN_GRID_LOOP(i, total) {
    const int64_t m = i / g.kPad, kk = i - m * g.kPad;
    int8_t v = 0;
    if (kk < taps) {
      const int64_t c = kk % g.c, rs = kk / g.c;
      const int s = int(rs % g.s), r = int(rs / g.s);
      const int64_t ow = m % g.ow, t = m / g.ow, oh = t % g.oh, n = t / g.oh;
      const int64_t ih = oh * g.strideH - g.padH + int64_t(r) * g.dilH;
      const int64_t iw = ow * g.strideW - g.padW + int64_t(s) * g.dilW;
      if (ih >= 0 && ih < g.h && iw >= 0 && iw < g.w) v = x[((n * g.h + ih) * g.w + iw) * g.c + c];
    }
    out[i] = v;
  }
}

__global__ void requantize(const int32_t* acc, const float* alpha, const float* bias, const int8_t* z, float beta,
                           bool relu, int8_t* y, int64_t total, int64_t k) {
  KILN_GRID_LOOP(i, total) {
    const int64_t c = i % k;
    float v = float(acc[i]) * alpha[c] + bias[c];
    if (z) v += beta * float(z[i]);
    if (relu) v = fmaxf(v, 0.f);
    y[i] = q8(v);
  }
}

__global__ void shortcutConvReference(const int8_t* x, const int8_t* w, const float* alpha, const float* bias, bool relu,
                                      const int8_t* x2, const float* ratio, int8_t* y, Im2ColGeometry g, int64_t kOut) {
  const int64_t total = g.n * g.oh * g.ow * kOut, mainBytes = int64_t(g.r) * g.s * g.c;
  KILN_GRID_LOOP(i, total) {
    const int64_t k = i % kOut, pixel = i / kOut, ox = pixel % g.ow, oy = (pixel / g.ow) % g.oh, n = pixel / (g.ow * g.oh);
    const int8_t* wk = w + k * g.kPad;
    int32_t acc = 0;
    for (int r = 0; r < g.r; ++r) {
      const int64_t iy = oy * g.strideH - g.padH + r * g.dilH;
      if (iy < 0 || iy >= g.h) continue;
      for (int s = 0; s < g.s; ++s) {
        const int64_t ix = ox * g.strideW - g.padW + s * g.dilW;
        if (ix < 0 || ix >= g.w) continue;
        const int8_t* xp = x + ((n * g.h + iy) * g.w + ix) * g.c;
        const int8_t* wp = wk + (int64_t(r) * g.s + s) * g.c;
        for (int64_t c = 0; c < g.c; ++c) acc += int32_t(xp[c]) * int32_t(wp[c]);
      }
    }
    acc = __float2int_rn(float(acc) * ratio[k]);
    const int8_t* x2p = x2 + ((n * g.h2 + oy * g.stride2) * g.w2 + ox * g.stride2) * g.c2;
    for (int64_t c = 0; c < g.c2; ++c) acc += int32_t(x2p[c]) * int32_t(wk[mainBytes + c]);
    float v = fmaf(float(acc), alpha[k], bias[k]);
    if (relu) v = fmaxf(v, 0.f);
    y[i] = q8(v);
  }
}

__global__ void gemmDp4a(const int32_t* a, const int32_t* w, int32_t* acc, int64_t m, int64_t n, int64_t words) {
  const int64_t row = blockIdx.y * int64_t(blockDim.y) + threadIdx.y;
  const int64_t col = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (row >= m || col >= n) return;
  const int32_t* ar = a + row * words;
  const int32_t* wr = w + col * words;
  int32_t sum = 0;
  for (int64_t k = 0; k < words; ++k) sum = __dp4a(ar[k], wr[k], sum);
  acc[row * n + col] = sum;
}

// Max pooling on int8 NHWC, one thread per output element of type V: one channel (int8_t) or,
// when C % 4 == 0, four channels (uint32_t: one 32-bit load per tap and a per-byte signed max,
// where a thread per byte issued four times the loads). `c` counts elements of V per pixel.
__device__ __forceinline__ int8_t maxOf(int8_t a, int8_t b) { return a > b ? a : b; }
__device__ __forceinline__ uint32_t maxOf(uint32_t a, uint32_t b) { return __vmaxs4(a, b); }
template <class V>
__global__ void maxPoolInt8(const V* x, V* y, Im2ColGeometry g, int64_t c, int64_t total, V lowest) {
  KILN_GRID_LOOP(i, total) {
    const int64_t ch = i % c, t0 = i / c, ow = t0 % g.ow, t = t0 / g.ow, oh = t % g.oh, n = t / g.oh;
    V best = lowest;
    bool any = false;
    for (int r = 0; r < g.r; ++r) {
      const int64_t ih = oh * g.strideH - g.padH + int64_t(r) * g.dilH;
      if (ih < 0 || ih >= g.h) continue;
      for (int s = 0; s < g.s; ++s) {
        const int64_t iw = ow * g.strideW - g.padW + int64_t(s) * g.dilW;
        if (iw < 0 || iw >= g.w) continue;
        best = maxOf(best, x[((n * g.h + ih) * g.w + iw) * c + ch]);
        any = true;
      }
    }
    y[i] = any ? best : V(0);
  }
}

// Max pooling in 16-byte vectors (8 float16 or 16 int8 channels) per thread and tap, 32-bit index
// math. Float16: cuDNN's NHWC max pool took 0.29 ms for ResNet-50's [256,112,112,64] ->
// [256,56,56,64] on the H100, about 1.7x the time its 0.5 GB of traffic needs. Int8: with 4
// channels a thread (maxPoolInt8<uint32_t>) the same pool took 0.38 ms, twice the float16 one's
// time for half its bytes. Lanes: the lowest value and the maximum of two 32-bit words of lanes.
struct HalfLanes {
  static constexpr uint32_t kLowest = 0xFC00FC00u;  // -inf, -inf
  __device__ static uint32_t max(uint32_t a, uint32_t b) {
    const __half2 m = __hmax2(*reinterpret_cast<const __half2*>(&a), *reinterpret_cast<const __half2*>(&b));
    return *reinterpret_cast<const uint32_t*>(&m);
  }
};
struct Int8Lanes {
  static constexpr uint32_t kLowest = 0x80808080u;  // -128 in every byte
  __device__ static uint32_t max(uint32_t a, uint32_t b) { return __vmaxs4(a, b); }
};

template <class Lanes>
__global__ void maxPoolVec16(const uint4* x, uint4* y, Im2ColGeometry g, uint32_t cv, uint32_t total) {
  for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
    const uint32_t ch = i % cv, t0 = i / cv, ow = t0 % uint32_t(g.ow), t = t0 / uint32_t(g.ow);
    const uint32_t oh = t % uint32_t(g.oh), n = t / uint32_t(g.oh);
    uint4 best = make_uint4(Lanes::kLowest, Lanes::kLowest, Lanes::kLowest, Lanes::kLowest);
    bool any = false;
    for (int r = 0; r < g.r; ++r) {
      const int ih = int(oh) * g.strideH - g.padH + r * g.dilH;
      if (ih < 0 || ih >= int(g.h)) continue;
      for (int s = 0; s < g.s; ++s) {
        const int iw = int(ow) * g.strideW - g.padW + s * g.dilW;
        if (iw < 0 || iw >= int(g.w)) continue;
        const uint4 v = x[((n * uint32_t(g.h) + uint32_t(ih)) * uint32_t(g.w) + uint32_t(iw)) * cv + ch];
        best = make_uint4(Lanes::max(best.x, v.x), Lanes::max(best.y, v.y), Lanes::max(best.z, v.z), Lanes::max(best.w, v.w));
        any = true;
      }
    }
    y[i] = any ? best : make_uint4(0, 0, 0, 0);
  }
}

}  // namespace

bool launchMaxPoolHalf8(const void* x, void* y, const Im2ColGeometry& g, cudaStream_t stream) {
  const int64_t total = g.n * g.oh * g.ow * g.c / 8;
  if (g.c % 8 != 0 || reinterpret_cast<uintptr_t>(x) % 16 != 0 || reinterpret_cast<uintptr_t>(y) % 16 != 0 ||
      total >= (int64_t(1) << 31) || g.n * g.h * g.w * g.c / 8 >= (int64_t(1) << 31))
    return false;
  if (total == 0) return true;
  maxPoolVec16<HalfLanes><<<gridFor(total), 256, 0, stream>>>(static_cast<const uint4*>(x), static_cast<uint4*>(y), g,
                                                   static_cast<uint32_t>(g.c / 8), static_cast<uint32_t>(total));
  KILN_CUDA_CHECK(cudaGetLastError());
  return true;
}

void launchQuantize(const void* x, DType type, int8_t* y, int64_t n, float invScale, cudaStream_t stream) {
  if (n == 0) return;
  if (type == DType::Float16) {
    if (n % 4 == 0 && reinterpret_cast<uintptr_t>(x) % 8 == 0 && reinterpret_cast<uintptr_t>(y) % 4 == 0) {
      quantizeHalf4<<<gridFor(n / 4), 256, 0, stream>>>(static_cast<const uint2*>(x), reinterpret_cast<char4*>(y), n / 4,
                                                         invScale);
    } else {
      quantizeHalf<<<gridFor(n), 256, 0, stream>>>(static_cast<const __half*>(x), y, n, invScale);
    }
  } else {
    quantizeFloat<<<gridFor(n), 256, 0, stream>>>(static_cast<const float*>(x), y, n, invScale);
  }
  KILN_CUDA_CHECK(cudaGetLastError());
}

void launchDequantize(const int8_t* x, void* y, DType type, int64_t n, float scale, cudaStream_t stream) {
  if (n == 0) return;
  if (type == DType::Float16) {
    dequantizeHalf<<<gridFor(n), 256, 0, stream>>>(x, static_cast<__half*>(y), n, scale);
  } else {
    dequantizeFloat<<<gridFor(n), 256, 0, stream>>>(x, static_cast<float*>(y), n, scale);
  }
  KILN_CUDA_CHECK(cudaGetLastError());
}

void launchIm2ColInt8(const int8_t* x, int8_t* out, const Im2ColGeometry& g, cudaStream_t stream) {
  const int64_t m = g.n * g.oh * g.ow;
  if (m == 0) return;
  if (g.c % 4 == 0 && g.kPad % 4 == 0) {
    const int64_t total = m * (g.kPad / 4);
    im2col4<<<gridFor(total), 256, 0, stream>>>(reinterpret_cast<const int32_t*>(x), reinterpret_cast<int32_t*>(out), g, total);
  } else {
    const int64_t total = m * g.kPad;
    im2col1<<<gridFor(total), 256, 0, stream>>>(x, out, g, total);
  }
  KILN_CUDA_CHECK(cudaGetLastError());
}

void launchRequantize(const int32_t* acc, const float* alpha, const float* bias, const int8_t* z, float beta, bool relu,
                      int8_t* y, int64_t m, int64_t k, cudaStream_t stream) {
  const int64_t total = m * k;
  if (total == 0) return;
  requantize<<<gridFor(total), 256, 0, stream>>>(acc, alpha, bias, z, beta, relu, y, total, k);
  KILN_CUDA_CHECK(cudaGetLastError());
}

void launchInt8ShortcutConvReference(const int8_t* x, const int8_t* w, const float* alpha, const float* bias, bool relu,
                                     const int8_t* x2, const float* ratio, int8_t* y, const Im2ColGeometry& g,
                                     int64_t kOut, cudaStream_t stream) {
  const int64_t total = g.n * g.oh * g.ow * kOut;
  if (total == 0) return;
  shortcutConvReference<<<gridFor(total), 256, 0, stream>>>(x, w, alpha, bias, relu, x2, ratio, y, g, kOut);
  KILN_CUDA_CHECK(cudaGetLastError());
}

void launchInt8GemmDp4a(const int8_t* a, const int8_t* w, int32_t* acc, int64_t m, int64_t n, int64_t kPad,
                        cudaStream_t stream) {
  if (m == 0 || n == 0) return;
  dim3 block(32, 8);
  dim3 grid(static_cast<unsigned>((n + 31) / 32), static_cast<unsigned>((m + 7) / 8));
  gemmDp4a<<<grid, block, 0, stream>>>(reinterpret_cast<const int32_t*>(a), reinterpret_cast<const int32_t*>(w), acc, m, n,
                                       kPad / 4);
  KILN_CUDA_CHECK(cudaGetLastError());
}

void launchMaxPoolInt8(const int8_t* x, int8_t* y, const Im2ColGeometry& g, cudaStream_t stream) {
  const int64_t total = g.n * g.oh * g.ow * g.c;
  if (total == 0) return;
  const auto aligned = [&](uintptr_t bytes) {
    return reinterpret_cast<uintptr_t>(x) % bytes == 0 && reinterpret_cast<uintptr_t>(y) % bytes == 0;
  };
  // 32-bit indices: every input and output vector's index fits, with room for the grid stride.
  const bool small = g.n * g.h * g.w * g.c / 16 < (int64_t(1) << 31) && total / 16 < (int64_t(1) << 31);
  if (g.c % 16 == 0 && aligned(16) && small) {
    maxPoolVec16<Int8Lanes><<<gridFor(total / 16), 256, 0, stream>>>(reinterpret_cast<const uint4*>(x), reinterpret_cast<uint4*>(y),
                                                             g, uint32_t(g.c / 16), uint32_t(total / 16));
  } else if (g.c % 4 == 0 && aligned(4)) {
    maxPoolInt8<uint32_t><<<gridFor(total / 4), 256, 0, stream>>>(reinterpret_cast<const uint32_t*>(x),
                                                                   reinterpret_cast<uint32_t*>(y), g, g.c / 4, total / 4,
                                                                   0x80808080u);  // -128 in every byte
  } else {
    maxPoolInt8<int8_t><<<gridFor(total), 256, 0, stream>>>(x, y, g, g.c, total, int8_t(-128));
  }
  KILN_CUDA_CHECK(cudaGetLastError());
}

}  // namespace kiln::cuda
