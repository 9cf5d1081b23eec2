// LpNormalization on the CPU: X divided by its L1 or L2 norm along one axis (float types, computed
// in double). A zero vector stays zero. Schema: ops/nn_norm.cc.
#include <cmath>
#include <memory>
#include <string>

#include "backends/cpu/ops/elementwise_util.h"

namespace kiln::cpu {
namespace {

class LpNormKernel final : public Kernel {
 public:
  explicit LpNormKernel(const KernelCreateInfo& info)
      : info_(info), axis_(info.node.getInt("axis", -1)), p_(info.node.getInt("p", 2)) {
    if (p_ != 1 && p_ != 2) info_.invalid("p must be 1 or 2, got " + std::to_string(p_));
    if (inputType(info, 0) != DType::Undefined) info_.require(kTypes, inputType(info, 0));
  }

  void run(KernelContext& ctx) const override {
    const Tensor& x = requireInput(ctx, info_, 0);
    Tensor& y = requireOutput(ctx, info_, 0, x.shape);
    const int64_t rank = static_cast<int64_t>(x.shape.size());
    if (rank == 0) info_.shape("input must have rank >= 1");
    const int64_t a = normalizeAxis(axis_, rank, info_);
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < a; d++) outer *= x.shape[d];
    for (int64_t d = a + 1; d < rank; d++) inner *= x.shape[d];
    const int64_t n = x.shape[a];
    if (x.numel() == 0) return;
    dispatch<kTypes>(x.dtype, info_, [&](auto tag) {
      using S = typename decltype(tag)::type;
      const S* in = x.ptr<S>();
      S* out = y.ptr<S>();
      poolOf(ctx).parallelFor(outer * inner, std::max<int64_t>(1, kGrain / n), [&](int64_t b, int64_t e) {
        for (int64_t oi = b; oi < e; oi++) {
          const int64_t base = (oi / inner) * n * inner + oi % inner;
          double norm = 0;
          for (int64_t k = 0; k < n; k++) {
            const double v = static_cast<double>(Num<S>::load(in[base + k * inner]));
            norm += p_ == 1 ? std::fabs(v) : v * v;
          }
          if (p_ == 2) norm = std::sqrt(norm);
          for (int64_t k = 0; k < n; k++) {
            const double v = static_cast<double>(Num<S>::load(in[base + k * inner]));
            out[base + k * inner] = Num<S>::store(static_cast<typename Num<S>::C>(norm == 0 ? 0.0 : v / norm));
          }
        }
      });
    });
  }
  std::string name() const override { return "norm.LpNormalization"; }

 private:
  static constexpr uint32_t kTypes = kFloats;
  OpInfo info_;
  int64_t axis_, p_;
};

std::unique_ptr<Kernel> makeLpNorm(const KernelCreateInfo& info) { return std::make_unique<LpNormKernel>(info); }

}  // namespace

KILN_REGISTER_KERNEL(LpNormalization, (KernelDef{"cpu", "", "LpNormalization", 1, makeLpNorm}));

}  // namespace kiln::cpu
