// CPU kernels of comparisons (Equal Less Greater LessOrEqual GreaterOrEqual), boolean logic
// (And Or Xor Not), bitwise ops (BitShift BitwiseAnd/Or/Xor/Not) and Where. Schemas: ops/logic.cc.
#include <memory>
#include <type_traits>

#include "backends/cpu/ops/elementwise_binary.h"
#include "backends/cpu/ops/elementwise_unary.h"

namespace kiln::cpu {
namespace {

struct EqualOp {
  template <class C>
  bool operator()(const C& a, const C& b) const { return a == b; }
};
struct LessOp {
  template <class C>
  bool operator()(C a, C b) const { return a < b; }
};
struct GreaterOp {
  template <class C>
  bool operator()(C a, C b) const { return a > b; }
};
struct LessOrEqualOp {
  template <class C>
  bool operator()(C a, C b) const { return a <= b; }
};
struct GreaterOrEqualOp {
  template <class C>
  bool operator()(C a, C b) const { return a >= b; }
};
struct AndOp {
  bool operator()(bool a, bool b) const { return a && b; }
};
struct OrOp {
  bool operator()(bool a, bool b) const { return a || b; }
};
struct XorOp {
  bool operator()(bool a, bool b) const { return a != b; }
};

// A binary op whose result is bool (comparisons, logic). Types: kTypes.
template <class Op, uint32_t kTypes>
class PredicateBinaryKernel final : public Kernel {
 public:
  explicit PredicateBinaryKernel(const KernelCreateInfo& info) : info_(info) {
    for (size_t i = 0; i < 2 && i < info.inputTypes.size(); i++) {
      if (info.inputTypes[i] != DType::Undefined) info_.require(kTypes, info.inputTypes[i]);
    }
  }
  void run(KernelContext& ctx) const override {
    const Tensor& a = requireInput(ctx, info_, 0);
    const Tensor& b = requireInput(ctx, info_, 1);
    if (a.dtype != b.dtype) info_.invalid(std::string("operand types differ: ") + dtypeName(a.dtype) + " and " + dtypeName(b.dtype));
    BinaryPlan p = planBinary(ctx, info_, a, b);
    if (p.out->dtype != DType::Bool) info_.invalid("output must be bool");
    dispatch<kTypes>(a.dtype, info_, [&](auto tag) {
      using S = typename decltype(tag)::type;
      binaryLoop(p.bc, a.ptr<S>(), b.ptr<S>(), p.out->ptr<boolean>(), Op{}, poolOf(ctx));
    });
  }
  std::string name() const override { return "logic." + info_.op; }

 private:
  OpInfo info_;
};

// ---- Bitwise --------------------------------------------------------------------------------------

struct BitAndOp {
  template <class C>
  C operator()(C a, C b) const { return static_cast<C>(a & b); }
};
struct BitOrOp {
  template <class C>
  C operator()(C a, C b) const { return static_cast<C>(a | b); }
};
struct BitXorOp {
  template <class C>
  C operator()(C a, C b) const { return static_cast<C>(a ^ b); }
};
// Shifts by the type's width or more give 0 (in C++ they would be undefined).
struct ShiftLeftOp {
  template <class C>
  C operator()(C a, C b) const {
    using U = std::conditional_t<(sizeof(C) < sizeof(unsigned)), unsigned, C>;
    return b >= sizeof(C) * 8 ? C(0) : static_cast<C>(static_cast<U>(a) << b);
  }
};
struct ShiftRightOp {
  template <class C>
  C operator()(C a, C b) const { return b >= sizeof(C) * 8 ? C(0) : static_cast<C>(a >> b); }
};

template <class Op, uint32_t kTypes>
class BitwiseKernel final : public Kernel {
 public:
  explicit BitwiseKernel(const KernelCreateInfo& info) : info_(info) {
    for (size_t i = 0; i < 2 && i < info.inputTypes.size(); i++) {
      if (info.inputTypes[i] != DType::Undefined) info_.require(kTypes, info.inputTypes[i]);
    }
  }
  void run(KernelContext& ctx) const override {
    const Tensor& a = requireInput(ctx, info_, 0);
    const Tensor& b = requireInput(ctx, info_, 1);
    if (a.dtype != b.dtype) info_.invalid(std::string("operand types differ: ") + dtypeName(a.dtype) + " and " + dtypeName(b.dtype));
    BinaryPlan p = planBinary(ctx, info_, a, b);
    dispatch<kTypes>(a.dtype, info_, [&](auto tag) {
      using S = typename decltype(tag)::type;
      binaryLoop(p.bc, a.ptr<S>(), b.ptr<S>(), p.out->ptr<S>(), Op{}, poolOf(ctx));
    });
  }
  std::string name() const override { return "logic." + info_.op; }

 private:
  OpInfo info_;
};

std::unique_ptr<Kernel> makeBitShift(const KernelCreateInfo& info) {
  std::string direction = info.node.getString("direction", "");
  if (direction == "LEFT") return std::make_unique<BitwiseKernel<ShiftLeftOp, kUnsigned>>(info);
  if (direction == "RIGHT") return std::make_unique<BitwiseKernel<ShiftRightOp, kUnsigned>>(info);
  OpInfo(info).invalid("direction must be LEFT or RIGHT, got '" + direction + "'");
}

struct NotOp {
  static constexpr uint32_t kTypes = kBool;
  static constexpr bool kArray = false;
  bool operator()(bool x) const { return !x; }
};
struct BitwiseNotOp {
  static constexpr uint32_t kTypes = kInts;
  static constexpr bool kArray = false;
  template <class C>
  C operator()(C x) const { return static_cast<C>(~x); }
};

// ---- Where ----------------------------------------------------------------------------------------

class WhereKernel final : public Kernel {
 public:
  explicit WhereKernel(const KernelCreateInfo& info) : info_(info) {
    if (inputType(info, 0) != DType::Undefined && inputType(info, 0) != DType::Bool) info_.unsupported(inputType(info, 0), "condition");
    if (inputType(info, 1) != DType::Undefined) info_.require(kAll, inputType(info, 1));
  }
  void run(KernelContext& ctx) const override {
    const Tensor& c = requireInput(ctx, info_, 0);
    const Tensor& x = requireInput(ctx, info_, 1);
    const Tensor& y = requireInput(ctx, info_, 2);
    if (c.dtype != DType::Bool) info_.invalid("condition must be bool");
    if (x.dtype != y.dtype) info_.invalid(std::string("X and Y types differ: ") + dtypeName(x.dtype) + " and " + dtypeName(y.dtype));
    Shape outShape = broadcastShapes({c.shape, x.shape, y.shape}, info_.where());
    Tensor& out = requireOutput(ctx, info_, 0, outShape);
    Broadcast bc = makeBroadcast(outShape, {c.shape, x.shape, y.shape});
    // Where only moves elements, so it dispatches on element size (strings aside): fewer
    // instantiations, same bits.
    auto select = [&](auto tag) {
      using S = typename decltype(tag)::type;
      ternaryLoop(bc, c.ptr<boolean>(), x.ptr<S>(), y.ptr<S>(), out.ptr<S>(),
                  [](bool k, const S& a, const S& b) -> const S& { return k ? a : b; }, poolOf(ctx));
    };
    switch (dtypeSize(x.dtype)) {
      case 1: select(Tag<uint8_t>{}); return;
      case 2: select(Tag<uint16_t>{}); return;
      case 4: select(Tag<uint32_t>{}); return;
      case 8: select(Tag<uint64_t>{}); return;
      default: break;
    }
    if (x.dtype == DType::String) {
      select(Tag<std::string>{});
      return;
    }
    info_.unsupported(x.dtype);
  }
  std::string name() const override { return "logic.Where"; }

 private:
  OpInfo info_;
};

template <class K>
std::unique_ptr<Kernel> make(const KernelCreateInfo& info) {
  return std::make_unique<K>(info);
}

constexpr uint32_t kComparable = kNumeric | kBool;

}  // namespace

KILN_REGISTER_KERNEL(Equal, (KernelDef{"cpu", "", "Equal", 1, make<PredicateBinaryKernel<EqualOp, kComparable | kStr>>}));
KILN_REGISTER_KERNEL(Less, (KernelDef{"cpu", "", "Less", 1, make<PredicateBinaryKernel<LessOp, kNumeric>>}));
KILN_REGISTER_KERNEL(Greater, (KernelDef{"cpu", "", "Greater", 1, make<PredicateBinaryKernel<GreaterOp, kNumeric>>}));
KILN_REGISTER_KERNEL(LessOrEqual, (KernelDef{"cpu", "", "LessOrEqual", 12, make<PredicateBinaryKernel<LessOrEqualOp, kNumeric>>}));
KILN_REGISTER_KERNEL(GreaterOrEqual,
                     (KernelDef{"cpu", "", "GreaterOrEqual", 12, make<PredicateBinaryKernel<GreaterOrEqualOp, kNumeric>>}));
KILN_REGISTER_KERNEL(And, (KernelDef{"cpu", "", "And", 1, make<PredicateBinaryKernel<AndOp, kBool>>}));
KILN_REGISTER_KERNEL(Or, (KernelDef{"cpu", "", "Or", 1, make<PredicateBinaryKernel<OrOp, kBool>>}));
KILN_REGISTER_KERNEL(Xor, (KernelDef{"cpu", "", "Xor", 1, make<PredicateBinaryKernel<XorOp, kBool>>}));
KILN_REGISTER_KERNEL(Not, (KernelDef{"cpu", "", "Not", 1, makeUnaryKernel<NotOp>}));
KILN_REGISTER_KERNEL(BitShift, (KernelDef{"cpu", "", "BitShift", 11, makeBitShift}));
KILN_REGISTER_KERNEL(BitwiseAnd, (KernelDef{"cpu", "", "BitwiseAnd", 18, make<BitwiseKernel<BitAndOp, kInts>>}));
KILN_REGISTER_KERNEL(BitwiseOr, (KernelDef{"cpu", "", "BitwiseOr", 18, make<BitwiseKernel<BitOrOp, kInts>>}));
KILN_REGISTER_KERNEL(BitwiseXor, (KernelDef{"cpu", "", "BitwiseXor", 18, make<BitwiseKernel<BitXorOp, kInts>>}));
KILN_REGISTER_KERNEL(BitwiseNot, (KernelDef{"cpu", "", "BitwiseNot", 18, makeUnaryKernel<BitwiseNotOp>}));
KILN_REGISTER_KERNEL(Where, (KernelDef{"cpu", "", "Where", 9, make<WhereKernel>}));

}  // namespace kiln::cpu
