// The CPU kernel template for unary elementwise ops (math in elementwise.cc, activations in
// activation.cc). An op is a small functor:
//
//   struct SqrtOp {
//     static constexpr uint32_t kTypes = kFloats;    // dtypes the op accepts (TypeBits)
//     static constexpr bool kArray = false;          // true: has array(x, y, n) for float32
//     template <class C> C operator()(C x) const;    // one element in its compute type
//   };
//
// Ops with attributes also have a constructor taking the KernelCreateInfo. float32 runs the
// array function (AVX2 via vec_math.h) or the scalar loop, which the compiler vectorizes for the
// simple ops; float16/bfloat16 convert blocks to float32 and reuse the float32 path; other types use
// the scalar loop in their own type. Large tensors are split across the thread pool.
#pragma once
#include <memory>
#include <type_traits>

#include "backends/cpu/ops/elementwise_util.h"
#include "backends/cpu/vec_math.h"

namespace kiln::cpu {

template <class Op>
void unaryFloat32(const Op& op, const float* x, float* y, int64_t n) {
  if constexpr (Op::kArray) {
    op.array(x, y, n);
  } else {
    for (int64_t i = 0; i < n; i++) y[i] = op(x[i]);
  }
}

// y = op(x) for n elements of storage type S.
template <class S, class Op>
void unaryRange(const Op& op, const S* x, S* y, int64_t n) {
  if constexpr (std::is_same_v<S, float>) {
    unaryFloat32(op, x, y, n);
  } else if constexpr (std::is_same_v<S, f16> || std::is_same_v<S, bf16>) {
    constexpr int64_t kBlock = 512;
    float buf[kBlock];
    for (int64_t b = 0; b < n; b += kBlock) {
      int64_t m = n - b < kBlock ? n - b : kBlock;
      if constexpr (std::is_same_v<S, f16>) {
        halfToFloatArray(reinterpret_cast<const uint16_t*>(x + b), buf, m);
      } else {
        for (int64_t i = 0; i < m; i++) buf[i] = Num<S>::load(x[b + i]);
      }
      unaryFloat32(op, buf, buf, m);
      if constexpr (std::is_same_v<S, f16>) {
        floatToHalfArray(buf, reinterpret_cast<uint16_t*>(y + b), m);
      } else {
        for (int64_t i = 0; i < m; i++) y[b + i] = Num<S>::store(buf[i]);
      }
    }
  } else {
    for (int64_t i = 0; i < n; i++) y[i] = Num<S>::store(op(Num<S>::load(x[i])));
  }
}

template <class Op>
class UnaryKernel final : public Kernel {
 public:
  UnaryKernel(const KernelCreateInfo& info, Op op) : info_(info), op_(std::move(op)) {}

  void run(KernelContext& ctx) const override {
    const Tensor& x = requireInput(ctx, info_, 0);
    Tensor& y = requireOutput(ctx, info_, 0, x.shape);
    if (y.dtype != x.dtype) info_.invalid(std::string("output type ") + dtypeName(y.dtype) + " differs from input " + dtypeName(x.dtype));
    const int64_t n = x.numel();
    dispatch<Op::kTypes>(x.dtype, info_, [&](auto tag) {
      using S = typename decltype(tag)::type;
      const S* in = x.ptr<S>();
      S* out = y.ptr<S>();
      if (n <= kGrain) {
        unaryRange(op_, in, out, n);
      } else {
        poolOf(ctx).parallelFor(n, kGrain, [&](int64_t b, int64_t e) { unaryRange(op_, in + b, out + b, e - b); });
      }
    });
  }
  std::string name() const override { return "elementwise." + info_.op; }

 private:
  OpInfo info_;
  Op op_;
};

// Factory for KernelDef: validates the input dtype now so unsupported types fail at build time.
template <class Op>
std::unique_ptr<Kernel> makeUnaryKernel(const KernelCreateInfo& info) {
  OpInfo op(info);
  if (inputType(info, 0) != DType::Undefined) op.require(Op::kTypes, inputType(info, 0));
  if constexpr (std::is_constructible_v<Op, const KernelCreateInfo&>) {
    return std::make_unique<UnaryKernel<Op>>(info, Op(info));
  } else {
    return std::make_unique<UnaryKernel<Op>>(info, Op());
  }
}

}  // namespace kiln::cpu
