// CPU kernels of the Reduce* ops, ArgMax/ArgMin and CumSum. Schemas: ops/reduce.cc.
//
// Reductions walk the input once with the broadcast iterator (broadcast.h), treating the output
// (with reduced dims kept as 1) as an operand whose stride is 0 along reduced dims: a run whose
// output stride is 0 is a contiguous row folded into one accumulator (reducing the last axes), a
// run with stride 1 folds a row elementwise into a row of accumulators (reducing leading axes).
// Accumulators are float for float32/16/bfloat16, double for float64, 64-bit for integers.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "backends/cpu/broadcast.h"
#include "backends/cpu/ops/elementwise_util.h"

namespace kiln::cpu {
namespace {

enum class Reduction { Sum, Mean, Max, Min, Prod, L1, L2, LogSum, LogSumExp, SumSquare };

template <class S>
struct AccOf {
  using C = typename Num<S>::C;
  using type = std::conditional_t<std::is_floating_point_v<C>, C,
                                  std::conditional_t<std::is_signed_v<C> && !std::is_same_v<C, bool>, int64_t, uint64_t>>;
};

template <class A>
A accAdd(A a, A b) {
  if constexpr (std::is_integral_v<A>) return wrapping(a, b, [](auto x, auto y) { return x + y; });
  else return a + b;
}
template <class A>
A accMul(A a, A b) {
  if constexpr (std::is_integral_v<A>) return wrapping(a, b, [](auto x, auto y) { return x * y; });
  else return a * b;
}

// How each reduction starts, transforms an element, combines and finishes.
template <Reduction R, class A>
struct Policy {
  static A init() {
    if constexpr (R == Reduction::Max) {
      return std::is_floating_point_v<A> ? -std::numeric_limits<A>::infinity() : std::numeric_limits<A>::lowest();
    } else if constexpr (R == Reduction::Min) {
      return std::is_floating_point_v<A> ? std::numeric_limits<A>::infinity() : std::numeric_limits<A>::max();
    } else if constexpr (R == Reduction::Prod) {
      return A(1);
    } else {
      return A(0);
    }
  }
  static A pre(A x) {
    if constexpr (R == Reduction::L1) {
      if constexpr (std::is_unsigned_v<A>) return x;
      else return x < 0 ? wrapping(A(0), x, [](auto p, auto q) { return p - q; }) : x;
    } else if constexpr (R == Reduction::L2 || R == Reduction::SumSquare) {
      return accMul(x, x);
    } else {
      return x;
    }
  }
  static A combine(A acc, A x) {
    if constexpr (R == Reduction::Max) {
      if constexpr (std::is_floating_point_v<A>) {
        if (x != x) return x;
      }
      return x > acc ? x : acc;
    } else if constexpr (R == Reduction::Min) {
      if constexpr (std::is_floating_point_v<A>) {
        if (x != x) return x;
      }
      return x < acc ? x : acc;
    } else if constexpr (R == Reduction::Prod) {
      return accMul(acc, x);
    } else {
      return accAdd(acc, x);
    }
  }
  static A finish(A acc, int64_t count) {
    if constexpr (R == Reduction::Mean) {
      if constexpr (std::is_floating_point_v<A>) return acc / static_cast<A>(count);
      else return count == 0 ? A(0) : static_cast<A>(acc / static_cast<A>(count));
    } else if constexpr (R == Reduction::L2) {
      return static_cast<A>(std::sqrt(static_cast<double>(acc)));
    } else if constexpr (R == Reduction::LogSum) {
      return static_cast<A>(std::log(static_cast<double>(acc)));
    } else {
      return acc;
    }
  }
};

// Folds x (iterated by bc) into acc. `shift` (LogSumExp's second pass) is subtracted per output
// before exp; null otherwise.
template <Reduction R, class S, class A>
void fold(const Broadcast& bc, int64_t begin, int64_t end, const S* x, A* acc, const A* shift) {
  using P = Policy<R, A>;
  const bool rows = bc.innerStride(0) == 0;
  forEachRun(bc, begin, end, [&](int64_t pos, const int64_t* off, int64_t n) {
    const S* px = x + pos;
    A* pa = acc + off[0];
    if (shift != nullptr) {
      const A* ps = shift + off[0];
      if (rows) {
        A s = *pa;
        for (int64_t i = 0; i < n; i++) s += std::exp(static_cast<A>(Num<S>::load(px[i])) - ps[0]);
        *pa = s;
      } else {
        for (int64_t i = 0; i < n; i++) pa[i] += std::exp(static_cast<A>(Num<S>::load(px[i])) - ps[i]);
      }
      return;
    }
    if (rows) {
      A s = *pa;
      if constexpr (std::is_floating_point_v<A> && (R == Reduction::Sum || R == Reduction::Mean)) {
        // Eight partial sums: vectorizable, and more accurate than one running sum.
        A part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int64_t i = 0;
        for (; i + 8 <= n; i += 8) {
          for (int k = 0; k < 8; k++) part[k] += static_cast<A>(Num<S>::load(px[i + k]));
        }
        for (; i < n; i++) part[i & 7] += static_cast<A>(Num<S>::load(px[i]));
        s += ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
      } else {
        for (int64_t i = 0; i < n; i++) s = P::combine(s, P::pre(static_cast<A>(Num<S>::load(px[i]))));
      }
      *pa = s;
    } else {
      for (int64_t i = 0; i < n; i++) pa[i] = P::combine(pa[i], P::pre(static_cast<A>(Num<S>::load(px[i]))));
    }
  });
}

class ReduceKernel final : public Kernel {
 public:
  ReduceKernel(const KernelCreateInfo& info, Reduction r)
      : info_(info),
        r_(r),
        keepdims_(info.node.getInt("keepdims", 1) != 0),
        axesFromInput_(info.opset >= (info.node.opType == "ReduceSum" ? 13 : 18)),
        noop_(axesFromInput_ && info.node.getInt("noop_with_empty_axes", 0) != 0),
        attrAxes_(info.node.getInts("axes")) {
    if (inputType(info, 0) != DType::Undefined) info_.require(allowed(), inputType(info, 0));
  }

  void run(KernelContext& ctx) const override {
    const Tensor& x = requireInput(ctx, info_, 0);
    const int64_t rank = static_cast<int64_t>(x.shape.size());
    std::vector<int64_t> axes = attrAxes_;
    if (axesFromInput_) {
      axes.clear();
      if (ctx.inputs.size() > 1 && ctx.inputs[1] != nullptr) {
        const Tensor& a = *ctx.inputs[1];
        if (a.dtype != DType::Int64) info_.invalid(std::string("axes must be int64, got ") + dtypeName(a.dtype));
        if (a.shape.size() > 1) info_.shape("axes must be 1-D, got " + shapeToString(a.shape));
        axes = a.toInt64Vector();
      }
    }
    if (axes.empty() && noop_) {
      Tensor& y = requireOutput(ctx, info_, 0, x.shape);
      if (y.data != x.data && x.byteSize() > 0) std::memcpy(y.data, x.data, x.byteSize());
      return;
    }
    std::vector<bool> reduced(static_cast<size_t>(rank), axes.empty());
    for (int64_t a : axes) {
      int64_t d = normalizeAxis(a, rank, info_, "reduction axis");
      if (reduced[d] && !axes.empty()) info_.invalid("axis " + std::to_string(a) + " is repeated");
      reduced[d] = true;
    }
    Shape kept = x.shape, outShape;
    for (int64_t d = 0; d < rank; d++) {
      if (reduced[d]) kept[d] = 1;
      if (!reduced[d] || keepdims_) outShape.push_back(kept[d]);
    }
    Tensor& y = requireOutput(ctx, info_, 0, outShape);
    dispatch<kNumeric | kBool>(x.dtype, info_, [&](auto tag) {
      using S = typename decltype(tag)::type;
      if constexpr (std::is_same_v<S, boolean>) {
        if (r_ != Reduction::Max && r_ != Reduction::Min) info_.unsupported(x.dtype);
      }
      switch (r_) {
        case Reduction::Sum: reduce<Reduction::Sum, S>(ctx, x, y, kept); break;
        case Reduction::Mean: reduce<Reduction::Mean, S>(ctx, x, y, kept); break;
        case Reduction::Max: reduce<Reduction::Max, S>(ctx, x, y, kept); break;
        case Reduction::Min: reduce<Reduction::Min, S>(ctx, x, y, kept); break;
        case Reduction::Prod: reduce<Reduction::Prod, S>(ctx, x, y, kept); break;
        case Reduction::L1: reduce<Reduction::L1, S>(ctx, x, y, kept); break;
        case Reduction::L2: reduce<Reduction::L2, S>(ctx, x, y, kept); break;
        case Reduction::LogSum: reduce<Reduction::LogSum, S>(ctx, x, y, kept); break;
        case Reduction::LogSumExp: reduce<Reduction::LogSumExp, S>(ctx, x, y, kept); break;
        case Reduction::SumSquare: reduce<Reduction::SumSquare, S>(ctx, x, y, kept); break;
      }
    });
  }
  std::string name() const override { return "reduce." + info_.op; }

 private:
  uint32_t allowed() const {
    switch (r_) {
      case Reduction::Max: case Reduction::Min: return kNumeric | kBool;
      case Reduction::Sum: case Reduction::Mean: case Reduction::Prod: case Reduction::L1: case Reduction::L2:
      case Reduction::SumSquare:
        return kNumeric;
      case Reduction::LogSum: case Reduction::LogSumExp: return kFloats;
    }
    return 0;
  }

  template <Reduction R, class S>
  void reduce(KernelContext& ctx, const Tensor& x, Tensor& y, const Shape& kept) const {
    using A = typename AccOf<S>::type;
    const int64_t outN = shapeNumel(kept), inN = x.numel();
    if (outN == 0) return;
    std::vector<A> acc(static_cast<size_t>(outN));
    const S* px = x.ptr<S>();
    Broadcast bc = makeBroadcast(x.shape, {kept});
    if constexpr (R == Reduction::LogSumExp) {
      std::fill(acc.begin(), acc.end(), Policy<Reduction::Max, A>::init());
      foldAll<Reduction::Max, S, A>(ctx, bc, inN, px, acc.data(), nullptr);
      // Infinite maxima (all -inf, empty, or any +inf) are the answer already; shift by 0 there
      // so the second pass stays finite, and patch the result below.
      std::vector<A> shift(acc);
      for (A& s : shift) s = std::isinf(s) ? A(0) : s;
      std::vector<A> sum(static_cast<size_t>(outN), A(0));
      foldAll<Reduction::Sum, S, A>(ctx, bc, inN, px, sum.data(), shift.data());
      for (int64_t i = 0; i < outN; i++) acc[i] = std::isinf(acc[i]) || acc[i] != acc[i] ? acc[i] : shift[i] + std::log(sum[i]);
    } else {
      std::fill(acc.begin(), acc.end(), Policy<R, A>::init());
      foldAll<R, S, A>(ctx, bc, inN, px, acc.data(), nullptr);
      const int64_t count = inN / outN;
      for (A& a : acc) a = Policy<R, A>::finish(a, count);
    }
    S* out = y.ptr<S>();
    using C = typename Num<S>::C;
    for (int64_t i = 0; i < outN; i++) {
      if constexpr (std::is_same_v<C, bool>) out[i] = Num<S>::store(acc[i] != 0);
      else out[i] = Num<S>::store(static_cast<C>(acc[i]));
    }
  }

  // Splits the walk across threads along the outermost dim when that dim is kept (each task then
  // owns distinct accumulators); otherwise walks serially.
  template <Reduction R, class S, class A>
  void foldAll(KernelContext& ctx, const Broadcast& bc, int64_t inN, const S* x, A* acc, const A* shift) const {
    if (inN == 0) return;
    if (inN > kGrain && bc.dims.size() > 1 && bc.strides[0][0] != 0) {
      const int64_t slab = inN / bc.dims[0];
      const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(1, slab));
      poolOf(ctx).parallelFor(bc.dims[0], grain, [&](int64_t b, int64_t e) {
        fold<R, S, A>(bc, b * slab, e * slab, x, acc, shift);
      });
    } else {
      fold<R, S, A>(bc, 0, inN, x, acc, shift);
    }
  }

  OpInfo info_;
  Reduction r_;
  bool keepdims_, axesFromInput_, noop_;
  std::vector<int64_t> attrAxes_;
};

// ---- ArgMax / ArgMin ------------------------------------------------------------------------------

class ArgReduceKernel final : public Kernel {
 public:
  ArgReduceKernel(const KernelCreateInfo& info, bool isMax)
      : info_(info),
        isMax_(isMax),
        axis_(info.node.getInt("axis", 0)),
        keepdims_(info.node.getInt("keepdims", 1) != 0),
        last_(info.node.getInt("select_last_index", 0) != 0) {
    if (inputType(info, 0) != DType::Undefined) info_.require(kNumeric, inputType(info, 0));
  }

  void run(KernelContext& ctx) const override {
    const Tensor& x = requireInput(ctx, info_, 0);
    const int64_t rank = static_cast<int64_t>(x.shape.size());
    if (rank == 0) info_.shape("input must have rank >= 1");
    const int64_t a = normalizeAxis(axis_, rank, info_);
    Shape outShape;
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < rank; d++) {
      if (d < a) outer *= x.shape[d];
      if (d > a) inner *= x.shape[d];
      if (d != a) outShape.push_back(x.shape[d]);
      else if (keepdims_) outShape.push_back(1);
    }
    const int64_t n = x.shape[a];
    Tensor& y = requireOutput(ctx, info_, 0, outShape);
    if (y.dtype != DType::Int64) info_.invalid("output must be int64");
    if (outer * inner == 0) return;
    if (n == 0) info_.shape("cannot take " + info_.op + " over an empty axis of shape " + shapeToString(x.shape));
    int64_t* out = y.ptr<int64_t>();
    dispatch<kNumeric>(x.dtype, info_, [&](auto tag) {
      using S = typename decltype(tag)::type;
      using C = typename Num<S>::C;
      const S* in = x.ptr<S>();
      // Whether v replaces the current best b: strictly better, or equal when the last index is
      // wanted. NaN beats everything (numpy's argmax/argmin return the first NaN).
      auto better = [&](C v, C b) {
        if constexpr (std::is_floating_point_v<C>) {
          if (b != b) return last_ && v != v;
          if (v != v) return true;
        }
        if (isMax_) return last_ ? v >= b : v > b;
        return last_ ? v <= b : v < b;
      };
      const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(1, n * inner));
      poolOf(ctx).parallelFor(outer, grain, [&](int64_t b, int64_t e) {
        std::vector<C> best(static_cast<size_t>(inner));
        for (int64_t o = b; o < e; o++) {
          const S* slab = in + o * n * inner;
          int64_t* idx = out + o * inner;
          for (int64_t i = 0; i < inner; i++) {
            best[i] = Num<S>::load(slab[i]);
            idx[i] = 0;
          }
          for (int64_t d = 1; d < n; d++) {
            for (int64_t i = 0; i < inner; i++) {
              C v = Num<S>::load(slab[d * inner + i]);
              if (better(v, best[i])) {
                best[i] = v;
                idx[i] = d;
              }
            }
          }
        }
      });
    });
  }
  std::string name() const override { return "reduce." + info_.op; }

 private:
  OpInfo info_;
  bool isMax_;
  int64_t axis_;
  bool keepdims_, last_;
};

// ---- CumSum ---------------------------------------------------------------------------------------

class CumSumKernel final : public Kernel {
 public:
  CumSumKernel(const KernelCreateInfo& info, bool product)
      : info_(info),
        exclusive_(info.node.getInt("exclusive", 0) != 0),
        reverse_(info.node.getInt("reverse", 0) != 0),
        product_(product) {
    if (inputType(info, 0) != DType::Undefined) info_.require(kTypes, inputType(info, 0));
  }

  void run(KernelContext& ctx) const override {
    const Tensor& x = requireInput(ctx, info_, 0);
    const Tensor& axisT = requireInput(ctx, info_, 1);
    if (axisT.numel() != 1) info_.shape("axis must be a scalar, got " + shapeToString(axisT.shape));
    if (axisT.dtype != DType::Int32 && axisT.dtype != DType::Int64) info_.invalid("axis must be int32 or int64");
    Tensor& y = requireOutput(ctx, info_, 0, x.shape);
    const int64_t rank = static_cast<int64_t>(x.shape.size());
    if (rank == 0) info_.shape("input must have rank >= 1");
    const int64_t a = normalizeAxis(axisT.toInt64Vector()[0], rank, info_);
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < a; d++) outer *= x.shape[d];
    for (int64_t d = a + 1; d < rank; d++) inner *= x.shape[d];
    const int64_t n = x.shape[a];
    if (outer * n * inner == 0) return;
    dispatch<kTypes>(x.dtype, info_, [&](auto tag) {
      using S = typename decltype(tag)::type;
      using A = typename AccOf<S>::type;
      const S* in = x.ptr<S>();
      S* out = y.ptr<S>();
      const int64_t grain = std::max<int64_t>(1, kGrain / (n * inner));
      poolOf(ctx).parallelFor(outer, grain, [&](int64_t b, int64_t e) {
        std::vector<A> run(static_cast<size_t>(inner));
        for (int64_t o = b; o < e; o++) {
          std::fill(run.begin(), run.end(), product_ ? A(1) : A(0));
          for (int64_t step = 0; step < n; step++) {
            const int64_t d = reverse_ ? n - 1 - step : step;
            const int64_t base = (o * n + d) * inner;
            for (int64_t i = 0; i < inner; i++) {
              A v = static_cast<A>(Num<S>::load(in[base + i]));
              if (exclusive_) out[base + i] = Num<S>::store(static_cast<typename Num<S>::C>(run[i]));
              run[i] = product_ ? static_cast<A>(run[i] * v) : accAdd(run[i], v);
              if (!exclusive_) out[base + i] = Num<S>::store(static_cast<typename Num<S>::C>(run[i]));
            }
          }
        }
      });
    });
  }
  std::string name() const override { return product_ ? "reduce.CumProd" : "reduce.CumSum"; }

 private:
  static constexpr uint32_t kTypes = kFloats | kI32 | kI64 | kU32 | kU64;
  OpInfo info_;
  bool exclusive_, reverse_, product_;
};

template <Reduction R>
std::unique_ptr<Kernel> makeReduce(const KernelCreateInfo& info) {
  return std::make_unique<ReduceKernel>(info, R);
}
template <bool IsMax>
std::unique_ptr<Kernel> makeArg(const KernelCreateInfo& info) {
  return std::make_unique<ArgReduceKernel>(info, IsMax);
}
std::unique_ptr<Kernel> makeCumSum(const KernelCreateInfo& info) { return std::make_unique<CumSumKernel>(info, false); }
std::unique_ptr<Kernel> makeCumProd(const KernelCreateInfo& info) { return std::make_unique<CumSumKernel>(info, true); }

}  // namespace

KILN_REGISTER_KERNEL(ReduceSum, (KernelDef{"cpu", "", "ReduceSum", 1, makeReduce<Reduction::Sum>}));
KILN_REGISTER_KERNEL(ReduceMean, (KernelDef{"cpu", "", "ReduceMean", 1, makeReduce<Reduction::Mean>}));
KILN_REGISTER_KERNEL(ReduceMax, (KernelDef{"cpu", "", "ReduceMax", 1, makeReduce<Reduction::Max>}));
KILN_REGISTER_KERNEL(ReduceMin, (KernelDef{"cpu", "", "ReduceMin", 1, makeReduce<Reduction::Min>}));
KILN_REGISTER_KERNEL(ReduceProd, (KernelDef{"cpu", "", "ReduceProd", 1, makeReduce<Reduction::Prod>}));
KILN_REGISTER_KERNEL(ReduceL1, (KernelDef{"cpu", "", "ReduceL1", 1, makeReduce<Reduction::L1>}));
KILN_REGISTER_KERNEL(ReduceL2, (KernelDef{"cpu", "", "ReduceL2", 1, makeReduce<Reduction::L2>}));
KILN_REGISTER_KERNEL(ReduceLogSum, (KernelDef{"cpu", "", "ReduceLogSum", 1, makeReduce<Reduction::LogSum>}));
KILN_REGISTER_KERNEL(ReduceLogSumExp, (KernelDef{"cpu", "", "ReduceLogSumExp", 1, makeReduce<Reduction::LogSumExp>}));
KILN_REGISTER_KERNEL(ReduceSumSquare, (KernelDef{"cpu", "", "ReduceSumSquare", 1, makeReduce<Reduction::SumSquare>}));
KILN_REGISTER_KERNEL(ArgMax, (KernelDef{"cpu", "", "ArgMax", 1, makeArg<true>}));
KILN_REGISTER_KERNEL(ArgMin, (KernelDef{"cpu", "", "ArgMin", 1, makeArg<false>}));
KILN_REGISTER_KERNEL(CumSum, (KernelDef{"cpu", "", "CumSum", 11, makeCumSum}));
KILN_REGISTER_KERNEL(CumProd, (KernelDef{"cpu", "", "CumProd", 26, makeCumProd}));

}  // namespace kiln::cpu
