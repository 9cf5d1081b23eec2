// CPU kernels of Softmax, LogSoftmax and Hardmax. The input is viewed as [outer, axis, inner]:
// before opset 13 the whole trailing block from `axis` is one row (inner = 1); from 13 only the dim
// `axis` is normalised. Rows with inner = 1 (the usual last-axis case) are contiguous and use the
// vectorized exp-and-sum; inner > 1 processes a whole [axis, inner] slab with per-column running
// values. float16/bfloat16 go through float32 buffers. Schemas: ops/softmax.cc.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "backends/cpu/ops/elementwise_util.h"
#include "backends/cpu/vec_math.h"

namespace kiln::cpu {
namespace {

enum class Mode { Softmax, LogSoftmax, Hardmax };

// One [axis, inner] slab of compute type C (float or double); x and y may alias.
template <class C>
void slab(Mode mode, const C* x, C* y, int64_t axis, int64_t inner, std::vector<C>& acc) {
  if (mode == Mode::Hardmax) {
    // First maximum along the axis gets 1, everything else 0 (NaN counts as a maximum, as
    // numpy's argmax does).
    for (int64_t i = 0; i < inner; i++) {
      int64_t best = 0;
      for (int64_t d = 1; d < axis; d++) {
        C v = x[d * inner + i], b = x[best * inner + i];
        if (b == b && (v > b || v != v)) best = d;
      }
      for (int64_t d = 0; d < axis; d++) y[d * inner + i] = d == best ? C(1) : C(0);
    }
    return;
  }
  if (inner == 1) {
    // Softmax keeps the exponentials in y; LogSoftmax still needs x afterwards (and y may alias
    // it), so its exponentials go to scratch.
    C* e = y;
    if (mode == Mode::LogSoftmax) {
      acc.resize(static_cast<size_t>(axis));
      e = acc.data();
    }
    C m, sum = 0;
    if constexpr (std::is_same_v<C, float>) {
      m = vecMax(x, axis);
      if (std::isinf(m) && m < 0) m = 0;  // all -inf: exp(x - 0) = 0, the row becomes NaN as in numpy
      sum = vecExpShiftSum(x, e, axis, m);
    } else {
      m = -std::numeric_limits<C>::infinity();
      for (int64_t d = 0; d < axis; d++) m = (x[d] > m || x[d] != x[d]) ? x[d] : m;
      if (std::isinf(m) && m < 0) m = 0;
      for (int64_t d = 0; d < axis; d++) {
        e[d] = std::exp(x[d] - m);
        sum += e[d];
      }
    }
    if (mode == Mode::Softmax) {
      C inv = C(1) / sum;
      for (int64_t d = 0; d < axis; d++) y[d] *= inv;
    } else {
      // (x - m) - log(sum), not x - (m + log(sum)): m + log(sum) would round away the log term
      // when m is large.
      C logSum = std::log(sum);
      for (int64_t d = 0; d < axis; d++) y[d] = (x[d] - m) - logSum;
    }
    return;
  }
  // Strided case: columns i of the slab, processed row by row so the inner loops are contiguous.
  acc.assign(2 * inner, C(0));
  C* m = acc.data();
  C* sum = acc.data() + inner;
  for (int64_t i = 0; i < inner; i++) m[i] = -std::numeric_limits<C>::infinity();
  for (int64_t d = 0; d < axis; d++) {
    const C* row = x + d * inner;
    for (int64_t i = 0; i < inner; i++) m[i] = (row[i] > m[i] || row[i] != row[i]) ? row[i] : m[i];
  }
  for (int64_t i = 0; i < inner; i++) {
    if (std::isinf(m[i]) && m[i] < 0) m[i] = 0;
  }
  // y may alias x, and LogSoftmax needs x after the sums: keep exp values in y only for Softmax.
  for (int64_t d = 0; d < axis; d++) {
    const C* row = x + d * inner;
    C* out = y + d * inner;
    for (int64_t i = 0; i < inner; i++) {
      C e = std::exp(row[i] - m[i]);
      sum[i] += e;
      if (mode == Mode::Softmax) out[i] = e;
    }
  }
  for (int64_t d = 0; d < axis; d++) {
    const C* row = x + d * inner;
    C* out = y + d * inner;
    if (mode == Mode::Softmax) {
      for (int64_t i = 0; i < inner; i++) out[i] /= sum[i];
    } else {
      for (int64_t i = 0; i < inner; i++) out[i] = (row[i] - m[i]) - std::log(sum[i]);
    }
  }
}

class SoftmaxKernel final : public Kernel {
 public:
  SoftmaxKernel(const KernelCreateInfo& info, Mode mode)
      : info_(info), mode_(mode), axisAttr_(info.node.getInt("axis", info.opset >= 13 ? -1 : 1)) {
    if (inputType(info, 0) != DType::Undefined) info_.require(kFloats, inputType(info, 0));
  }

  void run(KernelContext& ctx) const override {
    const Tensor& x = requireInput(ctx, info_, 0);
    Tensor& y = requireOutput(ctx, info_, 0, x.shape);
    const int64_t rank = static_cast<int64_t>(x.shape.size());
    int64_t outer = 1, axis = 1, inner = 1;
    if (info_.opset >= 13) {
      int64_t a = normalizeAxis(axisAttr_, rank, info_);
      for (int64_t d = 0; d < a; d++) outer *= x.shape[d];
      axis = x.shape[a];
      for (int64_t d = a + 1; d < rank; d++) inner *= x.shape[d];
    } else {
      // Coerced to 2-D [prod(shape[:a]), prod(shape[a:])]; a == rank is allowed.
      int64_t a = axisAttr_ < 0 ? axisAttr_ + rank : axisAttr_;
      if (a < 0 || a > rank) info_.invalid("axis " + std::to_string(axisAttr_) + " is out of range for rank " + std::to_string(rank));
      for (int64_t d = 0; d < a; d++) outer *= x.shape[d];
      for (int64_t d = a; d < rank; d++) axis *= x.shape[d];
    }
    if (outer * axis * inner == 0) return;
    const int64_t slabSize = axis * inner;
    const int64_t grain = std::max<int64_t>(1, kGrain / slabSize);
    dispatch<kFloats>(x.dtype, info_, [&](auto tag) {
      using S = typename decltype(tag)::type;
      using C = typename Num<S>::C;
      const S* in = x.ptr<S>();
      S* out = y.ptr<S>();
      poolOf(ctx).parallelFor(outer, grain, [&](int64_t b, int64_t e) {
        std::vector<C> acc;
        if constexpr (std::is_same_v<S, float> || std::is_same_v<S, double>) {
          for (int64_t o = b; o < e; o++) slab<C>(mode_, in + o * slabSize, out + o * slabSize, axis, inner, acc);
        } else {
          std::vector<float> buf(static_cast<size_t>(slabSize));
          for (int64_t o = b; o < e; o++) {
            for (int64_t i = 0; i < slabSize; i++) buf[i] = Num<S>::load(in[o * slabSize + i]);
            slab<float>(mode_, buf.data(), buf.data(), axis, inner, acc);
            for (int64_t i = 0; i < slabSize; i++) out[o * slabSize + i] = Num<S>::store(buf[i]);
          }
        }
      });
    });
  }
  std::string name() const override { return "softmax." + info_.op; }

 private:
  OpInfo info_;
  Mode mode_;
  int64_t axisAttr_;
};

template <Mode M>
std::unique_ptr<Kernel> make(const KernelCreateInfo& info) {
  return std::make_unique<SoftmaxKernel>(info, M);
}

}  // namespace

KILN_REGISTER_KERNEL(Softmax, (KernelDef{"cpu", "", "Softmax", 1, make<Mode::Softmax>}));
KILN_REGISTER_KERNEL(LogSoftmax, (KernelDef{"cpu", "", "LogSoftmax", 1, make<Mode::LogSoftmax>}));
KILN_REGISTER_KERNEL(Hardmax, (KernelDef{"cpu", "", "Hardmax", 1, make<Mode::Hardmax>}));

}  // namespace kiln::cpu
