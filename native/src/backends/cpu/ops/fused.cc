// CPU kernel of kiln.Gelu (approximate = "none": x/2 (1 + erf(x/sqrt 2)); "tanh": the tanh form),
// the GELU pattern fusion's output, running the same vectorised activation as the GEMM epilogues.
// The other kiln ops' kernels live with their families: FusedConv in conv.cc, FusedGemm in
// gemm.cc, FusedMatMul in matmul.cc, LayerNormalization in norm_layer.cc, Attention in
// attention.cc. Schemas: ops/fused.cc.
#include <algorithm>
#include <memory>

#include "backends/cpu/ops/gemm_common.h"

namespace kiln::cpu {
namespace {

using namespace nn;

class GeluKernel final : public Kernel {
 public:
  explicit GeluKernel(const KernelCreateInfo& info) : node_(info.node) {
    requireComputeFloat(node_, info.inputTypes.size() > 0 ? info.inputTypes[0] : DType::Undefined, "input X");
    const std::string approximate = node_.getString("approximate", "none");
    if (approximate == "none") act_.kind = Activation::Gelu;
    else if (approximate == "tanh") act_.kind = Activation::GeluTanh;
    else failAt(node_, ErrorCode::InvalidModel, "approximate must be \"none\" or \"tanh\", got \"" + approximate + "\"");
  }

  void run(KernelContext& ctx) const override {
    const Tensor& x = requiredInput(ctx, 0, "X");
    Tensor& y = requiredOutput(ctx, 0, x.dtype, x.shape);
    const int64_t n = x.numel();
    if (n == 0) return;
    if (x.dtype == DType::Float32) {
      const float* in = x.ptr<float>();
      float* out = y.ptr<float>();
      computePool(ctx)->parallelFor(n, 16384, [&](int64_t b, int64_t e) {
        if (out != in) std::copy(in + b, in + e, out + b);
        applyActivation(out + b, e - b, act_);
      });
      return;
    }
    FloatView xv(x);
    FloatSink sink(y);
    std::copy(xv.data(), xv.data() + n, sink.data());
    computePool(ctx)->parallelFor(n, 16384, [&](int64_t b, int64_t e) { applyActivation(sink.data() + b, e - b, act_); });
    sink.commit();
  }

  std::string name() const override { return std::string("gelu.") + (act_.kind == Activation::Gelu ? "erf." : "tanh.") + sgemmTactic(); }

 private:
  Node node_;  // a copy: the kernel may outlive the graph it was built from
  ActivationSpec act_;
};

std::unique_ptr<Kernel> createGelu(const KernelCreateInfo& info) { return std::make_unique<GeluKernel>(info); }

}  // namespace

KILN_REGISTER_KERNEL(Gelu, (KernelDef{"cpu", "kiln", "Gelu", 1, createGelu}));

}  // namespace kiln::cpu
