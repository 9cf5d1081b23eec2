// CPU kernels of the binary arithmetic ops (Add Sub Mul Div Mod Pow) and the variadic Sum, Mean,
// Max, Min. Integer arithmetic wraps like numpy and never traps: division or modulo by zero gives 0
// and INT_MIN / -1 wraps. Schemas: ops/elementwise.cc.
#include <cmath>
#include <memory>
#include <type_traits>

#include "backends/cpu/ops/elementwise_avx2.h"
#include "backends/cpu/ops/elementwise_binary.h"
#include "backends/cpu/vec_math.h"

namespace kiln::cpu {
namespace {

template <class T>
constexpr bool kSignedInt = std::is_integral_v<T> && std::is_signed_v<T> && !std::is_same_v<T, bool>;

// Ops with an AVX2 float32 loop name it in kAvx2 (elementwise_avx2.h).
struct AddOp {
  static constexpr uint32_t kTypes = kNumeric;
  static constexpr avx2::BinaryF32 kAvx2 = avx2::BinaryF32::Add;
  template <class C>
  C operator()(C a, C b) const { return wrapping(a, b, [](auto x, auto y) { return x + y; }); }
};
struct SubOp {
  static constexpr uint32_t kTypes = kNumeric;
  static constexpr avx2::BinaryF32 kAvx2 = avx2::BinaryF32::Sub;
  template <class C>
  C operator()(C a, C b) const { return wrapping(a, b, [](auto x, auto y) { return x - y; }); }
};
struct MulOp {
  static constexpr uint32_t kTypes = kNumeric;
  static constexpr avx2::BinaryF32 kAvx2 = avx2::BinaryF32::Mul;
  template <class C>
  C operator()(C a, C b) const { return wrapping(a, b, [](auto x, auto y) { return x * y; }); }
};
struct DivOp {
  static constexpr uint32_t kTypes = kNumeric;
  static constexpr avx2::BinaryF32 kAvx2 = avx2::BinaryF32::Div;
  template <class C>
  C operator()(C a, C b) const {
    if constexpr (std::is_floating_point_v<C>) {
      return a / b;
    } else {
      if (b == 0) return 0;
      if constexpr (kSignedInt<C>) {
        if (b == -1) return wrapping(C(0), a, [](auto x, auto y) { return x - y; });
      }
      return static_cast<C>(a / b);  // truncates toward zero, as ONNX integer Div does
    }
  }
};

// Mod: fmod=1 is C's truncated remainder (sign of the dividend); fmod=0 is Python's (sign of the
// divisor).
struct ModOp {
  static constexpr uint32_t kTypes = kNumeric;
  bool fmod = false;
  explicit ModOp(const KernelCreateInfo& info) : fmod(info.node.getInt("fmod", 0) != 0) {}
  template <class C>
  C operator()(C a, C b) const {
    if constexpr (std::is_floating_point_v<C>) {
      C r = std::fmod(a, b);
      if (!fmod && r != 0 && ((r < 0) != (b < 0))) r += b;
      return r;
    } else {
      if (b == 0) return 0;
      if constexpr (kSignedInt<C>) {
        if (b == -1) return 0;
      }
      C r = static_cast<C>(a % b);
      if constexpr (kSignedInt<C>) {
        if (!fmod && r != 0 && ((r < 0) != (b < 0))) r = static_cast<C>(r + b);
      }
      return r;
    }
  }
};

template <class Op, class = void>
struct HasAvx2 : std::false_type {};
template <class Op>
struct HasAvx2<Op, std::void_t<decltype(Op::kAvx2)>> : std::true_type {};

// o = a op b; float32 takes the AVX2 loop when the op has one and the CPU supports it.
template <class Op, class S>
void binaryOp(const Op& op, const Broadcast& bc, const S* a, const S* b, S* o, ThreadPool& pool) {
  if constexpr (std::is_same_v<S, float> && HasAvx2<Op>::value) {
#if defined(__x86_64__) || defined(__i386__)
    if (cpuHasAvx2()) {
      const int64_t sa = bc.innerStride(0), sb = bc.innerStride(1);
      parallelRuns(bc, pool, [&](int64_t out, const int64_t* in, int64_t n) {
        avx2::binaryF32(Op::kAvx2, a + in[0], sa, b + in[1], sb, o + out, n);
      });
      return;
    }
#endif
  }
  binaryLoop(bc, a, b, o, op, pool);
}

template <class Op>
class BinaryKernel final : public Kernel {
 public:
  BinaryKernel(const KernelCreateInfo& info, Op op) : info_(info), op_(std::move(op)) {}

  void run(KernelContext& ctx) const override {
    const Tensor& a = requireInput(ctx, info_, 0);
    const Tensor& b = requireInput(ctx, info_, 1);
    if (a.dtype != b.dtype) info_.invalid(std::string("operand types differ: ") + dtypeName(a.dtype) + " and " + dtypeName(b.dtype));
    BinaryPlan p = planBinary(ctx, info_, a, b);
    dispatch<Op::kTypes>(a.dtype, info_, [&](auto tag) {
      using S = typename decltype(tag)::type;
      binaryOp(op_, p.bc, a.ptr<S>(), b.ptr<S>(), p.out->ptr<S>(), poolOf(ctx));
    });
  }
  std::string name() const override { return "elementwise." + info_.op; }

 private:
  OpInfo info_;
  Op op_;
};

template <class Op>
std::unique_ptr<Kernel> makeBinary(const KernelCreateInfo& info) {
  OpInfo op(info);
  for (size_t i = 0; i < 2 && i < info.inputTypes.size(); i++) {
    if (info.inputTypes[i] != DType::Undefined) op.require(Op::kTypes, info.inputTypes[i]);
  }
  if constexpr (std::is_constructible_v<Op, const KernelCreateInfo&>) {
    return std::make_unique<BinaryKernel<Op>>(info, Op(info));
  } else {
    return std::make_unique<BinaryKernel<Op>>(info, Op());
  }
}

// ---- Pow ------------------------------------------------------------------------------------------

// Integer power by squaring, wrapping on overflow; negative exponents give 0 except for bases 1/-1.
template <class T, class E>
T intPow(T base, E exp) {
  if constexpr (std::is_signed_v<E>) {
    if (exp < 0) {
      if (base == 1) return 1;
      if constexpr (std::is_signed_v<T>) {
        if (base == -1) return (exp % 2 == 0) ? 1 : -1;
      }
      return 0;
    }
  }
  using U = WrapT<T>;
  U result = 1, b = static_cast<U>(base);
  uint64_t e = static_cast<uint64_t>(exp);
  while (e) {
    if (e & 1) result = static_cast<U>(result * b);
    b = static_cast<U>(b * b);
    e >>= 1;
  }
  return static_cast<T>(result);
}

// Pow(X, Y): the result has X's type. Float bases use std::pow; integer bases with integer
// exponents use exact integer arithmetic; integer bases with float exponents round toward zero.
struct PowOp {
  template <class A, class B>
  A operator()(A a, B b) const {
    if constexpr (std::is_floating_point_v<A>) {
      if constexpr (std::is_same_v<A, float> && std::is_same_v<B, float>) {
        return std::pow(a, b);
      } else {
        return static_cast<A>(std::pow(static_cast<double>(a), static_cast<double>(b)));
      }
    } else if constexpr (std::is_floating_point_v<B>) {
      return saturateCast<A>(std::pow(static_cast<double>(a), static_cast<double>(b)));
    } else {
      return intPow(a, b);
    }
  }
};

constexpr uint32_t kPowBase = kF32 | kF64 | kF16 | kBF16 | kI32 | kI64;
constexpr uint32_t kPowExponent = kNumeric;

class PowKernel final : public Kernel {
 public:
  explicit PowKernel(const KernelCreateInfo& info) : info_(info) {
    if (inputType(info, 0) != DType::Undefined) info_.require(kPowBase, inputType(info, 0), "X");
    if (inputType(info, 1) != DType::Undefined) info_.require(kPowExponent, inputType(info, 1), "Y");
  }

  void run(KernelContext& ctx) const override {
    const Tensor& a = requireInput(ctx, info_, 0);
    const Tensor& b = requireInput(ctx, info_, 1);
    BinaryPlan p = planBinary(ctx, info_, a, b);
    // x^2 (variance in decomposed LayerNorm) is exact as x*x and much cheaper than powf.
    if (a.dtype == DType::Float32 && b.dtype == DType::Float32 && b.numel() == 1 && b.ptr<float>()[0] == 2.0f) {
      binaryLoop(p.bc, a.ptr<float>(), b.ptr<float>(), p.out->ptr<float>(), [](float x, float) { return x * x; },
                 poolOf(ctx));
      return;
    }
    dispatch<kPowBase>(a.dtype, info_, [&](auto ta) {
      using SA = typename decltype(ta)::type;
      dispatch<kPowExponent>(b.dtype, info_, [&](auto tb) {
        using SB = typename decltype(tb)::type;
        binaryLoop(p.bc, a.ptr<SA>(), b.ptr<SB>(), p.out->ptr<SA>(), PowOp{}, poolOf(ctx));
      });
    });
  }
  std::string name() const override { return "elementwise.Pow"; }

 private:
  OpInfo info_;
};

// ---- Sum, Mean, Max, Min -------------------------------------------------------------------------

// Max/Min propagate NaN like numpy's maximum/minimum.
struct MaxOp {
  template <class C>
  C operator()(C a, C b) const {
    if constexpr (std::is_floating_point_v<C>) {
      if (a != a) return a;
      if (b != b) return b;
    }
    return a > b ? a : b;
  }
};
struct MinOp {
  template <class C>
  C operator()(C a, C b) const {
    if constexpr (std::is_floating_point_v<C>) {
      if (a != a) return a;
      if (b != b) return b;
    }
    return a < b ? a : b;
  }
};

enum class Variadic { Sum, Mean, Max, Min };

class VariadicKernel final : public Kernel {
 public:
  VariadicKernel(const KernelCreateInfo& info, Variadic kind) : info_(info), kind_(kind) {
    for (DType t : info.inputTypes) {
      if (t != DType::Undefined) info_.require(allowed(), t);
    }
  }

  void run(KernelContext& ctx) const override {
    if (ctx.inputs.empty()) info_.invalid("needs at least one input");
    std::vector<Shape> shapes;
    for (size_t i = 0; i < ctx.inputs.size(); i++) {
      const Tensor& t = requireInput(ctx, info_, i);
      if (t.dtype != ctx.inputs[0]->dtype) info_.invalid("inputs have different types");
      shapes.push_back(t.shape);
    }
    Shape outShape = broadcastShapes(shapes, info_.where());
    Tensor& out = requireOutput(ctx, info_, 0, outShape);
    switch (kind_) {
      case Variadic::Sum: accumulate(ctx, out, AddOp{}); break;
      case Variadic::Mean:
        accumulate(ctx, out, AddOp{});
        divide(ctx, out);
        break;
      case Variadic::Max: accumulate(ctx, out, MaxOp{}); break;
      case Variadic::Min: accumulate(ctx, out, MinOp{}); break;
    }
  }
  std::string name() const override { return "elementwise." + info_.op; }

 private:
  uint32_t allowed() const {
    switch (kind_) {
      case Variadic::Sum: case Variadic::Mean: return kFloats;
      case Variadic::Max: case Variadic::Min: return kNumeric;
    }
    return 0;
  }

  // out = in0 op in1 op ... ; the first step reads two inputs, later ones fold into out in place.
  template <class F>
  void accumulate(KernelContext& ctx, Tensor& out, const F& f) const {
    const auto& in = ctx.inputs;
    dispatch<kNumeric>(in[0]->dtype, info_, [&](auto tag) {
      using S = typename decltype(tag)::type;
      S* o = out.ptr<S>();
      if (in.size() == 1) {
        Broadcast bc = makeBroadcast(out.shape, {in[0]->shape, in[0]->shape});
        binaryLoop(bc, in[0]->ptr<S>(), in[0]->ptr<S>(), o, [](auto x, auto) { return x; }, poolOf(ctx));
        return;
      }
      Broadcast first = makeBroadcast(out.shape, {in[0]->shape, in[1]->shape});
      binaryOp(f, first, in[0]->ptr<S>(), in[1]->ptr<S>(), o, poolOf(ctx));
      for (size_t i = 2; i < in.size(); i++) {
        Broadcast next = makeBroadcast(out.shape, {out.shape, in[i]->shape});
        binaryOp(f, next, static_cast<const S*>(o), in[i]->ptr<S>(), o, poolOf(ctx));
      }
    });
  }

  void divide(KernelContext& ctx, Tensor& out) const {
    const double n = static_cast<double>(ctx.inputs.size());
    dispatch<kFloats>(out.dtype, info_, [&](auto tag) {
      using S = typename decltype(tag)::type;
      S* o = out.ptr<S>();
      for (int64_t i = 0, e = out.numel(); i < e; i++) {
        o[i] = Num<S>::store(static_cast<typename Num<S>::C>(Num<S>::load(o[i]) / n));
      }
    });
  }

  OpInfo info_;
  Variadic kind_;
};

template <Variadic K>
std::unique_ptr<Kernel> makeVariadic(const KernelCreateInfo& info) {
  return std::make_unique<VariadicKernel>(info, K);
}

std::unique_ptr<Kernel> makePow(const KernelCreateInfo& info) { return std::make_unique<PowKernel>(info); }

}  // namespace

KILN_REGISTER_KERNEL(Add, (KernelDef{"cpu", "", "Add", 1, makeBinary<AddOp>}));
KILN_REGISTER_KERNEL(Sub, (KernelDef{"cpu", "", "Sub", 1, makeBinary<SubOp>}));
KILN_REGISTER_KERNEL(Mul, (KernelDef{"cpu", "", "Mul", 1, makeBinary<MulOp>}));
KILN_REGISTER_KERNEL(Div, (KernelDef{"cpu", "", "Div", 1, makeBinary<DivOp>}));
KILN_REGISTER_KERNEL(Mod, (KernelDef{"cpu", "", "Mod", 10, makeBinary<ModOp>}));
KILN_REGISTER_KERNEL(Pow, (KernelDef{"cpu", "", "Pow", 1, makePow}));
KILN_REGISTER_KERNEL(Sum, (KernelDef{"cpu", "", "Sum", 1, makeVariadic<Variadic::Sum>}));
KILN_REGISTER_KERNEL(Mean, (KernelDef{"cpu", "", "Mean", 1, makeVariadic<Variadic::Mean>}));
KILN_REGISTER_KERNEL(Max, (KernelDef{"cpu", "", "Max", 1, makeVariadic<Variadic::Max>}));
KILN_REGISTER_KERNEL(Min, (KernelDef{"cpu", "", "Min", 1, makeVariadic<Variadic::Min>}));

}  // namespace kiln::cpu
