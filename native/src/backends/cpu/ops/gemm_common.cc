#include "backends/cpu/ops/gemm_common.h"

#include <atomic>
#include <cstring>
#include <limits>

namespace kiln::cpu::nn {

const Tensor& requiredInput(const KernelContext& ctx, size_t i, const char* what) {
  if (i >= ctx.inputs.size() || ctx.inputs[i] == nullptr || (ctx.inputs[i]->data == nullptr && ctx.inputs[i]->numel() > 0)) {
    failAt(ctx.node, ErrorCode::InvalidModel, std::string("input ") + what + " is required");
  }
  return *ctx.inputs[i];
}

const Tensor* optionalInput(const KernelContext& ctx, size_t i) {
  if (i >= ctx.inputs.size() || ctx.inputs[i] == nullptr) return nullptr;
  if (ctx.inputs[i]->data == nullptr && ctx.inputs[i]->numel() > 0) return nullptr;
  return ctx.inputs[i];
}

const Tensor* inputShapeOf(const KernelContext& ctx, size_t i) {
  return i < ctx.inputs.size() ? ctx.inputs[i] : nullptr;
}

Tensor* optionalOutput(KernelContext& ctx, size_t i, DType dtype, const Shape& shape) {
  if (i >= ctx.outputs.size() || ctx.outputs[i] == nullptr) return nullptr;
  Tensor& t = *ctx.outputs[i];
  if (t.data == nullptr) {
    // A runtime may leave allocation to the kernel (allocateOutput) for outputs it could not size.
    return &ctx.allocateOutput(i, dtype, shape);
  }
  if (t.dtype != dtype || t.shape != shape) {
    failAt(ctx.node, ErrorCode::Internal, "output " + std::to_string(i) + " was allocated as " + dtypeName(t.dtype) +
                                                shapeToString(t.shape) + " but the kernel computes " + dtypeName(dtype) +
                                                shapeToString(shape));
  }
  return &t;
}

Tensor& requiredOutput(KernelContext& ctx, size_t i, DType dtype, const Shape& shape) {
  Tensor* t = optionalOutput(ctx, i, dtype, shape);
  if (!t) failAt(ctx.node, ErrorCode::Internal, "output " + std::to_string(i) + " is missing");
  return *t;
}

ActivationSpec readActivation(const Node& node) {
  ActivationSpec a;
  a.kind = parseActivation(node.getString("activation", ""));
  std::vector<float> params = node.getFloats("activation_params", {});
  auto param = [&](size_t i, float fallback) { return i < params.size() ? params[i] : fallback; };
  switch (a.kind) {
    case Activation::LeakyRelu:
      a.alpha = param(0, 0.01f);
      break;
    case Activation::Clip:
      a.alpha = param(0, -std::numeric_limits<float>::infinity());
      a.beta = param(1, std::numeric_limits<float>::infinity());
      break;
    case Activation::HardSigmoid:
      a.alpha = param(0, 0.2f);
      a.beta = param(1, 0.5f);
      break;
    case Activation::None:
    case Activation::Relu:
    case Activation::Sigmoid:
    case Activation::Tanh:
    case Activation::HardSwish:
    case Activation::Gelu:
    case Activation::GeluTanh:
    case Activation::Silu:
      break;
  }
  return a;
}

bool isComputeFloat(DType t) {
  return t == DType::Float32 || t == DType::Float16 || t == DType::BFloat16 || t == DType::Float64;
}

void requireComputeFloat(const Node& node, DType t, const char* what) {
  if (!isComputeFloat(t)) {
    failAt(node, ErrorCode::UnsupportedOp, std::string(what) + " of type " + dtypeName(t) +
                                                 " is not supported (float32, float16, bfloat16, float64 are)");
  }
}

void loadFloats(const void* src, DType t, float* dst, int64_t n) {
  switch (t) {
    case DType::Float32:
      std::memcpy(dst, src, size_t(n) * sizeof(float));
      return;
    case DType::Float16:
      for (int64_t i = 0; i < n; i++) dst[i] = halfToFloat(static_cast<const uint16_t*>(src)[i]);
      return;
    case DType::BFloat16:
      for (int64_t i = 0; i < n; i++) dst[i] = bfloat16ToFloat(static_cast<const uint16_t*>(src)[i]);
      return;
    case DType::Float64:
      for (int64_t i = 0; i < n; i++) dst[i] = float(static_cast<const double*>(src)[i]);
      return;
    default:
      fail(ErrorCode::Internal, std::string("loadFloats: not a floating type: ") + dtypeName(t));
  }
}

void storeFloats(const float* src, DType t, void* dst, int64_t n) {
  switch (t) {
    case DType::Float32:
      std::memcpy(dst, src, size_t(n) * sizeof(float));
      return;
    case DType::Float16:
      for (int64_t i = 0; i < n; i++) static_cast<uint16_t*>(dst)[i] = floatToHalf(src[i]);
      return;
    case DType::BFloat16:
      for (int64_t i = 0; i < n; i++) static_cast<uint16_t*>(dst)[i] = floatToBfloat16(src[i]);
      return;
    case DType::Float64:
      for (int64_t i = 0; i < n; i++) static_cast<double*>(dst)[i] = src[i];
      return;
    default:
      fail(ErrorCode::Internal, std::string("storeFloats: not a floating type: ") + dtypeName(t));
  }
}

FloatView::FloatView(const Tensor& t) {
  if (t.dtype == DType::Float32) {
    data_ = t.ptr<float>();
    return;
  }
  copy_.resize(size_t(t.numel()));
  loadFloats(t.data, t.dtype, copy_.data(), t.numel());
  data_ = copy_.data();
}

FloatSink::FloatSink(Tensor& t) : out_(t) {
  if (t.dtype == DType::Float32) {
    data_ = t.ptr<float>();
  } else {
    buffer_.resize(size_t(t.numel()));
    data_ = buffer_.data();
  }
}

void FloatSink::commit() {
  if (out_.dtype != DType::Float32) storeFloats(buffer_.data(), out_.dtype, out_.data, out_.numel());
}

void parallelForSlots(ThreadPool* pool, int64_t tasks, int slots, const std::function<void(int64_t, int)>& fn) {
  if (tasks <= 0) return;
  if (!pool || slots <= 1 || tasks == 1) {
    for (int64_t t = 0; t < tasks; t++) fn(t, 0);
    return;
  }
  // Each slot index is one parallelFor item; workers inside a slot pull tasks from a shared counter,
  // so uneven tasks still balance.
  std::atomic<int64_t> next{0};
  pool->parallelFor(slots, 1, [&](int64_t begin, int64_t end) {
    for (int64_t slot = begin; slot < end; slot++) {
      for (int64_t t = next.fetch_add(1); t < tasks; t = next.fetch_add(1)) fn(t, int(slot));
    }
  });
}

}  // namespace kiln::cpu::nn
