// CPU kernels of Constant, ConstantOfShape, Range and EyeLike.
#include <algorithm>

#include "backends/cpu/ops/tensor_copy.h"
#include "backends/cpu/ops/tensor_numeric.h"
#include "ops/tensor_generate.h"
#include "ops/tensor_util.h"

namespace kiln::cpu {

namespace {

std::unique_ptr<Kernel> createConstantKernel(const KernelCreateInfo& info) {
  std::shared_ptr<Tensor> value = constantNodeValue(info.node);
  return makeKernel("constant", [value](KernelContext& ctx) {
    Tensor& out = needOutput(ctx, 0);
    KILN_CHECK(out.shape == value->shape && out.dtype == value->dtype, Internal,
               describeNode(ctx.node) + ": output allocated as " + shapeToString(out.shape));
    copyTensor(*value, out, threadsOf(ctx));
  });
}

std::unique_ptr<Kernel> createConstantOfShapeKernel(const KernelCreateInfo& info) {
  std::shared_ptr<Tensor> value;
  auto it = info.node.attrs.find("value");
  if (it != info.node.attrs.end() && it->second.t) {
    value = it->second.t;
    if (value->numel() != 1) nodeFail(info.node, ErrorCode::InvalidModel, "value must be a one-element tensor");
  } else {
    value = std::make_shared<Tensor>(Tensor::allocate(DType::Float32, {}));  // 0.0f
  }
  return makeKernel("constant_of_shape", [value](KernelContext& ctx) {
    Tensor& out = needOutput(ctx, 0);
    KILN_CHECK(out.dtype == value->dtype, Internal, describeNode(ctx.node) + ": output has the wrong type");
    fillElements(out.dtype, out.data, 0, out.numel(), value->data, 0);
  });
}

std::unique_ptr<Kernel> createRangeKernel(const KernelCreateInfo& info) {
  return makeKernel("range", [](KernelContext& ctx) {
    const Tensor& start = needInput(ctx, 0, "start");
    const Tensor& limit = needInput(ctx, 1, "limit");
    const Tensor& delta = needInput(ctx, 2, "delta");
    Tensor& out = needOutput(ctx, 0);
    if (start.numel() != 1 || limit.numel() != 1 || delta.numel() != 1) {
      nodeFail(ctx.node, ErrorCode::InvalidArgument, "start, limit and delta must be scalars");
    }
    const int64_t n = rangeCount(ctx.node, start.scalarAsDouble(0), limit.scalarAsDouble(0), delta.scalarAsDouble(0));
    KILN_CHECK(out.numel() == n, Internal, describeNode(ctx.node) + ": output allocated as " + shapeToString(out.shape));
    visitNumeric(out.dtype, describeNode(ctx.node), [&](auto num) {
      using N = decltype(num);
      using S = typename N::Storage;
      using C = typename N::Compute;
      // Each element is start + i * delta (no accumulated rounding): in the compute type for
      // floats, in wrapping 64-bit arithmetic for integers (i itself may not fit the element
      // type; the result always does, being between start and limit).
      const C s = N::load(start.ptr<S>()[0]), d = N::load(delta.ptr<S>()[0]);
      S* o = out.ptr<S>();
      if constexpr (std::is_integral<C>::value) {
        const uint64_t us = (uint64_t)(int64_t)s, ud = (uint64_t)(int64_t)d;
        for (int64_t i = 0; i < n; i++) o[i] = N::store((C)(us + (uint64_t)i * ud));
      } else {
        for (int64_t i = 0; i < n; i++) o[i] = N::store((C)(s + (C)i * d));
      }
    });
  });
}

std::unique_ptr<Kernel> createEyeLikeKernel(const KernelCreateInfo& info) {
  const int64_t k = info.node.getInt("k", 0);
  return makeKernel("eye_like", [k](KernelContext& ctx) {
    const Tensor& in = needInput(ctx, 0, "input");
    Tensor& out = needOutput(ctx, 0);
    if (in.shape.size() != 2) nodeFail(ctx.node, ErrorCode::ShapeMismatch, "input must be 2-D, got " + shapeToString(in.shape));
    fillZero(out.dtype, out.data, 0, out.numel());
    const int64_t rows = out.shape[0], cols = out.shape[1];
    for (int64_t i = 0; i < rows; i++) {
      // Bounds in 64 bits: k may be anything.
      if (k >= cols - i || k < -i) continue;
      storeDouble(out, i * cols + i + k, 1.0);
    }
  });
}

}  // namespace

KILN_REGISTER_KERNEL(Constant, (KernelDef{"cpu", "", "Constant", 1, createConstantKernel}));
KILN_REGISTER_KERNEL(ConstantOfShape, (KernelDef{"cpu", "", "ConstantOfShape", 9, createConstantOfShapeKernel}));
KILN_REGISTER_KERNEL(Range, (KernelDef{"cpu", "", "Range", 11, createRangeKernel}));
KILN_REGISTER_KERNEL(EyeLike, (KernelDef{"cpu", "", "EyeLike", 9, createEyeLikeKernel}));

}  // namespace kiln::cpu
