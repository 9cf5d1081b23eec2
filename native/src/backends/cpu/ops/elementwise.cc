// CPU kernels of the unary math ops (Abs ... Erf), IsNaN/IsInf and Dropout. Schemas: ops/elementwise.cc.
#include <cmath>
#include <random>

#include "backends/cpu/ops/elementwise_unary.h"

namespace kiln::cpu {
namespace {

template <class T>
constexpr bool kSignedInt = std::is_integral_v<T> && std::is_signed_v<T>;

// Negation that wraps for the most negative integer instead of overflowing (numpy's behaviour).
template <class T>
T negate(T x) {
  if constexpr (kSignedInt<T>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(0) - static_cast<U>(x));
  } else {
    return -x;
  }
}

struct AbsOp {
  static constexpr uint32_t kTypes = kNumeric;
  static constexpr bool kArray = false;
  template <class C>
  C operator()(C x) const {
    if constexpr (std::is_unsigned_v<C>) {
      return x;
    } else if constexpr (std::is_floating_point_v<C>) {
      return std::fabs(x);
    } else {
      return x < 0 ? negate(x) : x;
    }
  }
};

struct NegOp {
  static constexpr uint32_t kTypes = kFloats | kSigned;
  static constexpr bool kArray = false;
  template <class C>
  C operator()(C x) const { return negate(x); }
};

struct SignOp {
  static constexpr uint32_t kTypes = kNumeric;
  static constexpr bool kArray = false;
  template <class C>
  C operator()(C x) const {
    if constexpr (std::is_unsigned_v<C>) {
      return x > 0 ? 1 : 0;
    } else {
      return x > 0 ? C(1) : (x < 0 ? C(-1) : x);  // keeps NaN and signed zero
    }
  }
};

// Float-only math: one functor per std function.
#define KILN_FLOAT_UNARY(Name, expr)             \
  struct Name {                                  \
    static constexpr uint32_t kTypes = kFloats;  \
    static constexpr bool kArray = false;        \
    template <class C>                           \
    C operator()(C x) const { return expr; }     \
  };
KILN_FLOAT_UNARY(FloorOp, std::floor(x))
KILN_FLOAT_UNARY(CeilOp, std::ceil(x))
KILN_FLOAT_UNARY(RoundOp, std::nearbyint(x))  // half to even in the default rounding mode
KILN_FLOAT_UNARY(SqrtOp, std::sqrt(x))
KILN_FLOAT_UNARY(ReciprocalOp, C(1) / x)
KILN_FLOAT_UNARY(SinOp, std::sin(x))
KILN_FLOAT_UNARY(CosOp, std::cos(x))
KILN_FLOAT_UNARY(TanOp, std::tan(x))
KILN_FLOAT_UNARY(AsinOp, std::asin(x))
KILN_FLOAT_UNARY(AcosOp, std::acos(x))
KILN_FLOAT_UNARY(AtanOp, std::atan(x))
KILN_FLOAT_UNARY(SinhOp, std::sinh(x))
KILN_FLOAT_UNARY(CoshOp, std::cosh(x))
KILN_FLOAT_UNARY(AsinhOp, std::asinh(x))
KILN_FLOAT_UNARY(AcoshOp, std::acosh(x))
KILN_FLOAT_UNARY(AtanhOp, std::atanh(x))
#undef KILN_FLOAT_UNARY

// Float-only math with a vectorized float32 path.
#define KILN_FLOAT_UNARY_VEC(Name, expr, vec)                                     \
  struct Name {                                                                   \
    static constexpr uint32_t kTypes = kFloats;                                   \
    static constexpr bool kArray = true;                                          \
    template <class C>                                                            \
    C operator()(C x) const { return expr; }                                      \
    void array(const float* x, float* y, int64_t n) const { vec(x, y, n); }       \
  };
KILN_FLOAT_UNARY_VEC(ExpOp, std::exp(x), vecExp)
KILN_FLOAT_UNARY_VEC(LogOp, std::log(x), vecLog)
KILN_FLOAT_UNARY_VEC(ErfOp, std::erf(x), vecErf)
#undef KILN_FLOAT_UNARY_VEC

// IsNaN / IsInf: float input, bool output, so they do not fit UnaryKernel.
class PredicateKernel final : public Kernel {
 public:
  explicit PredicateKernel(const KernelCreateInfo& info)
      : info_(info),
        isNan_(info.node.opType == "IsNaN"),
        positive_(info.node.getInt("detect_positive", 1) != 0),
        negative_(info.node.getInt("detect_negative", 1) != 0) {
    if (inputType(info, 0) != DType::Undefined) info_.require(kFloats, inputType(info, 0));
  }

  void run(KernelContext& ctx) const override {
    const Tensor& x = requireInput(ctx, info_, 0);
    Tensor& y = requireOutput(ctx, info_, 0, x.shape);
    if (y.dtype != DType::Bool) info_.invalid("output must be bool");
    const int64_t n = x.numel();
    uint8_t* out = y.ptr<uint8_t>();
    dispatch<kFloats>(x.dtype, info_, [&](auto tag) {
      using S = typename decltype(tag)::type;
      const S* in = x.ptr<S>();
      for (int64_t i = 0; i < n; i++) {
        auto v = Num<S>::load(in[i]);
        bool r = isNan_ ? std::isnan(v) : (std::isinf(v) && (v > 0 ? positive_ : negative_));
        out[i] = r ? 1 : 0;
      }
    });
  }
  std::string name() const override { return "elementwise." + info_.op; }

 private:
  OpInfo info_;
  bool isNan_, positive_, negative_;
};

// Dropout. At inference (no training_mode input, or training_mode false, or ratio 0) the output is
// the input and the mask is all ones. In training mode elements are zeroed with probability
// `ratio` and the survivors scaled by 1 / (1 - ratio), as ONNX specifies; the generator is seeded
// from the `seed` attribute when given.
class DropoutKernel final : public Kernel {
 public:
  explicit DropoutKernel(const KernelCreateInfo& info)
      : info_(info), ratioAttr_(info.node.getFloat("ratio", 0.5f)), seed_(info.node.getInt("seed", -1)),
        hasSeed_(info.node.has("seed")) {
    if (inputType(info, 0) != DType::Undefined) info_.require(kFloats, inputType(info, 0));
  }

  void run(KernelContext& ctx) const override {
    const Tensor& x = requireInput(ctx, info_, 0);
    Tensor& y = requireOutput(ctx, info_, 0, x.shape);
    float ratio = ratioAttr_;
    bool training = false;
    if (info_.opset >= 12) {
      if (ctx.inputs.size() > 1 && ctx.inputs[1] != nullptr) {
        if (ctx.inputs[1]->numel() != 1) info_.invalid("ratio must be a scalar");
        ratio = static_cast<float>(ctx.inputs[1]->scalarAsDouble(0));
      }
      if (ctx.inputs.size() > 2 && ctx.inputs[2] != nullptr) {
        if (ctx.inputs[2]->numel() != 1) info_.invalid("training_mode must be a scalar");
        training = ctx.inputs[2]->scalarAsDouble(0) != 0;
      }
    }
    if (training && !(ratio >= 0.0f && ratio < 1.0f)) info_.invalid("ratio must be in [0, 1), got " + std::to_string(ratio));
    Tensor* mask = ctx.outputs.size() > 1 ? ctx.outputs[1] : nullptr;
    if (mask != nullptr) requireOutput(ctx, info_, 1, x.shape);
    const int64_t n = x.numel();
    if (!training || ratio == 0.0f) {
      if (y.data != x.data && n > 0) std::memcpy(y.data, x.data, x.byteSize());
      if (mask != nullptr) fillOnes(*mask);
      return;
    }
    std::mt19937_64 rng(hasSeed_ ? static_cast<uint64_t>(seed_) : std::random_device{}());
    std::bernoulli_distribution keep(1.0 - ratio);
    const float scale = 1.0f / (1.0f - ratio);
    dispatch<kFloats>(x.dtype, info_, [&](auto tag) {
      using S = typename decltype(tag)::type;
      const S* in = x.ptr<S>();
      S* out = y.ptr<S>();
      for (int64_t i = 0; i < n; i++) {
        bool k = keep(rng);
        out[i] = Num<S>::store(k ? Num<S>::load(in[i]) * scale : 0.0f);
        if (mask != nullptr) setMask(*mask, i, k);
      }
    });
  }
  std::string name() const override { return "elementwise.Dropout"; }

 private:
  // Before opset 10 the mask has the data's type; from 10 it is bool.
  void fillOnes(Tensor& mask) const {
    for (int64_t i = 0; i < mask.numel(); i++) setMask(mask, i, true);
  }
  void setMask(Tensor& mask, int64_t i, bool v) const {
    dispatch<kFloats | kBool>(mask.dtype, info_, [&](auto tag) {
      using S = typename decltype(tag)::type;
      mask.ptr<S>()[i] = Num<S>::store(v ? 1 : 0);
    });
  }

  OpInfo info_;
  float ratioAttr_;
  int64_t seed_;
  bool hasSeed_;
};

template <class K>
std::unique_ptr<Kernel> make(const KernelCreateInfo& info) {
  return std::make_unique<K>(info);
}

}  // namespace

KILN_REGISTER_KERNEL(Abs, (KernelDef{"cpu", "", "Abs", 1, makeUnaryKernel<AbsOp>}));
KILN_REGISTER_KERNEL(Neg, (KernelDef{"cpu", "", "Neg", 1, makeUnaryKernel<NegOp>}));
KILN_REGISTER_KERNEL(Sign, (KernelDef{"cpu", "", "Sign", 9, makeUnaryKernel<SignOp>}));
KILN_REGISTER_KERNEL(Floor, (KernelDef{"cpu", "", "Floor", 1, makeUnaryKernel<FloorOp>}));
KILN_REGISTER_KERNEL(Ceil, (KernelDef{"cpu", "", "Ceil", 1, makeUnaryKernel<CeilOp>}));
KILN_REGISTER_KERNEL(Round, (KernelDef{"cpu", "", "Round", 11, makeUnaryKernel<RoundOp>}));
KILN_REGISTER_KERNEL(Sqrt, (KernelDef{"cpu", "", "Sqrt", 1, makeUnaryKernel<SqrtOp>}));
KILN_REGISTER_KERNEL(Reciprocal, (KernelDef{"cpu", "", "Reciprocal", 1, makeUnaryKernel<ReciprocalOp>}));
KILN_REGISTER_KERNEL(Exp, (KernelDef{"cpu", "", "Exp", 1, makeUnaryKernel<ExpOp>}));
KILN_REGISTER_KERNEL(Log, (KernelDef{"cpu", "", "Log", 1, makeUnaryKernel<LogOp>}));
KILN_REGISTER_KERNEL(Erf, (KernelDef{"cpu", "", "Erf", 9, makeUnaryKernel<ErfOp>}));
KILN_REGISTER_KERNEL(Sin, (KernelDef{"cpu", "", "Sin", 7, makeUnaryKernel<SinOp>}));
KILN_REGISTER_KERNEL(Cos, (KernelDef{"cpu", "", "Cos", 7, makeUnaryKernel<CosOp>}));
KILN_REGISTER_KERNEL(Tan, (KernelDef{"cpu", "", "Tan", 7, makeUnaryKernel<TanOp>}));
KILN_REGISTER_KERNEL(Asin, (KernelDef{"cpu", "", "Asin", 7, makeUnaryKernel<AsinOp>}));
KILN_REGISTER_KERNEL(Acos, (KernelDef{"cpu", "", "Acos", 7, makeUnaryKernel<AcosOp>}));
KILN_REGISTER_KERNEL(Atan, (KernelDef{"cpu", "", "Atan", 7, makeUnaryKernel<AtanOp>}));
KILN_REGISTER_KERNEL(Sinh, (KernelDef{"cpu", "", "Sinh", 9, makeUnaryKernel<SinhOp>}));
KILN_REGISTER_KERNEL(Cosh, (KernelDef{"cpu", "", "Cosh", 9, makeUnaryKernel<CoshOp>}));
KILN_REGISTER_KERNEL(Asinh, (KernelDef{"cpu", "", "Asinh", 9, makeUnaryKernel<AsinhOp>}));
KILN_REGISTER_KERNEL(Acosh, (KernelDef{"cpu", "", "Acosh", 9, makeUnaryKernel<AcoshOp>}));
KILN_REGISTER_KERNEL(Atanh, (KernelDef{"cpu", "", "Atanh", 9, makeUnaryKernel<AtanhOp>}));
KILN_REGISTER_KERNEL(IsNaN, (KernelDef{"cpu", "", "IsNaN", 9, make<PredicateKernel>}));
KILN_REGISTER_KERNEL(IsInf, (KernelDef{"cpu", "", "IsInf", 10, make<PredicateKernel>}));
KILN_REGISTER_KERNEL(Dropout, (KernelDef{"cpu", "", "Dropout", 1, make<DropoutKernel>}));

}  // namespace kiln::cpu
