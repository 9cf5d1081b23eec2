// Own CUDA kernels for normalization and data movement: Softmax, LayerNormalization (ONNX-17 and
// kiln), GlobalAveragePool, kiln.Attention (FlashAttention-style: online softmax over key tiles in
// shared memory, never materializing the score matrix; float16 with head dims up to 128 and at least
// 16 queries runs on tensor cores in attention_tc.cu, everything else here with one warp per query row),
// Transpose, Gather, Concat and Expand. Half data is computed in float.
#include <cuda_fp16.h>

#include <cmath>
#include <cstdlib>
#include <string>

#include "backends/cuda/attention_tc.h"
#include "backends/cuda/cuda_common.h"
#include "backends/cuda/cuda_ops.h"

namespace kiln::cuda {
namespace {

template <class T>
__device__ __forceinline__ float ld(const T* p, int64_t i) { return static_cast<float>(p[i]); }
template <>
__device__ __forceinline__ float ld<__half>(const __half* p, int64_t i) { return __half2float(p[i]); }
__device__ __forceinline__ void st(float* p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void st(__half* p, int64_t i, float v) { p[i] = __float2half(v); }

__device__ __forceinline__ float warpSum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warpMax(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Block-wide sum over 256 threads (8 warps).
__device__ float blockSum(float v, float* shared) {
  v = warpSum(v);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  float total = 0;
  for (int w = 0; w < static_cast<int>(blockDim.x / 32); ++w) total += shared[w];
  return total;
}
__device__ float blockMax(float v, float* shared) {
  v = warpMax(v);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  float m = -INFINITY;
  for (int w = 0; w < static_cast<int>(blockDim.x / 32); ++w) m = fmaxf(m, shared[w]);
  return m;
}

template <class T>
const T* cast(const void* p) { return static_cast<const T*>(p); }

// ---- Softmax over the last axis: one block per row ----------------------------------------------

template <class T>
__global__ void softmaxKernel(const T* x, T* y, int64_t cols) {
  __shared__ float shared[32];
  const T* row = x + blockIdx.x * cols;
  T* out = y + blockIdx.x * cols;
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) m = fmaxf(m, ld(row, j));
  m = blockMax(m, shared);
  float s = 0;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) s += __expf(ld(row, j) - m);
  s = blockSum(s, shared);
  const float inv = 1.f / s;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) st(out, j, __expf(ld(row, j) - m) * inv);
}

class SoftmaxKernel final : public CudaKernel {
 public:
  explicit SoftmaxKernel(const KernelCreateInfo& info) : CudaKernel(info), opset_(info.opset) {
    if (!isFloatType(inputTypes_.at(0))) unsupported(std::string("type ") + dtypeName(inputTypes_[0]));
    // With the rank known, another axis is refused here (a host layer runs it), not at the first run.
    const SymShape& x = info.inputShapes.at(0);
    if (x.hasRank && opset_ >= 13) {
      const int64_t rank = static_cast<int64_t>(x.rank());
      int64_t axis = node_.getInt("axis", -1);
      if (axis < 0) axis += rank;
      if (axis != rank - 1) unsupported("Softmax over an axis other than the last");
    }
  }
  void run(KernelContext& ctx) const override {
    const Tensor& x = *ctx.inputs[0];
    const int64_t rank = static_cast<int64_t>(x.shape.size());
    int64_t axis = node_.getInt("axis", opset_ >= 13 ? -1 : 1);
    if (axis < 0) axis += rank;
    int64_t cols = 1;
    for (int64_t d = axis; d < rank; ++d) cols *= x.shape[d];
    if (opset_ >= 13 && axis != rank - 1) unsupported("Softmax over an axis other than the last");
    const int64_t rows = cols == 0 ? 0 : x.numel() / cols;
    if (rows == 0) return;
    cudaStream_t s = exec(ctx).stream;
    if (x.dtype == DType::Float16)
      softmaxKernel<__half><<<unsigned(rows), 256, 0, s>>>(cast<__half>(in(ctx, 0)), ctx.outputs[0]->ptr<__half>(), cols);
    else
      softmaxKernel<float><<<unsigned(rows), 256, 0, s>>>(cast<float>(in(ctx, 0)), ctx.outputs[0]->ptr<float>(), cols);
  }
  std::string name() const override { return "cuda.softmax"; }

 private:
  int64_t opset_;
};

// ---- LayerNormalization: one 16-byte vector per thread when the row allows, else a strided block --

// LayerNorm of x (+ residual) over rows of `cols`; rows up to kLnCached elements per thread stay
// in registers between the statistics and the output pass.
constexpr int kLnCached = 8;
template <class T>
__global__ void layerNormKernel(const T* x, const T* residual, const T* scale, const T* bias, T* y, int64_t cols, float eps) {
  __shared__ float shared[32];
  const T* row = x + blockIdx.x * cols;
  const T* res = residual ? residual + blockIdx.x * cols : nullptr;
  T* out = y + blockIdx.x * cols;
  float cache[kLnCached];
  float s = 0;
  int c = 0;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x, ++c) {
    float v = ld(row, j) + (res ? ld(res, j) : 0.f);
    if (c < kLnCached) cache[c] = v;
    s += v;
  }
  const float mean = blockSum(s, shared) / cols;
  float var = 0;
  c = 0;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x, ++c) {
    float v = c < kLnCached ? cache[c] : ld(row, j) + (res ? ld(res, j) : 0.f);
    float d = v - mean;
    var += d * d;
  }
  const float inv = rsqrtf(blockSum(var, shared) / cols + eps);
  c = 0;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x, ++c) {
    float v = c < kLnCached ? cache[c] : ld(row, j) + (res ? ld(res, j) : 0.f);
    float r = (v - mean) * inv * ld(scale, j);
    if (bias) r += ld(bias, j);
    st(out, j, r);
  }
}

// Rows made of 16-byte vectors (8 halves or 4 floats), at most 1024 of them (BERT's 768 halves are
// 96): one block per row and one vector per thread, so every load of the row (x, residual, scale,
// bias) is in flight at once and the row stays in registers between the statistics and the output.
// The earlier warp-per-row kernel walked a 768-wide row in 24 dependent scalar steps per lane and
// left the GPU mostly idle at BERT's batch 1 (128 rows: 32 blocks).
template <class T>
struct Vec16 {
  static constexpr int N = 16 / sizeof(T);
};
__device__ __forceinline__ void loadVec(const __half* p, float (&v)[8]) {
  const uint4 raw = *reinterpret_cast<const uint4*>(p);
  const __half2* h = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __half22float2(h[i]);
    v[2 * i] = f.x;
    v[2 * i + 1] = f.y;
  }
}
__device__ __forceinline__ void loadVec(const float* p, float (&v)[4]) {
  const float4 f = *reinterpret_cast<const float4*>(p);
  v[0] = f.x, v[1] = f.y, v[2] = f.z, v[3] = f.w;
}
__device__ __forceinline__ void storeVec(__half* p, const float (&v)[8]) {
  uint4 raw;
  __half2* h = reinterpret_cast<__half2*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) h[i] = __floats2half2_rn(v[2 * i], v[2 * i + 1]);
  *reinterpret_cast<uint4*>(p) = raw;
}
__device__ __forceinline__ void storeVec(float* p, const float (&v)[4]) {
  *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
}

template <class T>
__global__ void layerNormVecKernel(const T* x, const T* residual, const T* scale, const T* bias, T* y, int64_t cols,
                                   float eps) {
  constexpr int N = Vec16<T>::N;
  __shared__ float shared[32];
  const int64_t j = int64_t(threadIdx.x) * N;
  const bool active = j < cols;
  const int64_t at = blockIdx.x * cols + j;
  float v[N], r[N];
  float s = 0.f;
  if (active) {
    loadVec(x + at, v);
    if (residual) {
      loadVec(residual + at, r);
#pragma unroll
      for (int i = 0; i < N; ++i) v[i] += r[i];
    }
#pragma unroll
    for (int i = 0; i < N; ++i) s += v[i];
  }
  const float mean = blockSum(s, shared) / cols;
  float var = 0.f;
  if (active) {
#pragma unroll
    for (int i = 0; i < N; ++i) var += (v[i] - mean) * (v[i] - mean);
  }
  const float inv = rsqrtf(blockSum(var, shared) / cols + eps);
  if (!active) return;
  float g[N], b[N];
  loadVec(scale + j, g);
  if (bias) loadVec(bias + j, b);
#pragma unroll
  for (int i = 0; i < N; ++i) v[i] = (v[i] - mean) * inv * g[i] + (bias ? b[i] : 0.f);
  storeVec(y + at, v);
}

// The vector kernel needs whole 16-byte vectors: cols a multiple of the vector width and every
// pointer 16-byte aligned (then so is every row).
template <class T>
bool fitsVectorLayerNorm(int64_t cols, std::initializer_list<const void*> pointers) {
  constexpr int N = Vec16<T>::N;
  if (cols % N != 0 || cols / N > 1024) return false;
  for (const void* p : pointers) {
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) return false;
  }
  return true;
}

// The vector kernel when the rows allow it, else the strided block kernel.
template <class T>
void launchLayerNorm(const void* x, const void* residual, const void* scale, const void* bias, void* y, int64_t rows,
                     int64_t cols, float eps, cudaStream_t s) {
  const T* xs = static_cast<const T*>(x);
  const T* rs = static_cast<const T*>(residual);
  const T* gs = static_cast<const T*>(scale);
  const T* bs = static_cast<const T*>(bias);
  T* ys = static_cast<T*>(y);
  if (fitsVectorLayerNorm<T>(cols, {x, residual, scale, bias, y})) {
    const unsigned threads = static_cast<unsigned>((cols / Vec16<T>::N + 31) / 32 * 32);
    layerNormVecKernel<T><<<unsigned(rows), threads, 0, s>>>(xs, rs, gs, bs, ys, cols, eps);
  } else {
    layerNormKernel<T><<<unsigned(rows), cols >= 1024 ? 256 : 128, 0, s>>>(xs, rs, gs, bs, ys, cols, eps);
  }
}

class LayerNormKernel final : public CudaKernel {
 public:
  explicit LayerNormKernel(const KernelCreateInfo& info) : CudaKernel(info), withResidual_(info.node.opType == "CudaAddLayerNorm") {
    if (!isFloatType(inputTypes_.at(0))) unsupported(std::string("type ") + dtypeName(inputTypes_[0]));
    for (size_t j = 1; j < node_.outputs.size(); ++j) {
      if (node_.outputs[j] != kNoValue) unsupported("the Mean/InvStdDev outputs");
    }
  }
  void run(KernelContext& ctx) const override {
    const size_t first = withResidual_ ? 2 : 1;  // index of Scale
    const Tensor& x = *ctx.inputs[0];
    const int64_t rank = static_cast<int64_t>(x.shape.size());
    int64_t axis = node_.getInt("axis", -1);
    if (axis < 0) axis += rank;
    int64_t cols = 1;
    for (int64_t d = axis; d < rank; ++d) cols *= x.shape[d];
    if (ctx.inputs[first]->numel() != cols) unsupported("a Scale that is not X.shape[axis:]");
    const bool hasBias = ctx.inputs.size() > first + 1 && ctx.inputs[first + 1] != nullptr;
    if (hasBias && ctx.inputs[first + 1]->numel() != cols) unsupported("a Bias that is not X.shape[axis:]");
    if (withResidual_ && ctx.inputs[1]->shape != x.shape) unsupported("a residual of another shape");
    const int64_t rows = cols == 0 ? 0 : x.numel() / cols;
    if (rows == 0) return;
    const float eps = node_.getFloat("epsilon", 1e-5f);
    cudaStream_t s = exec(ctx).stream;
    const void* residual = withResidual_ ? in(ctx, 1) : nullptr;
    const void* bias = hasBias ? in(ctx, first + 1) : nullptr;
    if (x.dtype == DType::Float16)
      launchLayerNorm<__half>(in(ctx, 0), residual, in(ctx, first), bias, ctx.outputs[0]->data, rows, cols, eps, s);
    else
      launchLayerNorm<float>(in(ctx, 0), residual, in(ctx, first), bias, ctx.outputs[0]->data, rows, cols, eps, s);
  }
  std::string name() const override { return withResidual_ ? "cuda.add_layernorm" : "cuda.layernorm"; }

 private:
  bool withResidual_;
};

// ---- GlobalAveragePool: one warp per (n, c) -----------------------------------------------------

template <class T>
__global__ void globalAvgKernel(const T* x, T* y, int64_t planes, int64_t inner) {
  const int64_t plane = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (plane >= planes) return;
  const T* p = x + plane * inner;
  float s = 0;
  for (int64_t j = lane; j < inner; j += 32) s += ld(p, j);
  s = warpSum(s);
  if (lane == 0) st(y, plane, s / inner);
}

class GlobalAvgPoolKernel final : public CudaKernel {
 public:
  explicit GlobalAvgPoolKernel(const KernelCreateInfo& info) : CudaKernel(info) {
    if (!isFloatType(inputTypes_.at(0))) unsupported(std::string("type ") + dtypeName(inputTypes_[0]));
  }
  void run(KernelContext& ctx) const override {
    const Tensor& x = *ctx.inputs[0];
    const int64_t planes = x.shape[0] * x.shape[1];
    if (planes == 0) return;
    const int64_t inner = x.numel() / planes;
    const unsigned blocks = static_cast<unsigned>((planes + 7) / 8);
    cudaStream_t s = exec(ctx).stream;
    if (x.dtype == DType::Float16)
      globalAvgKernel<__half><<<blocks, 256, 0, s>>>(cast<__half>(in(ctx, 0)), ctx.outputs[0]->ptr<__half>(), planes, inner);
    else
      globalAvgKernel<float><<<blocks, 256, 0, s>>>(cast<float>(in(ctx, 0)), ctx.outputs[0]->ptr<float>(), planes, inner);
  }
  std::string name() const override { return "cuda.global_avgpool"; }
};

// NHWC: one thread per (n, c), reading along C (coalesced across the warp). int8 in: values of
// scale `scale` (an INT8 network's last activation, read in place of its dequantized copy), float16
// out; float in: scale 1.
template <class In, class Out>
__global__ void globalAvgNhwcKernel(const In* x, Out* y, int64_t n, int64_t hw, int64_t c, float scale) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= n * c) return;
  const int64_t b = i / c, ch = i % c;
  const In* p = x + b * hw * c + ch;
  float s = 0;
  for (int64_t j = 0; j < hw; ++j) s += ld(p, j * c);
  st(y, i, s * scale / hw);
}

class GlobalAvgPoolNhwcKernel final : public CudaKernel {
 public:
  explicit GlobalAvgPoolNhwcKernel(const KernelCreateInfo& info) : CudaKernel(info) {
    if (inputTypes_.at(0) == DType::Int8) {
      scale_ = node_.getFloat("scale", 0.f);
      if (!(scale_ > 0.f)) unsupported("int8 input needs its scale (attr scale > 0)");
    } else if (!isFloatType(inputTypes_.at(0))) {
      unsupported(std::string("type ") + dtypeName(inputTypes_[0]));
    }
  }
  void run(KernelContext& ctx) const override {
    const Tensor& x = *ctx.inputs[0];
    const int64_t n = x.shape[0], hw = x.shape[1] * x.shape[2], c = x.shape[3];
    if (n * c == 0) return;
    cudaStream_t s = exec(ctx).stream;
    const unsigned grid = gridFor(n * c);
    if (x.dtype == DType::Int8)
      globalAvgNhwcKernel<<<grid, 256, 0, s>>>(cast<int8_t>(in(ctx, 0)), ctx.outputs[0]->ptr<__half>(), n, hw, c, scale_);
    else if (x.dtype == DType::Float16)
      globalAvgNhwcKernel<<<grid, 256, 0, s>>>(cast<__half>(in(ctx, 0)), ctx.outputs[0]->ptr<__half>(), n, hw, c, 1.f);
    else
      globalAvgNhwcKernel<<<grid, 256, 0, s>>>(cast<float>(in(ctx, 0)), ctx.outputs[0]->ptr<float>(), n, hw, c, 1.f);
  }
  std::string name() const override {
    return inputTypes_.at(0) == DType::Int8 ? "cuda.global_avgpool_nhwc.int8" : "cuda.global_avgpool_nhwc";
  }

 private:
  float scale_ = 0.f;
};

// ---- kiln.Attention -----------------------------------------------------------------------------

constexpr int kAttnWarps = 8;    // queries per block
constexpr int kAttnTile = 32;    // keys per tile (one per lane)
constexpr int kAttnMaxDim = 256; // head dims supported (8 accumulators per lane)

using AttnParams = AttentionShape;  // attention_tc.h

int multiprocessors() {
  static const int count = [] {
    int n = 0;
    cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, 0);
    return n > 0 ? n : 1;
  }();
  return count;
}

template <class T>
__global__ void attentionKernel(const T* Q, const T* K, const T* V, const T* mask, T* O, AttnParams p) {
  extern __shared__ float smem[];
  float* kTile = smem;                                // [kAttnTile][D + 1]
  float* vTile = kTile + kAttnTile * (p.D + 1);        // [kAttnTile][Dv]
  float* qRows = vTile + kAttnTile * p.Dv;             // [kAttnWarps][D]
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t bh = blockIdx.y;
  const int64_t b = bh / p.H, h = bh % p.H;
  const int64_t qi = static_cast<int64_t>(blockIdx.x) * kAttnWarps + warp;
  const bool active = qi < p.Sq;
  const T* qBase = Q + b * p.q[0] + h * p.q[1];
  const T* kBase = K + b * p.k[0] + h * p.k[1];
  const T* vBase = V + b * p.v[0] + h * p.v[1];
  if (active) {
    for (int64_t d = lane; d < p.D; d += 32) qRows[warp * p.D + d] = ld(qBase, qi * p.q[2] + d * p.q[3]) * p.scale;
  }
  float acc[kAttnMaxDim / 32];
  for (int i = 0; i < kAttnMaxDim / 32; ++i) acc[i] = 0.f;
  float runMax = -INFINITY, runSum = 0.f;
  const int64_t causalLimit = qi + (p.Sk - p.Sq);
  for (int64_t k0 = 0; k0 < p.Sk; k0 += kAttnTile) {
    __syncthreads();
    // 32-bit index math: a tile is at most 32 x 256 elements.
    const int dk = static_cast<int>(p.D), dv = static_cast<int>(p.Dv);
    for (int e = threadIdx.x; e < kAttnTile * dk; e += blockDim.x) {
      const int j = e / dk, d = e - j * dk;
      kTile[j * (dk + 1) + d] = k0 + j < p.Sk ? ld(kBase, (k0 + j) * p.k[2] + d * p.k[3]) : 0.f;
    }
    for (int e = threadIdx.x; e < kAttnTile * dv; e += blockDim.x) {
      const int j = e / dv, d = e - j * dv;
      vTile[j * dv + d] = k0 + j < p.Sk ? ld(vBase, (k0 + j) * p.v[2] + d * p.v[3]) : 0.f;
    }
    __syncthreads();
    if (!active) continue;
    const int64_t j = k0 + lane;
    float score = -INFINITY;
    if (j < p.Sk && !(p.causal && j > causalLimit)) {
      score = 0.f;
      const float* kr = kTile + lane * (p.D + 1);
      const float* qr = qRows + warp * p.D;
      const int dk = static_cast<int>(p.D);
#pragma unroll 8
      for (int d = 0; d < dk; ++d) score += qr[d] * kr[d];
      if (mask) score += ld(mask, b * p.mask[0] + h * p.mask[1] + qi * p.mask[2] + j * p.mask[3]);
    }
    const float tileMax = warpMax(score);
    const float newMax = fmaxf(runMax, tileMax);
    if (newMax == -INFINITY) continue;  // everything masked so far
    const float correction = __expf(runMax - newMax);
    const float prob = score == -INFINITY ? 0.f : __expf(score - newMax);
    runSum = runSum * correction + warpSum(prob);
    runMax = newMax;
    for (int i = 0; i < kAttnMaxDim / 32; ++i) acc[i] *= correction;
    for (int jj = 0; jj < kAttnTile; ++jj) {
      const float pj = __shfl_sync(0xffffffffu, prob, jj);
      if (pj == 0.f) continue;
      const float* vr = vTile + jj * p.Dv;
      for (int i = 0; i < kAttnMaxDim / 32; ++i) {
        const int64_t d = lane + 32 * i;
        if (d < p.Dv) acc[i] += pj * vr[d];
      }
    }
  }
  if (!active) return;
  const float inv = runSum > 0.f ? 1.f / runSum : 0.f;
  T* oBase = O + b * p.o[0] + h * p.o[1] + qi * p.o[2];
  for (int i = 0; i < kAttnMaxDim / 32; ++i) {
    const int64_t d = lane + 32 * i;
    if (d < p.Dv) st(oBase, d * p.o[3], acc[i] * inv);
  }
}

class AttentionKernel final : public CudaKernel {
 public:
  explicit AttentionKernel(const KernelCreateInfo& info) : CudaKernel(info) {
    if (!isFloatType(inputTypes_.at(0))) unsupported(std::string("type ") + dtypeName(inputTypes_[0]));
    if (!node_.has("scale")) unsupported("missing scale attribute");
    scale_ = node_.getFloat("scale", 1.f);
    causal_ = node_.getInt("causal", 0) != 0;
    layout_ = node_.getInts("layout", {0, 0, 0, 0});
    if (layout_.size() != 4) unsupported("layout must have 4 entries");
    packedHeads_ = node_.getInt("qkv_heads", 0);
    // KILN_CUDA_ATTENTION=warp|tc<R>[x<S>] forces one kernel (tests, comparisons): the warp-per-query
    // kernel, or the tensor-core kernel with R row groups x S key splits (tc1, tc2, tc4, tc1x2,
    // tc1x4, tc2x2); default: the tensor-core kernel in fp16 where it applies, its block by grid size.
    // Read once, when the kernel is created.
    const char* mode = std::getenv("KILN_CUDA_ATTENTION");
    const std::string forced = mode ? mode : "";
    forceWarpKernel_ = forced == "warp";
    if (forced.size() >= 3 && forced.compare(0, 2, "tc") == 0) {
      block_.rows = forced[2] - '0';
      block_.splits = forced.size() == 5 && forced[3] == 'x' ? forced[4] - '0' : 1;
      const bool valid = (block_.rows == 1 || block_.rows == 2 || block_.rows == 4) &&
                         (block_.splits == 1 || block_.splits == 2 || block_.splits == 4) && block_.rows * block_.splits <= 4;
      if (!valid)
        fail(ErrorCode::InvalidArgument, "KILN_CUDA_ATTENTION=" + forced + " (warp, tc1, tc2, tc4, tc1x2, tc1x4 or tc2x2)");
    }
  }
  void run(KernelContext& ctx) const override {
    const Tensor& q = *ctx.inputs[0];
    const Tensor& k = *ctx.inputs[1];
    const Tensor& v = *ctx.inputs[2];
    Tensor& o = *ctx.outputs[0];
    if (packedHeads_ > 0) return runPacked(ctx);
    if (q.shape.size() != 4) unsupported("Q of rank other than 4");
    // Logical [B,H,S,D] dims and element strides of each tensor in its stored layout.
    auto view = [](const Shape& s, bool bshd, int64_t* dims, int64_t* st) {
      int64_t packed[4];
      packed[3] = 1;
      for (int d = 2; d >= 0; --d) packed[d] = packed[d + 1] * s[d + 1];
      if (bshd) {  // stored [B,S,H,D]
        dims[0] = s[0], dims[1] = s[2], dims[2] = s[1], dims[3] = s[3];
        st[0] = packed[0], st[1] = packed[2], st[2] = packed[1], st[3] = 1;
      } else {
        for (int d = 0; d < 4; ++d) dims[d] = s[d], st[d] = packed[d];
      }
    };
    AttnParams p{};
    int64_t qd[4], kd[4], vd[4], od[4];
    view(q.shape, layout_[0] != 0, qd, p.q);
    view(k.shape, layout_[1] != 0, kd, p.k);
    view(v.shape, layout_[2] != 0, vd, p.v);
    view(o.shape, layout_[3] != 0, od, p.o);
    p.B = qd[0], p.H = qd[1], p.Sq = qd[2], p.D = qd[3], p.Sk = kd[2], p.Dv = vd[3];
    if (kd[0] != p.B || kd[1] != p.H || kd[3] != p.D || vd[0] != p.B || vd[1] != p.H || vd[2] != p.Sk)
      fail(ErrorCode::ShapeMismatch, "node '" + node_.name + "': Q " + shapeToString(q.shape) + ", K " +
                                         shapeToString(k.shape) + " and V " + shapeToString(v.shape) + " do not match");
    if (p.D > kAttnMaxDim || p.Dv > kAttnMaxDim) unsupported("head dims above 256");
    const void* mask = maskFor(ctx, p);
    launch(ctx, p, in(ctx, 0), in(ctx, 1), in(ctx, 2), mask);
  }

  // Q, K and V as column blocks of one [B,S,3*H*D] tensor (the packed projection's output).
  void runPacked(KernelContext& ctx) const {
    const Tensor& qkv = *ctx.inputs[0];
    if (qkv.shape.size() != 3 || qkv.shape[2] % (3 * packedHeads_) != 0)
      fail(ErrorCode::ShapeMismatch, "node '" + node_.name + "': packed Q/K/V " + shapeToString(qkv.shape) + " is not [B,S,3*" +
                                         std::to_string(packedHeads_) + "*D]");
    AttnParams p{};
    p.B = qkv.shape[0], p.H = packedHeads_, p.Sq = p.Sk = qkv.shape[1], p.D = p.Dv = qkv.shape[2] / (3 * packedHeads_);
    if (p.D > kAttnMaxDim) unsupported("head dims above 256");
    // Element strides over logical [B,H,S,D]: Q, K, V are [B,S,H,D] inside rows of 3*H*D; the output
    // is stored [B,S,H,D] (layout[3]) or [B,H,S,D].
    const int64_t row = qkv.shape[2], heads = p.H * p.D;
    const int64_t in[4] = {p.Sq * row, p.D, row, 1};
    const int64_t outBshd[4] = {p.Sq * heads, p.D, heads, 1}, outBhsd[4] = {p.Sq * heads, p.Sq * p.D, p.D, 1};
    for (int d = 0; d < 4; ++d) {
      p.q[d] = p.k[d] = p.v[d] = in[d];
      p.o[d] = layout_[3] ? outBshd[d] : outBhsd[d];
    }
    const void* mask = maskFor(ctx, p);
    const auto* base = static_cast<const uint8_t*>(this->in(ctx, 0));
    const size_t block = size_t(heads) * dtypeSize(qkv.dtype);  // bytes from Q's columns to K's, K's to V's
    launch(ctx, p, base, base + block, base + 2 * block, mask);
  }

  // The mask's strides over [B,H,Sq,Sk] (0 on broadcast dims); null without a mask.
  const void* maskFor(KernelContext& ctx, AttnParams& p) const {
    if (ctx.inputs.size() <= 3 || ctx.inputs[3] == nullptr) return nullptr;
    const Tensor& m = *ctx.inputs[3];
    if (m.dtype != ctx.inputs[0]->dtype) unsupported("a mask whose type differs from Q");
    const int64_t full[4] = {p.B, p.H, p.Sq, p.Sk};
    int64_t stride = 1;
    for (int d = 3; d >= 0; --d) {
      int sd = d - (4 - static_cast<int>(m.shape.size()));
      int64_t dim = sd >= 0 ? m.shape[sd] : 1;
      p.mask[d] = dim == 1 && full[d] != 1 ? 0 : stride;
      stride *= dim;
    }
    return in(ctx, 3);
  }

  void launch(KernelContext& ctx, AttnParams& p, const void* q, const void* k, const void* v, const void* mask) const {
    const DType type = ctx.inputs[0]->dtype;
    p.scale = scale_;
    p.causal = causal_;
    Tensor& o = *ctx.outputs[0];
    if (o.numel() == 0) return;
    dim3 grid(static_cast<unsigned>((p.Sq + kAttnWarps - 1) / kAttnWarps), static_cast<unsigned>(p.B * p.H));
    const size_t shared = sizeof(float) * (kAttnTile * (p.D + 1) + kAttnTile * p.Dv + kAttnWarps * p.D);
    cudaStream_t s = exec(ctx).stream;
    if (type == DType::Float16 && !forceWarpKernel_ && tensorCoreAttentionSupports(p)) {
      launchTensorCoreAttention(q, k, v, mask, o.data, p, multiprocessors(), block_, s);
      return;
    }
    if (type == DType::Float16) {
      attentionKernel<__half><<<grid, kAttnWarps * 32, shared, s>>>(cast<__half>(q), cast<__half>(k), cast<__half>(v),
                                                                   cast<__half>(mask), o.ptr<__half>(), p);
    } else {
      attentionKernel<float><<<grid, kAttnWarps * 32, shared, s>>>(cast<float>(q), cast<float>(k), cast<float>(v),
                                                                  cast<float>(mask), o.ptr<float>(), p);
    }
  }
  std::string name() const override {
    return inputTypes_[0] == DType::Float16 ? "cuda.attention.flash_tc_or_warp" : "cuda.attention.flash_warp";
  }

 private:
  float scale_ = 1.f;
  bool causal_ = false;
  std::vector<int64_t> layout_;
  int64_t packedHeads_ = 0;  // > 0: Q, K, V packed in one input (attr qkv_heads)
  bool forceWarpKernel_ = false;
  AttentionBlock block_;  // rows 0: chosen per launch from the grid size
};

// ---- Transpose / Gather / Concat / Expand -------------------------------------------------------

constexpr int kMaxRank = 8;
struct Strided {
  int rank;
  int64_t outDims[kMaxRank];
  int64_t inStrides[kMaxRank];  // input stride of each output dim
};

template <class T>
__global__ void stridedCopyKernel(const T* x, T* y, int64_t n, Strided s) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t rem = i, off = 0;
    for (int d = s.rank - 1; d >= 0; --d) {
      off += (rem % s.outDims[d]) * s.inStrides[d];
      rem /= s.outDims[d];
    }
    y[i] = x[off];
  }
}

// Division by a run-time constant as a multiply-high and a shift (valid for numerators < 2^31):
// a 64-bit division per dimension and element made a transpose compute-bound (ResNet-50's input
// [256,3,224,224] -> NHWC took 0.30 ms on the H100 for 77 MB each way).
struct FastDivmod {
  uint32_t div = 1, mul = 0, shr = 0;
  static FastDivmod of(uint32_t d) {
    FastDivmod f;
    f.div = d;
    if (d > 1) {
      uint32_t log2 = 0;
      while ((uint64_t(1) << log2) < d) ++log2;  // ceil(log2(d))
      const uint32_t p = 31 + log2;
      f.mul = static_cast<uint32_t>(((uint64_t(1) << p) + d - 1) / d);
      f.shr = p - 32;
    }
    return f;
  }
  __device__ __forceinline__ uint32_t quotient(uint32_t n) const { return div == 1 ? n : __umulhi(n, mul) >> shr; }
};
struct Strided32 {
  int rank;
  FastDivmod outDims[kMaxRank];
  uint32_t inStrides[kMaxRank];
};

template <class T>
__global__ void stridedCopyKernel32(const T* x, T* y, uint32_t n, Strided32 s) {
  for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    uint32_t rem = i, off = 0;
    for (int d = s.rank - 1; d >= 0; --d) {
      const uint32_t q = s.outDims[d].quotient(rem);
      off += (rem - q * s.outDims[d].div) * s.inStrides[d];
      rem = q;
    }
    y[i] = x[off];
  }
}

// Drops dims of size 1 and merges neighbours that are contiguous in the input too (an NCHW -> NHWC
// transpose becomes 3-D), so each element needs fewer divisions.
Strided simplify(const Strided& s) {
  Strided out{};
  out.rank = 0;
  for (int d = 0; d < s.rank; ++d) {
    if (s.outDims[d] == 1) continue;
    if (out.rank > 0 && out.inStrides[out.rank - 1] == s.inStrides[d] * s.outDims[d]) {
      out.outDims[out.rank - 1] *= s.outDims[d];
      out.inStrides[out.rank - 1] = s.inStrides[d];
      continue;
    }
    out.outDims[out.rank] = s.outDims[d];
    out.inStrides[out.rank] = s.inStrides[d];
    ++out.rank;
  }
  return out;
}

template <class T>
void launchStridedAs(const void* x, void* y, int64_t n, const Strided& s, cudaStream_t stream) {
  int64_t maxOffset = 0;
  for (int d = 0; d < s.rank; ++d) maxOffset += (s.outDims[d] - 1) * s.inStrides[d];
  constexpr int64_t kLimit = (int64_t(1) << 31) - 1;
  if (n <= kLimit && maxOffset <= kLimit) {
    Strided32 s32{};
    s32.rank = s.rank;
    for (int d = 0; d < s.rank; ++d) {
      s32.outDims[d] = FastDivmod::of(static_cast<uint32_t>(s.outDims[d]));
      s32.inStrides[d] = static_cast<uint32_t>(s.inStrides[d]);
    }
    stridedCopyKernel32<T><<<gridFor(n), 256, 0, stream>>>(static_cast<const T*>(x), static_cast<T*>(y), uint32_t(n), s32);
  } else {
    stridedCopyKernel<T><<<gridFor(n), 256, 0, stream>>>(static_cast<const T*>(x), static_cast<T*>(y), n, s);
  }
}

void launchStrided(const void* x, void* y, size_t elem, int64_t n, const Strided& strided, cudaStream_t stream) {
  if (n == 0) return;
  const Strided s = simplify(strided);
  switch (elem) {
    case 1: launchStridedAs<uint8_t>(x, y, n, s, stream); break;
    case 2: launchStridedAs<uint16_t>(x, y, n, s, stream); break;
    case 4: launchStridedAs<uint32_t>(x, y, n, s, stream); break;
    case 8: launchStridedAs<uint64_t>(x, y, n, s, stream); break;
    default: fail(ErrorCode::UnsupportedOp, "cuda data movement of " + std::to_string(elem) + "-byte elements");
  }
}

class TransposeKernel final : public CudaKernel {
 public:
  explicit TransposeKernel(const KernelCreateInfo& info) : CudaKernel(info) {}
  void run(KernelContext& ctx) const override {
    const Tensor& x = *ctx.inputs[0];
    Tensor& y = *ctx.outputs[0];
    const int rank = static_cast<int>(x.shape.size());
    if (rank > kMaxRank) unsupported("rank above 8");
    std::vector<int64_t> perm = node_.getInts("perm");
    if (perm.empty()) {
      for (int d = rank - 1; d >= 0; --d) perm.push_back(d);
    }
    std::vector<int64_t> inStrides = shapeStrides(x.shape);
    Strided s{};
    s.rank = rank;
    for (int d = 0; d < rank; ++d) {
      s.outDims[d] = y.shape[d];
      s.inStrides[d] = inStrides[perm[d] < 0 ? perm[d] + rank : perm[d]];
    }
    launchStrided(in(ctx, 0), y.data, dtypeSize(x.dtype), y.numel(), s, exec(ctx).stream);
  }
  std::string name() const override { return "cuda.transpose"; }
};

// float32 [N,C,H,W] -> float16 [N,H,W,C], one thread per pixel: each channel plane is read in
// coalesced runs across the threads, each pixel's C halves written together.
template <class Index>
__global__ void castToNhwcKernel(const float* x, __half* y, Index pixels, Index hw, int c) {
  for (Index p = blockIdx.x * Index(blockDim.x) + threadIdx.x; p < pixels; p += Index(gridDim.x) * blockDim.x) {
    const Index n = p / hw, at = p - n * hw;
    const float* from = x + n * c * hw + at;
    __half* to = y + p * c;
    for (int ch = 0; ch < c; ++ch) to[ch] = __float2half(from[Index(ch) * hw]);
  }
}

class CastToNhwcKernel final : public CudaKernel {
 public:
  explicit CastToNhwcKernel(const KernelCreateInfo& info) : CudaKernel(info) {
    if (inputTypes_.at(0) != DType::Float32) unsupported(std::string("type ") + dtypeName(inputTypes_[0]));
  }
  void run(KernelContext& ctx) const override {
    const Tensor& x = *ctx.inputs[0];
    Tensor& y = *ctx.outputs[0];
    if (x.shape.size() != 4) unsupported("input of rank other than 4");
    const int64_t hw = x.shape[2] * x.shape[3], pixels = x.shape[0] * hw, c = x.shape[1];
    if (pixels == 0 || c == 0) return;
    if (x.numel() < (int64_t(1) << 31))
      castToNhwcKernel<uint32_t><<<gridFor(pixels), 256, 0, exec(ctx).stream>>>(
          cast<float>(in(ctx, 0)), y.ptr<__half>(), uint32_t(pixels), uint32_t(hw), int(c));
    else
      castToNhwcKernel<int64_t><<<gridFor(pixels), 256, 0, exec(ctx).stream>>>(cast<float>(in(ctx, 0)), y.ptr<__half>(),
                                                                               pixels, hw, int(c));
  }
  std::string name() const override { return "cuda.cast_to_nhwc"; }
};

class ExpandKernel final : public CudaKernel {
 public:
  explicit ExpandKernel(const KernelCreateInfo& info) : CudaKernel(info) {}
  void run(KernelContext& ctx) const override {
    const Tensor& x = *ctx.inputs[0];
    Tensor& y = *ctx.outputs[0];
    const int rank = static_cast<int>(y.shape.size());
    if (rank > kMaxRank) unsupported("rank above 8");
    Strided s{};
    s.rank = rank;
    int64_t stride = 1;
    for (int d = rank - 1; d >= 0; --d) {
      int sd = d - (rank - static_cast<int>(x.shape.size()));
      int64_t dim = sd >= 0 ? x.shape[sd] : 1;
      s.outDims[d] = y.shape[d];
      s.inStrides[d] = dim == 1 ? 0 : stride;
      stride *= dim;
    }
    launchStrided(in(ctx, 0), y.data, dtypeSize(x.dtype), y.numel(), s, exec(ctx).stream);
  }
  std::string name() const override { return "cuda.expand"; }
};

template <class T, class I>
__global__ void gatherKernel(const T* data, const I* idx, T* out, int64_t n, int64_t axisDim, int64_t numIdx, int64_t inner) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t in = i % inner;
    const int64_t k = (i / inner) % numIdx;
    const int64_t outer = i / (inner * numIdx);
    int64_t j = static_cast<int64_t>(idx[k]);
    if (j < 0) j += axisDim;
    j = j < 0 ? 0 : (j >= axisDim ? axisDim - 1 : j);  // out-of-range ids are clamped, never read wild
    out[i] = data[(outer * axisDim + j) * inner + in];
  }
}

template <class I>
void launchGather(const void* data, const I* idx, void* out, size_t elem, int64_t n, int64_t axisDim, int64_t numIdx,
                  int64_t inner, cudaStream_t s) {
  switch (elem) {
    case 1: gatherKernel<uint8_t, I><<<gridFor(n), 256, 0, s>>>((const uint8_t*)data, idx, (uint8_t*)out, n, axisDim, numIdx, inner); break;
    case 2: gatherKernel<uint16_t, I><<<gridFor(n), 256, 0, s>>>((const uint16_t*)data, idx, (uint16_t*)out, n, axisDim, numIdx, inner); break;
    case 4: gatherKernel<uint32_t, I><<<gridFor(n), 256, 0, s>>>((const uint32_t*)data, idx, (uint32_t*)out, n, axisDim, numIdx, inner); break;
    case 8: gatherKernel<uint64_t, I><<<gridFor(n), 256, 0, s>>>((const uint64_t*)data, idx, (uint64_t*)out, n, axisDim, numIdx, inner); break;
    default: fail(ErrorCode::UnsupportedOp, "cuda Gather of " + std::to_string(elem) + "-byte elements");
  }
}

class GatherKernel final : public CudaKernel {
 public:
  explicit GatherKernel(const KernelCreateInfo& info) : CudaKernel(info) {
    if (inputTypes_.at(1) != DType::Int64 && inputTypes_.at(1) != DType::Int32) unsupported("indices other than int32/int64");
  }
  void run(KernelContext& ctx) const override {
    const Tensor& x = *ctx.inputs[0];
    const Tensor& idx = *ctx.inputs[1];
    Tensor& y = *ctx.outputs[0];
    const int64_t rank = static_cast<int64_t>(x.shape.size());
    int64_t axis = node_.getInt("axis", 0);
    if (axis < 0) axis += rank;
    int64_t inner = 1;
    for (int64_t d = axis + 1; d < rank; ++d) inner *= x.shape[d];
    const int64_t n = y.numel();
    if (n == 0) return;
    cudaStream_t s = exec(ctx).stream;
    if (idx.dtype == DType::Int64)
      launchGather(in(ctx, 0), cast<int64_t>(in(ctx, 1)), y.data, dtypeSize(x.dtype), n, x.shape[axis], idx.numel(), inner, s);
    else
      launchGather(in(ctx, 0), cast<int32_t>(in(ctx, 1)), y.data, dtypeSize(x.dtype), n, x.shape[axis], idx.numel(), inner, s);
  }
  std::string name() const override { return "cuda.gather"; }
};

class ConcatKernel final : public CudaKernel {
 public:
  explicit ConcatKernel(const KernelCreateInfo& info) : CudaKernel(info) {}
  void run(KernelContext& ctx) const override {
    Tensor& y = *ctx.outputs[0];
    const int64_t rank = static_cast<int64_t>(y.shape.size());
    int64_t axis = node_.getInt("axis", 0);
    if (axis < 0) axis += rank;
    const size_t elem = dtypeSize(y.dtype);
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= y.shape[d];
    for (int64_t d = axis + 1; d < rank; ++d) inner *= y.shape[d];
    const size_t dstPitch = static_cast<size_t>(y.shape[axis] * inner) * elem;
    size_t at = 0;
    for (size_t i = 0; i < ctx.inputs.size(); ++i) {
      const Tensor& x = *ctx.inputs[i];
      const size_t width = static_cast<size_t>(x.shape[axis] * inner) * elem;
      if (width > 0 && outer > 0)
        KILN_CUDA_CHECK(cudaMemcpy2DAsync(static_cast<uint8_t*>(y.data) + at, dstPitch, in(ctx, i), width, width,
                                          static_cast<size_t>(outer), cudaMemcpyDeviceToDevice, exec(ctx).stream));
      at += width;
    }
  }
  std::string name() const override { return "cuda.concat"; }
};

template <class K>
std::unique_ptr<Kernel> make(const KernelCreateInfo& info) { return std::make_unique<K>(info); }

}  // namespace

KILN_REGISTER_KERNEL(CudaSoftmax, (KernelDef{"cuda", "", "Softmax", 1, make<SoftmaxKernel>}));
KILN_REGISTER_KERNEL(CudaLayerNorm, (KernelDef{"cuda", "", "LayerNormalization", 17, make<LayerNormKernel>}));
KILN_REGISTER_KERNEL(CudaKilnLayerNorm, (KernelDef{"cuda", "kiln", "LayerNormalization", 1, make<LayerNormKernel>}));
KILN_REGISTER_KERNEL(CudaGlobalAveragePool, (KernelDef{"cuda", "", "GlobalAveragePool", 1, make<GlobalAvgPoolKernel>}));
KILN_REGISTER_KERNEL(CudaGlobalAvgPoolNHWC, (KernelDef{"cuda", "kiln", "CudaGlobalAvgPoolNHWC", 1, make<GlobalAvgPoolNhwcKernel>}));
KILN_REGISTER_KERNEL(CudaAttention, (KernelDef{"cuda", "kiln", "Attention", 1, make<AttentionKernel>}));
KILN_REGISTER_KERNEL(CudaAttentionLayouts, (KernelDef{"cuda", "kiln", "CudaAttention", 1, make<AttentionKernel>}));
KILN_REGISTER_KERNEL(CudaAddLayerNorm, (KernelDef{"cuda", "kiln", "CudaAddLayerNorm", 1, make<LayerNormKernel>}));
KILN_REGISTER_KERNEL(CudaTranspose, (KernelDef{"cuda", "", "Transpose", 1, make<TransposeKernel>}));
KILN_REGISTER_KERNEL(CudaCastToNhwc, (KernelDef{"cuda", "kiln", "CudaCastToNhwc", 1, make<CastToNhwcKernel>}));
KILN_REGISTER_KERNEL(CudaExpand, (KernelDef{"cuda", "", "Expand", 8, make<ExpandKernel>}));
KILN_REGISTER_KERNEL(CudaGather, (KernelDef{"cuda", "", "Gather", 1, make<GatherKernel>}));
KILN_REGISTER_KERNEL(CudaConcat, (KernelDef{"cuda", "", "Concat", 4, make<ConcatKernel>}));

namespace {
// One thread per pixel: its c halves read, one 16-byte vector of 8 written.
__global__ void padChannelsTo8(const __half* x, uint4* y, int64_t pixels, int c) {
  for (int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; p < pixels; p += int64_t(gridDim.x) * blockDim.x) {
    __align__(16) __half v[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = i < c ? x[p * c + i] : __float2half(0.f);
    y[p] = *reinterpret_cast<const uint4*>(v);
  }
}
}  // namespace

void launchPadChannelsTo8(const void* x, void* y, int64_t pixels, int64_t c, cudaStream_t stream) {
  if (pixels == 0) return;
  padChannelsTo8<<<gridFor(pixels), 256, 0, stream>>>(static_cast<const __half*>(x), static_cast<uint4*>(y), pixels,
                                                      static_cast<int>(c));
  KILN_CUDA_CHECK(cudaGetLastError());
}

}  // namespace kiln::cuda
