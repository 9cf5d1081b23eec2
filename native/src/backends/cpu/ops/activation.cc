// CPU kernels of the activation functions. Most are UnaryKernel functors (elementwise_unary.h);
// PRelu broadcasts a slope and Clip reads its bounds at run time. Schemas: ops/activation.cc.
#include <cmath>
#include <limits>
#include <memory>

#include "backends/cpu/ops/elementwise_binary.h"
#include "backends/cpu/ops/elementwise_unary.h"
#include "ops/prelu_legacy.h"

namespace kiln::cpu {
namespace {

float attrFloat(const KernelCreateInfo& info, const char* name, float fallback) {
  return info.node.getFloat(name, fallback);
}

struct ReluOp {
  static constexpr uint32_t kTypes = kFloats | kSigned;
  static constexpr bool kArray = false;
  template <class C>
  C operator()(C x) const { return x < C(0) ? C(0) : x; }  // NaN stays NaN
};

struct LeakyReluOp {
  static constexpr uint32_t kTypes = kFloats;
  static constexpr bool kArray = false;
  float alpha;
  explicit LeakyReluOp(const KernelCreateInfo& info) : alpha(attrFloat(info, "alpha", 0.01f)) {}
  template <class C>
  C operator()(C x) const { return x < C(0) ? C(alpha) * x : x; }
};

struct EluOp {
  static constexpr uint32_t kTypes = kFloats;
  static constexpr bool kArray = false;
  float alpha;
  explicit EluOp(const KernelCreateInfo& info) : alpha(attrFloat(info, "alpha", 1.0f)) {}
  template <class C>
  C operator()(C x) const { return x < C(0) ? C(alpha) * std::expm1(x) : x; }
};

struct SeluOp {
  static constexpr uint32_t kTypes = kFloats;
  static constexpr bool kArray = false;
  float alpha, gamma;
  explicit SeluOp(const KernelCreateInfo& info)
      : alpha(attrFloat(info, "alpha", 1.67326319217681884765625f)), gamma(attrFloat(info, "gamma", 1.05070102214813232421875f)) {}
  template <class C>
  C operator()(C x) const { return x > C(0) ? C(gamma) * x : C(gamma) * (C(alpha) * std::exp(x) - C(alpha)); }
};

struct CeluOp {
  static constexpr uint32_t kTypes = kFloats;
  static constexpr bool kArray = false;
  float alpha;
  explicit CeluOp(const KernelCreateInfo& info) : alpha(attrFloat(info, "alpha", 1.0f)) {
    if (alpha == 0.0f) OpInfo(info).invalid("alpha must not be 0");
  }
  template <class C>
  C operator()(C x) const { return x > C(0) ? x : C(alpha) * std::expm1(x / C(alpha)); }
};

struct ThresholdedReluOp {
  static constexpr uint32_t kTypes = kFloats;
  static constexpr bool kArray = false;
  float alpha;
  explicit ThresholdedReluOp(const KernelCreateInfo& info) : alpha(attrFloat(info, "alpha", 1.0f)) {}
  template <class C>
  C operator()(C x) const { return x > C(alpha) ? x : C(0); }
};

struct SigmoidOp {
  static constexpr uint32_t kTypes = kFloats;
  static constexpr bool kArray = true;
  template <class C>
  C operator()(C x) const {
    if (x >= 0) return C(1) / (C(1) + std::exp(-x));
    C e = std::exp(x);
    return e / (C(1) + e);
  }
  void array(const float* x, float* y, int64_t n) const { vecSigmoid(x, y, n); }
};

struct HardSigmoidOp {
  static constexpr uint32_t kTypes = kFloats;
  static constexpr bool kArray = false;
  float alpha, beta;
  explicit HardSigmoidOp(const KernelCreateInfo& info) : alpha(attrFloat(info, "alpha", 0.2f)), beta(attrFloat(info, "beta", 0.5f)) {}
  template <class C>
  C operator()(C x) const {
    C v = C(alpha) * x + C(beta);
    return v < C(0) ? C(0) : (v > C(1) ? C(1) : v);
  }
};

struct HardSwishOp {
  static constexpr uint32_t kTypes = kFloats;
  static constexpr bool kArray = false;
  template <class C>
  C operator()(C x) const {
    C v = x / C(6) + C(0.5);
    return x * (v < C(0) ? C(0) : (v > C(1) ? C(1) : v));
  }
};

// Swish-24: x * sigmoid(alpha * x) (SiLU when alpha = 1).
struct SwishOp {
  static constexpr uint32_t kTypes = kFloats;
  static constexpr bool kArray = false;
  float alpha;
  explicit SwishOp(const KernelCreateInfo& info) : alpha(attrFloat(info, "alpha", 1.0f)) {}
  template <class C>
  C operator()(C x) const {
    const C z = C(alpha) * x;
    if (z >= 0) return x / (C(1) + std::exp(-z));
    const C e = std::exp(z);
    return x * e / (C(1) + e);
  }
};

// log(1 + exp(x)) without overflow for large x.
template <class C>
C softplus(C x) {
  return x > C(0) ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}

struct SoftplusOp {
  static constexpr uint32_t kTypes = kFloats;
  static constexpr bool kArray = false;
  template <class C>
  C operator()(C x) const { return softplus(x); }
};

struct SoftsignOp {
  static constexpr uint32_t kTypes = kFloats;
  static constexpr bool kArray = false;
  template <class C>
  C operator()(C x) const { return x / (C(1) + std::fabs(x)); }
};

struct TanhOp {
  static constexpr uint32_t kTypes = kFloats;
  static constexpr bool kArray = true;
  template <class C>
  C operator()(C x) const { return std::tanh(x); }
  void array(const float* x, float* y, int64_t n) const { vecTanh(x, y, n); }
};

struct MishOp {
  static constexpr uint32_t kTypes = kFloats;
  static constexpr bool kArray = false;
  template <class C>
  C operator()(C x) const { return x * std::tanh(softplus(x)); }
};

struct GeluOp {
  static constexpr uint32_t kTypes = kFloats;
  static constexpr bool kArray = true;
  bool tanh;
  explicit GeluOp(const KernelCreateInfo& info) {
    std::string a = info.node.getString("approximate", "none");
    if (a != "none" && a != "tanh") OpInfo(info).invalid("approximate must be 'none' or 'tanh', got '" + a + "'");
    tanh = a == "tanh";
  }
  template <class C>
  C operator()(C x) const {
    if (tanh) return C(0.5) * x * (C(1) + std::tanh(C(0.7978845608028654) * (x + C(0.044715) * x * x * x)));
    return C(0.5) * x * (C(1) + std::erf(x * C(0.70710678118654752)));
  }
  void array(const float* x, float* y, int64_t n) const {
    if (tanh) {
      vecGeluTanh(x, y, n);
    } else {
      vecGelu(x, y, n);
    }
  }
};

struct ShrinkOp {
  static constexpr uint32_t kTypes = kNumeric;
  static constexpr bool kArray = false;
  double bias, lambd;
  explicit ShrinkOp(const KernelCreateInfo& info) : bias(attrFloat(info, "bias", 0.0f)), lambd(attrFloat(info, "lambd", 0.5f)) {}
  template <class C>
  C operator()(C x) const {
    double v = static_cast<double>(x);
    if (v < -lambd) return saturateCast<C>(v + bias);
    if (v > lambd) return saturateCast<C>(v - bias);
    return C(0);
  }
};

// PRelu(X, slope): slope broadcasts to X.
class PReluKernel final : public Kernel {
 public:
  explicit PReluKernel(const KernelCreateInfo& info) : info_(info), opset_(info.opset) {
    for (size_t i = 0; i < 2 && i < info.inputTypes.size(); i++) {
      if (info.inputTypes[i] != DType::Undefined) info_.require(kTypes, info.inputTypes[i]);
    }
  }
  void run(KernelContext& ctx) const override {
    const Tensor& x = requireInput(ctx, info_, 0);
    const Tensor& slope = requireInput(ctx, info_, 1);
    if (x.dtype != slope.dtype) info_.invalid("X and slope have different types");
    const Shape slopeShape = legacyPReluSlopeShape(opset_, x.shape, slope.shape);
    Shape out = broadcastShapes({x.shape, slopeShape}, info_.where());
    if (out != x.shape) info_.shape("slope " + shapeToString(slope.shape) + " does not broadcast to X " + shapeToString(x.shape));
    Tensor& y = requireOutput(ctx, info_, 0, out);
    Broadcast bc = makeBroadcast(out, {x.shape, slopeShape});
    dispatch<kTypes>(x.dtype, info_, [&](auto tag) {
      using S = typename decltype(tag)::type;
      binaryLoop(bc, x.ptr<S>(), slope.ptr<S>(), y.ptr<S>(), [](auto v, auto s) { return v < 0 ? s * v : v; }, poolOf(ctx));
    });
  }
  std::string name() const override { return "activation.PRelu"; }

 private:
  static constexpr uint32_t kTypes = kFloats | kI32 | kI64 | kU32 | kU64;
  OpInfo info_;
  int64_t opset_;
};

// Clip: bounds from attributes (opset < 11) or optional scalar inputs; omitted bounds are the
// type's limits. NaN inputs stay NaN.
class ClipKernel final : public Kernel {
 public:
  explicit ClipKernel(const KernelCreateInfo& info)
      : info_(info),
        minAttr_(info.node.getFloat("min", -std::numeric_limits<float>::infinity())),
        maxAttr_(info.node.getFloat("max", std::numeric_limits<float>::infinity())) {
    if (inputType(info, 0) != DType::Undefined) info_.require(kNumeric, inputType(info, 0));
  }
  void run(KernelContext& ctx) const override {
    const Tensor& x = requireInput(ctx, info_, 0);
    Tensor& y = requireOutput(ctx, info_, 0, x.shape);
    const int64_t n = x.numel();
    dispatch<kNumeric>(x.dtype, info_, [&](auto tag) {
      using S = typename decltype(tag)::type;
      using C = typename Num<S>::C;
      C lo = std::numeric_limits<C>::lowest(), hi = std::numeric_limits<C>::max();
      if constexpr (std::is_floating_point_v<C>) {
        lo = -std::numeric_limits<C>::infinity();
        hi = std::numeric_limits<C>::infinity();
      }
      if (info_.opset < 11) {
        lo = saturateCast<C>(minAttr_);
        hi = saturateCast<C>(maxAttr_);
      } else {
        if (const Tensor* t = bound(ctx, 1, x.dtype)) lo = Num<S>::load(t->ptr<S>()[0]);
        if (const Tensor* t = bound(ctx, 2, x.dtype)) hi = Num<S>::load(t->ptr<S>()[0]);
      }
      const S* in = x.ptr<S>();
      S* out = y.ptr<S>();
      // ONNX: min > max gives max everywhere (np.clip semantics: min applied first, then max).
      auto body = [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; i++) {
          C v = Num<S>::load(in[i]);
          v = v < lo ? lo : v;
          v = v > hi ? hi : v;
          out[i] = Num<S>::store(v);
        }
      };
      if (n <= kGrain) {
        body(0, n);
      } else {
        poolOf(ctx).parallelFor(n, kGrain, body);
      }
    });
  }
  std::string name() const override { return "activation.Clip"; }

 private:
  const Tensor* bound(const KernelContext& ctx, size_t i, DType want) const {
    if (i >= ctx.inputs.size() || ctx.inputs[i] == nullptr) return nullptr;
    const Tensor* t = ctx.inputs[i];
    if (t->dtype != want) info_.invalid(std::string(i == 1 ? "min" : "max") + " has type " + dtypeName(t->dtype) + ", expected " + dtypeName(want));
    if (t->numel() != 1) info_.shape(std::string(i == 1 ? "min" : "max") + " must be a scalar, got " + shapeToString(t->shape));
    return t;
  }

  OpInfo info_;
  float minAttr_, maxAttr_;
};

template <class K>
std::unique_ptr<Kernel> make(const KernelCreateInfo& info) {
  return std::make_unique<K>(info);
}

}  // namespace

KILN_REGISTER_KERNEL(Relu, (KernelDef{"cpu", "", "Relu", 1, makeUnaryKernel<ReluOp>}));
KILN_REGISTER_KERNEL(LeakyRelu, (KernelDef{"cpu", "", "LeakyRelu", 1, makeUnaryKernel<LeakyReluOp>}));
KILN_REGISTER_KERNEL(PRelu, (KernelDef{"cpu", "", "PRelu", 1, make<PReluKernel>}));
KILN_REGISTER_KERNEL(Elu, (KernelDef{"cpu", "", "Elu", 1, makeUnaryKernel<EluOp>}));
KILN_REGISTER_KERNEL(Selu, (KernelDef{"cpu", "", "Selu", 1, makeUnaryKernel<SeluOp>}));
KILN_REGISTER_KERNEL(Celu, (KernelDef{"cpu", "", "Celu", 12, makeUnaryKernel<CeluOp>}));
KILN_REGISTER_KERNEL(ThresholdedRelu, (KernelDef{"cpu", "", "ThresholdedRelu", 10, makeUnaryKernel<ThresholdedReluOp>}));
KILN_REGISTER_KERNEL(Sigmoid, (KernelDef{"cpu", "", "Sigmoid", 1, makeUnaryKernel<SigmoidOp>}));
KILN_REGISTER_KERNEL(HardSigmoid, (KernelDef{"cpu", "", "HardSigmoid", 1, makeUnaryKernel<HardSigmoidOp>}));
KILN_REGISTER_KERNEL(HardSwish, (KernelDef{"cpu", "", "HardSwish", 14, makeUnaryKernel<HardSwishOp>}));
KILN_REGISTER_KERNEL(Swish, (KernelDef{"cpu", "", "Swish", 24, makeUnaryKernel<SwishOp>}));
KILN_REGISTER_KERNEL(Softplus, (KernelDef{"cpu", "", "Softplus", 1, makeUnaryKernel<SoftplusOp>}));
KILN_REGISTER_KERNEL(Softsign, (KernelDef{"cpu", "", "Softsign", 1, makeUnaryKernel<SoftsignOp>}));
KILN_REGISTER_KERNEL(Tanh, (KernelDef{"cpu", "", "Tanh", 1, makeUnaryKernel<TanhOp>}));
KILN_REGISTER_KERNEL(Gelu, (KernelDef{"cpu", "", "Gelu", 20, makeUnaryKernel<GeluOp>}));
KILN_REGISTER_KERNEL(Mish, (KernelDef{"cpu", "", "Mish", 18, makeUnaryKernel<MishOp>}));
KILN_REGISTER_KERNEL(Shrink, (KernelDef{"cpu", "", "Shrink", 9, makeUnaryKernel<ShrinkOp>}));
KILN_REGISTER_KERNEL(Clip, (KernelDef{"cpu", "", "Clip", 1, make<ClipKernel>}));

}  // namespace kiln::cpu
