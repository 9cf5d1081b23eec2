// Elementwise kernels: unary activations and math, broadcasting binary arithmetic, Where, Cast and
// the view ops (Reshape/Flatten/Squeeze/Unsqueeze/Identity copy only when the planner could not
// alias). Half data is computed in float. Broadcasting follows ONNX/numpy through per-operand
// strides (0 on broadcast dims) over at most kMaxRank dims.
#include <cuda_fp16.h>

#include <cmath>

#include "backends/cuda/cuda_common.h"
#include "graph/fused_ops.h"

namespace kiln::cuda {
namespace {

constexpr int kMaxRank = 8;

template <class T>
__device__ __forceinline__ float load(const T* p, int64_t i) { return static_cast<float>(p[i]); }
template <>
__device__ __forceinline__ float load<__half>(const __half* p, int64_t i) { return __half2float(p[i]); }
template <class T>
__device__ __forceinline__ void store(T* p, int64_t i, float v) { p[i] = static_cast<T>(v); }
template <>
__device__ __forceinline__ void store<__half>(__half* p, int64_t i, float v) { p[i] = __float2half(v); }

// ---- unary ------------------------------------------------------------------------------------

enum class UnaryOp { Relu, Sigmoid, Tanh, Erf, Exp, Log, Sqrt, Neg, Abs, Reciprocal, Gelu, GeluTanh, LeakyRelu, Clip, Silu, HardSigmoid, HardSwish };

__device__ __forceinline__ float applyUnary(UnaryOp op, float x, float a, float b) {
  switch (op) {
    case UnaryOp::Relu: return x > 0.f ? x : 0.f;
    case UnaryOp::Sigmoid: return 1.f / (1.f + __expf(-x));
    case UnaryOp::Tanh: return tanhf(x);
    case UnaryOp::Erf: return erff(x);
    case UnaryOp::Exp: return __expf(x);
    case UnaryOp::Log: return __logf(x);
    case UnaryOp::Sqrt: return sqrtf(x);
    case UnaryOp::Neg: return -x;
    case UnaryOp::Abs: return fabsf(x);
    case UnaryOp::Reciprocal: return 1.f / x;
    case UnaryOp::Gelu: return 0.5f * x * (1.f + erff(x * 0.70710678118654752f));
    case UnaryOp::GeluTanh: return 0.5f * x * (1.f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
    case UnaryOp::LeakyRelu: return x >= 0.f ? x : a * x;
    case UnaryOp::Clip: return fminf(fmaxf(x, a), b);
    case UnaryOp::Silu: return x / (1.f + __expf(-x));
    case UnaryOp::HardSigmoid: return fmaxf(0.f, fminf(1.f, a * x + b));
    case UnaryOp::HardSwish: return x * fmaxf(0.f, fminf(1.f, x / 6.f + 0.5f));
  }
  return x;
}

template <class T>
__global__ void unaryKernel(const T* x, T* y, int64_t n, UnaryOp op, float a, float b) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    store(y, i, applyUnary(op, load(x, i), a, b));
}

class UnaryKernel final : public CudaKernel {
 public:
  UnaryKernel(const KernelCreateInfo& info, UnaryOp op) : CudaKernel(info), op_(op) {
    if (!isFloatType(inputTypes_.at(0))) unsupported(std::string("input type ") + dtypeName(inputTypes_[0]) + " (float32/float16 only)");
    if (op == UnaryOp::LeakyRelu) a_ = node_.getFloat("alpha", 0.01f);
    if (op == UnaryOp::HardSigmoid) { a_ = node_.getFloat("alpha", 0.2f); b_ = node_.getFloat("beta", 0.5f); }
    if (op == UnaryOp::Clip) {
      a_ = node_.getFloat("min", -INFINITY);
      b_ = node_.getFloat("max", INFINITY);
      // Clip-11+: min/max are inputs, which must be constants here.
      for (size_t i = 1; i < 3 && i < info.inputTypes.size(); ++i) {
        if (info.inputTypes[i] == DType::Undefined) continue;
        const Tensor* c = hostConstant(i);
        if (c == nullptr) unsupported("Clip min/max must be constants");
        (i == 1 ? a_ : b_) = static_cast<float>(c->scalarAsDouble(0));
      }
    }
    if (node_.opType == "Gelu" && node_.getString("approximate", "none") == "tanh") op_ = UnaryOp::GeluTanh;
  }
  void run(KernelContext& ctx) const override {
    const Tensor& x = *ctx.inputs[0];
    const int64_t n = x.numel();
    if (n == 0) return;
    cudaStream_t s = exec(ctx).stream;
    if (x.dtype == DType::Float16)
      unaryKernel<__half><<<gridFor(n), 256, 0, s>>>(static_cast<const __half*>(in(ctx, 0)), ctx.outputs[0]->ptr<__half>(), n, op_, a_, b_);
    else
      unaryKernel<float><<<gridFor(n), 256, 0, s>>>(static_cast<const float*>(in(ctx, 0)), ctx.outputs[0]->ptr<float>(), n, op_, a_, b_);
  }
  std::string name() const override { return "cuda.unary." + node_.opType; }

 private:
  UnaryOp op_;
  float a_ = 0, b_ = 0;
};

// ---- broadcasting binary ----------------------------------------------------------------------

enum class BinaryOp { Add, Sub, Mul, Div, Pow, Max, Min, Equal, Less, Greater, And, Or };

struct BroadcastIndex {
  int rank = 0;
  int64_t outDims[kMaxRank];
  int64_t strides[3][kMaxRank];  // per operand, 0 on broadcast dims
};

__device__ __forceinline__ void offsets(const BroadcastIndex& bi, int64_t i, int nops, int64_t* off) {
  for (int k = 0; k < nops; ++k) off[k] = 0;
  for (int d = bi.rank - 1; d >= 0; --d) {
    int64_t c = i % bi.outDims[d];
    i /= bi.outDims[d];
    for (int k = 0; k < nops; ++k) off[k] += c * bi.strides[k][d];
  }
}

// pow without --use_fast_math's __powf, which is exp2(b * log2(a)): NaN for every negative base
// (GELU's x^3 in an expanded tanh-GELU) and inexact for whole exponents. Whole exponents up to 64
// multiply by squaring (sign kept); a negative base with a fractional exponent is NaN, as powf's.
__device__ __forceinline__ float powExact(float a, float b) {
  if (b == rintf(b) && fabsf(b) <= 64.f) {
    unsigned n = static_cast<unsigned>(fabsf(b));
    float r = 1.f, x = a;
    while (n != 0) {
      if (n & 1u) r *= x;
      x *= x;
      n >>= 1;
    }
    return b < 0.f ? 1.f / r : r;
  }
  if (a < 0.f) return __int_as_float(0x7fc00000);
  return exp2f(b * log2f(a));
}

__device__ __forceinline__ float applyBinary(BinaryOp op, float a, float b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
    case BinaryOp::Div: return a / b;
    case BinaryOp::Pow: return powExact(a, b);
    case BinaryOp::Max: return fmaxf(a, b);
    case BinaryOp::Min: return fminf(a, b);
    case BinaryOp::Equal: return a == b;
    case BinaryOp::Less: return a < b;
    case BinaryOp::Greater: return a > b;
    case BinaryOp::And: return (a != 0.f) && (b != 0.f);
    case BinaryOp::Or: return (a != 0.f) || (b != 0.f);
  }
  return 0.f;
}

template <class T>
__device__ __forceinline__ int64_t applyBinaryInt(BinaryOp op, int64_t a, int64_t b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
    case BinaryOp::Div: return b == 0 ? 0 : a / b;
    case BinaryOp::Max: return a > b ? a : b;
    case BinaryOp::Min: return a < b ? a : b;
    case BinaryOp::Equal: return a == b;
    case BinaryOp::Less: return a < b;
    case BinaryOp::Greater: return a > b;
    case BinaryOp::And: return a && b;
    case BinaryOp::Or: return a || b;
    default: return 0;
  }
}

template <class T, class R>
__global__ void binaryFloatKernel(const T* a, const T* b, R* y, int64_t n, BinaryOp op, BroadcastIndex bi, bool flat) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[2] = {i, i};
    if (!flat) offsets(bi, i, 2, off);
    store(y, i, applyBinary(op, load(a, off[0]), load(b, off[1])));
  }
}

template <class T, class R>
__global__ void binaryIntKernel(const T* a, const T* b, R* y, int64_t n, BinaryOp op, BroadcastIndex bi, bool flat) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[2] = {i, i};
    if (!flat) offsets(bi, i, 2, off);
    y[i] = static_cast<R>(applyBinaryInt<T>(op, static_cast<int64_t>(a[off[0]]), static_cast<int64_t>(b[off[1]])));
  }
}

BroadcastIndex makeIndex(const Shape& out, const std::vector<const Shape*>& ins) {
  BroadcastIndex bi{};
  bi.rank = static_cast<int>(out.size());
  KILN_CHECK(bi.rank <= kMaxRank, UnsupportedOp, "cuda elementwise ops support rank <= 8");
  for (int d = 0; d < bi.rank; ++d) bi.outDims[d] = out[d];
  for (size_t k = 0; k < ins.size(); ++k) {
    const Shape& s = *ins[k];
    int64_t stride = 1;
    for (int d = bi.rank - 1; d >= 0; --d) {
      int sd = d - (bi.rank - static_cast<int>(s.size()));
      int64_t dim = sd >= 0 ? s[sd] : 1;
      bi.strides[k][d] = dim == 1 ? 0 : stride;
      stride *= dim;
    }
  }
  return bi;
}

class BinaryKernel final : public CudaKernel {
 public:
  BinaryKernel(const KernelCreateInfo& info, BinaryOp op) : CudaKernel(info), op_(op) {
    DType t = inputTypes_.at(0);
    if (!(isFloatType(t) || t == DType::Int64 || t == DType::Int32 || t == DType::Bool))
      unsupported(std::string("input type ") + dtypeName(t));
    // Both operands are read as the first one's type: Pow's mixed types (float base, integer
    // exponent and the reverse) and integer Pow go to the host kernel.
    if (inputTypes_.size() > 1 && inputTypes_[1] != t)
      unsupported(std::string("operands of different types (") + dtypeName(t) + ", " + dtypeName(inputTypes_[1]) + ")");
    if (op_ == BinaryOp::Pow && !isFloatType(t)) unsupported(std::string("Pow on ") + dtypeName(t));
  }
  void run(KernelContext& ctx) const override {
    const Tensor& a = *ctx.inputs[0];
    const Tensor& b = *ctx.inputs[1];
    Tensor& y = *ctx.outputs[0];
    const int64_t n = y.numel();
    if (n == 0) return;
    const bool flat = a.shape == y.shape && b.shape == y.shape;
    BroadcastIndex bi = makeIndex(y.shape, {&a.shape, &b.shape});
    cudaStream_t s = exec(ctx).stream;
    const bool boolOut = y.dtype == DType::Bool;
    const void* pa = in(ctx, 0);
    const void* pb = in(ctx, 1);
    switch (a.dtype) {
      case DType::Float32:
        if (boolOut) binaryFloatKernel<float, bool><<<gridFor(n), 256, 0, s>>>((const float*)pa, (const float*)pb, y.ptr<bool>(), n, op_, bi, flat);
        else binaryFloatKernel<float, float><<<gridFor(n), 256, 0, s>>>((const float*)pa, (const float*)pb, y.ptr<float>(), n, op_, bi, flat);
        break;
      case DType::Float16:
        if (boolOut) binaryFloatKernel<__half, bool><<<gridFor(n), 256, 0, s>>>((const __half*)pa, (const __half*)pb, y.ptr<bool>(), n, op_, bi, flat);
        else binaryFloatKernel<__half, __half><<<gridFor(n), 256, 0, s>>>((const __half*)pa, (const __half*)pb, y.ptr<__half>(), n, op_, bi, flat);
        break;
      case DType::Int64:
        if (boolOut) binaryIntKernel<int64_t, bool><<<gridFor(n), 256, 0, s>>>((const int64_t*)pa, (const int64_t*)pb, y.ptr<bool>(), n, op_, bi, flat);
        else binaryIntKernel<int64_t, int64_t><<<gridFor(n), 256, 0, s>>>((const int64_t*)pa, (const int64_t*)pb, y.ptr<int64_t>(), n, op_, bi, flat);
        break;
      case DType::Int32:
        if (boolOut) binaryIntKernel<int32_t, bool><<<gridFor(n), 256, 0, s>>>((const int32_t*)pa, (const int32_t*)pb, y.ptr<bool>(), n, op_, bi, flat);
        else binaryIntKernel<int32_t, int32_t><<<gridFor(n), 256, 0, s>>>((const int32_t*)pa, (const int32_t*)pb, y.ptr<int32_t>(), n, op_, bi, flat);
        break;
      case DType::Bool:
        binaryIntKernel<bool, bool><<<gridFor(n), 256, 0, s>>>((const bool*)pa, (const bool*)pb, y.ptr<bool>(), n, op_, bi, flat);
        break;
      default:
        unsupported(std::string("input type ") + dtypeName(a.dtype));
    }
  }
  std::string name() const override { return "cuda.binary." + node_.opType; }

 private:
  BinaryOp op_;
};

// ---- Where ------------------------------------------------------------------------------------

template <class T>
__global__ void whereKernel(const bool* c, const T* x, const T* y, T* out, int64_t n, BroadcastIndex bi) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[3];
    offsets(bi, i, 3, off);
    out[i] = c[off[0]] ? x[off[1]] : y[off[2]];
  }
}

class WhereKernel final : public CudaKernel {
 public:
  explicit WhereKernel(const KernelCreateInfo& info) : CudaKernel(info) {}
  void run(KernelContext& ctx) const override {
    Tensor& y = *ctx.outputs[0];
    const int64_t n = y.numel();
    if (n == 0) return;
    BroadcastIndex bi = makeIndex(y.shape, {&ctx.inputs[0]->shape, &ctx.inputs[1]->shape, &ctx.inputs[2]->shape});
    cudaStream_t s = exec(ctx).stream;
    const bool* c = static_cast<const bool*>(in(ctx, 0));
    switch (dtypeSize(y.dtype)) {
      case 1: whereKernel<uint8_t><<<gridFor(n), 256, 0, s>>>(c, (const uint8_t*)in(ctx, 1), (const uint8_t*)in(ctx, 2), y.ptr<uint8_t>(), n, bi); break;
      case 2: whereKernel<uint16_t><<<gridFor(n), 256, 0, s>>>(c, (const uint16_t*)in(ctx, 1), (const uint16_t*)in(ctx, 2), y.ptr<uint16_t>(), n, bi); break;
      case 4: whereKernel<uint32_t><<<gridFor(n), 256, 0, s>>>(c, (const uint32_t*)in(ctx, 1), (const uint32_t*)in(ctx, 2), y.ptr<uint32_t>(), n, bi); break;
      case 8: whereKernel<uint64_t><<<gridFor(n), 256, 0, s>>>(c, (const uint64_t*)in(ctx, 1), (const uint64_t*)in(ctx, 2), y.ptr<uint64_t>(), n, bi); break;
      default: unsupported(std::string("type ") + dtypeName(y.dtype));
    }
  }
  std::string name() const override { return "cuda.where"; }
};

// ---- Cast -------------------------------------------------------------------------------------

template <class S, class D>
__global__ void castKernel(const S* x, D* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = static_cast<D>(x[i]);
}
template <class D>
__global__ void castFromHalf(const __half* x, D* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = static_cast<D>(__half2float(x[i]));
}
template <class S>
__global__ void castToHalf(const S* x, __half* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = __float2half(static_cast<float>(x[i]));
}

template <class S>
void castFrom(const S* x, void* y, DType to, int64_t n, cudaStream_t s) {
  switch (to) {
    case DType::Float32: castKernel<S, float><<<gridFor(n), 256, 0, s>>>(x, (float*)y, n); break;
    case DType::Float16: castToHalf<S><<<gridFor(n), 256, 0, s>>>(x, (__half*)y, n); break;
    case DType::Int64: castKernel<S, int64_t><<<gridFor(n), 256, 0, s>>>(x, (int64_t*)y, n); break;
    case DType::Int32: castKernel<S, int32_t><<<gridFor(n), 256, 0, s>>>(x, (int32_t*)y, n); break;
    case DType::Bool: castKernel<S, bool><<<gridFor(n), 256, 0, s>>>(x, (bool*)y, n); break;
    case DType::UInt8: castKernel<S, uint8_t><<<gridFor(n), 256, 0, s>>>(x, (uint8_t*)y, n); break;
    case DType::Int8: castKernel<S, int8_t><<<gridFor(n), 256, 0, s>>>(x, (int8_t*)y, n); break;
    default: fail(ErrorCode::UnsupportedOp, std::string("cuda Cast to ") + dtypeName(to));
  }
}

void castFromHalfTo(const __half* x, void* y, DType to, int64_t n, cudaStream_t s) {
  switch (to) {
    case DType::Float32: castFromHalf<float><<<gridFor(n), 256, 0, s>>>(x, (float*)y, n); break;
    case DType::Int64: castFromHalf<int64_t><<<gridFor(n), 256, 0, s>>>(x, (int64_t*)y, n); break;
    case DType::Int32: castFromHalf<int32_t><<<gridFor(n), 256, 0, s>>>(x, (int32_t*)y, n); break;
    case DType::Bool: castFromHalf<bool><<<gridFor(n), 256, 0, s>>>(x, (bool*)y, n); break;
    default: fail(ErrorCode::UnsupportedOp, std::string("cuda Cast from float16 to ") + dtypeName(to));
  }
}

class CastKernel final : public CudaKernel {
 public:
  // The conversions below, checked at creation so that others (float64, bfloat16, ...) become host
  // layers rather than failing at the first run.
  explicit CastKernel(const KernelCreateInfo& info) : CudaKernel(info) {
    const DType from = inputTypes_.at(0), to = outputTypes_.at(0);
    if (from == to) return;
    auto converts = [](DType t) {
      return t == DType::Float32 || t == DType::Float16 || t == DType::Int64 || t == DType::Int32 || t == DType::Bool ||
             t == DType::UInt8 || t == DType::Int8;
    };
    if (!converts(from)) unsupported(std::string("Cast from ") + dtypeName(from));
    if (!converts(to)) unsupported(std::string("Cast to ") + dtypeName(to));
    if (from == DType::Float16 && (to == DType::UInt8 || to == DType::Int8))
      unsupported(std::string("Cast from float16 to ") + dtypeName(to));
  }
  void run(KernelContext& ctx) const override {
    const Tensor& x = *ctx.inputs[0];
    Tensor& y = *ctx.outputs[0];
    const int64_t n = x.numel();
    if (n == 0) return;
    cudaStream_t s = exec(ctx).stream;
    const void* p = in(ctx, 0);
    if (x.dtype == y.dtype) {
      KILN_CUDA_CHECK(cudaMemcpyAsync(y.data, p, x.byteSize(), cudaMemcpyDeviceToDevice, s));
      return;
    }
    switch (x.dtype) {
      case DType::Float32: castFrom((const float*)p, y.data, y.dtype, n, s); break;
      case DType::Float16: castFromHalfTo((const __half*)p, y.data, y.dtype, n, s); break;
      case DType::Int64: castFrom((const int64_t*)p, y.data, y.dtype, n, s); break;
      case DType::Int32: castFrom((const int32_t*)p, y.data, y.dtype, n, s); break;
      case DType::Bool: castFrom((const bool*)p, y.data, y.dtype, n, s); break;
      case DType::UInt8: castFrom((const uint8_t*)p, y.data, y.dtype, n, s); break;
      case DType::Int8: castFrom((const int8_t*)p, y.data, y.dtype, n, s); break;
      default: unsupported(std::string("Cast from ") + dtypeName(x.dtype));
    }
  }
  std::string name() const override { return "cuda.cast"; }
};

// ---- views ------------------------------------------------------------------------------------

class CopyKernel final : public CudaKernel {
 public:
  explicit CopyKernel(const KernelCreateInfo& info) : CudaKernel(info) {}
  void run(KernelContext& ctx) const override {
    Tensor& y = *ctx.outputs[0];
    const void* src = in(ctx, 0);
    if (y.byteSize() > 0 && y.data != src)
      KILN_CUDA_CHECK(cudaMemcpyAsync(y.data, src, y.byteSize(), cudaMemcpyDeviceToDevice, exec(ctx).stream));
  }
  std::string name() const override { return "cuda.view_copy"; }
};

template <UnaryOp Op>
std::unique_ptr<Kernel> makeUnary(const KernelCreateInfo& info) { return std::make_unique<UnaryKernel>(info, Op); }
template <BinaryOp Op>
std::unique_ptr<Kernel> makeBinary(const KernelCreateInfo& info) { return std::make_unique<BinaryKernel>(info, Op); }
template <class K>
std::unique_ptr<Kernel> make(const KernelCreateInfo& info) { return std::make_unique<K>(info); }

std::unique_ptr<Kernel> makeKilnGelu(const KernelCreateInfo& info) {
  return std::make_unique<UnaryKernel>(info, info.node.getString("approximate", "none") == "tanh" ? UnaryOp::GeluTanh : UnaryOp::Gelu);
}

}  // namespace

KILN_REGISTER_KERNEL(CudaRelu, (KernelDef{"cuda", "", "Relu", 1, makeUnary<UnaryOp::Relu>}));
KILN_REGISTER_KERNEL(CudaSigmoid, (KernelDef{"cuda", "", "Sigmoid", 1, makeUnary<UnaryOp::Sigmoid>}));
KILN_REGISTER_KERNEL(CudaTanh, (KernelDef{"cuda", "", "Tanh", 1, makeUnary<UnaryOp::Tanh>}));
KILN_REGISTER_KERNEL(CudaErf, (KernelDef{"cuda", "", "Erf", 9, makeUnary<UnaryOp::Erf>}));
KILN_REGISTER_KERNEL(CudaExp, (KernelDef{"cuda", "", "Exp", 1, makeUnary<UnaryOp::Exp>}));
KILN_REGISTER_KERNEL(CudaLog, (KernelDef{"cuda", "", "Log", 1, makeUnary<UnaryOp::Log>}));
KILN_REGISTER_KERNEL(CudaSqrt, (KernelDef{"cuda", "", "Sqrt", 1, makeUnary<UnaryOp::Sqrt>}));
KILN_REGISTER_KERNEL(CudaNeg, (KernelDef{"cuda", "", "Neg", 1, makeUnary<UnaryOp::Neg>}));
KILN_REGISTER_KERNEL(CudaAbs, (KernelDef{"cuda", "", "Abs", 1, makeUnary<UnaryOp::Abs>}));
KILN_REGISTER_KERNEL(CudaReciprocal, (KernelDef{"cuda", "", "Reciprocal", 1, makeUnary<UnaryOp::Reciprocal>}));
KILN_REGISTER_KERNEL(CudaLeakyRelu, (KernelDef{"cuda", "", "LeakyRelu", 1, makeUnary<UnaryOp::LeakyRelu>}));
KILN_REGISTER_KERNEL(CudaClip, (KernelDef{"cuda", "", "Clip", 1, makeUnary<UnaryOp::Clip>}));
KILN_REGISTER_KERNEL(CudaHardSigmoid, (KernelDef{"cuda", "", "HardSigmoid", 1, makeUnary<UnaryOp::HardSigmoid>}));
KILN_REGISTER_KERNEL(CudaHardSwish, (KernelDef{"cuda", "", "HardSwish", 14, makeUnary<UnaryOp::HardSwish>}));
KILN_REGISTER_KERNEL(CudaGelu20, (KernelDef{"cuda", "", "Gelu", 20, makeUnary<UnaryOp::Gelu>}));
KILN_REGISTER_KERNEL(CudaKilnGelu, (KernelDef{"cuda", "kiln", "Gelu", 1, makeKilnGelu}));
KILN_REGISTER_KERNEL(CudaAdd, (KernelDef{"cuda", "", "Add", 7, makeBinary<BinaryOp::Add>}));
KILN_REGISTER_KERNEL(CudaSub, (KernelDef{"cuda", "", "Sub", 7, makeBinary<BinaryOp::Sub>}));
KILN_REGISTER_KERNEL(CudaMul, (KernelDef{"cuda", "", "Mul", 7, makeBinary<BinaryOp::Mul>}));
KILN_REGISTER_KERNEL(CudaDiv, (KernelDef{"cuda", "", "Div", 7, makeBinary<BinaryOp::Div>}));
KILN_REGISTER_KERNEL(CudaPow, (KernelDef{"cuda", "", "Pow", 7, makeBinary<BinaryOp::Pow>}));
KILN_REGISTER_KERNEL(CudaEqual, (KernelDef{"cuda", "", "Equal", 7, makeBinary<BinaryOp::Equal>}));
KILN_REGISTER_KERNEL(CudaLess, (KernelDef{"cuda", "", "Less", 7, makeBinary<BinaryOp::Less>}));
KILN_REGISTER_KERNEL(CudaGreater, (KernelDef{"cuda", "", "Greater", 7, makeBinary<BinaryOp::Greater>}));
KILN_REGISTER_KERNEL(CudaAnd, (KernelDef{"cuda", "", "And", 7, makeBinary<BinaryOp::And>}));
KILN_REGISTER_KERNEL(CudaOr, (KernelDef{"cuda", "", "Or", 7, makeBinary<BinaryOp::Or>}));
KILN_REGISTER_KERNEL(CudaWhere, (KernelDef{"cuda", "", "Where", 9, make<WhereKernel>}));
KILN_REGISTER_KERNEL(CudaCast, (KernelDef{"cuda", "", "Cast", 6, make<CastKernel>}));
KILN_REGISTER_KERNEL(CudaReshape, (KernelDef{"cuda", "", "Reshape", 5, make<CopyKernel>}));
KILN_REGISTER_KERNEL(CudaFlatten, (KernelDef{"cuda", "", "Flatten", 1, make<CopyKernel>}));
KILN_REGISTER_KERNEL(CudaSqueeze, (KernelDef{"cuda", "", "Squeeze", 1, make<CopyKernel>}));
KILN_REGISTER_KERNEL(CudaUnsqueeze, (KernelDef{"cuda", "", "Unsqueeze", 1, make<CopyKernel>}));
KILN_REGISTER_KERNEL(CudaIdentity, (KernelDef{"cuda", "", "Identity", 1, make<CopyKernel>}));

}  // namespace kiln::cuda
