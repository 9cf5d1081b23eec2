// CPU kernel of Det: LU decomposition with partial pivoting per matrix, in double precision (the
// matrices in models are small; accuracy matters more than speed here). Schema: ops/reduce_det.cc.
#include <cmath>
#include <memory>
#include <vector>

#include "backends/cpu/ops/elementwise_util.h"

namespace kiln::cpu {
namespace {

double determinant(std::vector<double>& a, int64_t n) {
  double det = 1.0;
  for (int64_t k = 0; k < n; k++) {
    int64_t pivot = k;
    for (int64_t i = k + 1; i < n; i++) {
      if (std::fabs(a[i * n + k]) > std::fabs(a[pivot * n + k])) pivot = i;
    }
    if (a[pivot * n + k] == 0.0) return 0.0;  // singular
    if (pivot != k) {
      for (int64_t j = 0; j < n; j++) std::swap(a[k * n + j], a[pivot * n + j]);
      det = -det;
    }
    const double p = a[k * n + k];
    det *= p;
    for (int64_t i = k + 1; i < n; i++) {
      const double f = a[i * n + k] / p;
      for (int64_t j = k + 1; j < n; j++) a[i * n + j] -= f * a[k * n + j];
    }
  }
  return det;
}

class DetKernel final : public Kernel {
 public:
  explicit DetKernel(const KernelCreateInfo& info) : info_(info) {
    if (inputType(info, 0) != DType::Undefined) info_.require(kFloats, inputType(info, 0));
  }
  void run(KernelContext& ctx) const override {
    const Tensor& x = requireInput(ctx, info_, 0);
    const size_t rank = x.shape.size();
    if (rank < 2 || x.shape[rank - 1] != x.shape[rank - 2]) {
      info_.shape("input must be a batch of square matrices, got " + shapeToString(x.shape));
    }
    Shape outShape(x.shape.begin(), x.shape.end() - 2);
    Tensor& y = requireOutput(ctx, info_, 0, outShape);
    const int64_t n = x.shape[rank - 1], count = shapeNumel(outShape);
    dispatch<kFloats>(x.dtype, info_, [&](auto tag) {
      using S = typename decltype(tag)::type;
      using C = typename Num<S>::C;
      const S* in = x.ptr<S>();
      S* out = y.ptr<S>();
      std::vector<double> a(static_cast<size_t>(n * n));
      for (int64_t b = 0; b < count; b++) {
        for (int64_t i = 0; i < n * n; i++) a[i] = static_cast<double>(Num<S>::load(in[b * n * n + i]));
        out[b] = Num<S>::store(static_cast<C>(determinant(a, n)));
      }
    });
  }
  std::string name() const override { return "reduce.Det"; }

 private:
  OpInfo info_;
};

std::unique_ptr<Kernel> makeDet(const KernelCreateInfo& info) { return std::make_unique<DetKernel>(info); }

}  // namespace

KILN_REGISTER_KERNEL(Det, (KernelDef{"cpu", "", "Det", 11, makeDet}));

}  // namespace kiln::cpu
