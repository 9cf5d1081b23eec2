// CPU kernels of GlobalAveragePool, GlobalMaxPool and GlobalLpPool: one reduction per (N, C) plane
// over all spatial positions, planes in parallel; output [N, C, 1, ...]. Schemas: ops/nn_pool.cc.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>

#include "backends/cpu/ops/gemm_common.h"

namespace kiln::cpu {
namespace {

using namespace nn;

enum class GlobalMode { Average, Max, Lp };

class GlobalPoolKernel final : public Kernel {
 public:
  GlobalPoolKernel(const KernelCreateInfo& info, GlobalMode mode) : node_(info.node), mode_(mode) {
    requireComputeFloat(node_, info.inputTypes.size() > 0 ? info.inputTypes[0] : DType::Undefined, "input X");
    p_ = double(node_.getInt("p", 2));
    if (mode == GlobalMode::Lp && p_ <= 0) failAt(node_, ErrorCode::InvalidModel, "p must be positive");
  }

  void run(KernelContext& ctx) const override {
    const Tensor& x = requiredInput(ctx, 0, "X");
    if (x.shape.size() < 2) {
      failAt(node_, ErrorCode::ShapeMismatch, "input X " + shapeToString(x.shape) + " must be at least 2-D [N, C, ...]");
    }
    Shape yShape = x.shape;
    for (size_t d = 2; d < yShape.size(); d++) yShape[d] = 1;
    Tensor& y = requiredOutput(ctx, 0, x.dtype, yShape);
    const int64_t planes = x.shape[0] * x.shape[1];
    const int64_t size = productOf(x.shape, 2, x.shape.size());
    if (planes == 0) return;
    FloatView xv(x);
    FloatSink sink(y);
    const float* xp = xv.data();
    float* yp = sink.data();
    computePool(ctx)->parallelFor(planes, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, size)), [&](int64_t b, int64_t e) {
      for (int64_t plane = b; plane < e; plane++) {
        const float* v = xp + plane * size;
        switch (mode_) {
          case GlobalMode::Average: {
            double acc = 0;
            for (int64_t i = 0; i < size; i++) acc += v[i];
            yp[plane] = size > 0 ? float(acc / double(size)) : std::nanf("");
            break;
          }
          case GlobalMode::Max: {
            float m = -std::numeric_limits<float>::infinity();
            for (int64_t i = 0; i < size; i++) m = v[i] > m ? v[i] : m;
            yp[plane] = m;
            break;
          }
          case GlobalMode::Lp: {
            double acc = 0;
            for (int64_t i = 0; i < size; i++) acc += std::pow(std::fabs(double(v[i])), p_);
            yp[plane] = float(std::pow(acc, 1.0 / p_));
            break;
          }
        }
      }
    });
    sink.commit();
  }

  std::string name() const override {
    switch (mode_) {
      case GlobalMode::Average: return "pool.global_average";
      case GlobalMode::Max: return "pool.global_max";
      case GlobalMode::Lp: return "pool.global_lp";
    }
    return "pool.global";
  }

 private:
  Node node_;  // a copy: the kernel may outlive the graph it was built from
  GlobalMode mode_;
  double p_ = 2;
};

template <GlobalMode M>
std::unique_ptr<Kernel> create(const KernelCreateInfo& info) {
  return std::make_unique<GlobalPoolKernel>(info, M);
}

}  // namespace

KILN_REGISTER_KERNEL(GlobalAveragePool, (KernelDef{"cpu", "", "GlobalAveragePool", 1, create<GlobalMode::Average>}));
KILN_REGISTER_KERNEL(GlobalMaxPool, (KernelDef{"cpu", "", "GlobalMaxPool", 1, create<GlobalMode::Max>}));
KILN_REGISTER_KERNEL(GlobalLpPool, (KernelDef{"cpu", "", "GlobalLpPool", 1, create<GlobalMode::Lp>}));

}  // namespace kiln::cpu
