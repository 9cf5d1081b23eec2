// NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss on the CPU (float types, computed in
// double), following the ONNX reference: loss[n, d] = -w[t] * logp[n, t, d] with t = target[n, d]
// (0 where t == ignore_index); "mean" divides by the summed weights when weights or an ignore_index
// are given, else by the element count. Schemas: ops/nn_loss.cc.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "backends/cpu/ops/elementwise_util.h"

namespace kiln::cpu {
namespace {

class LossKernel final : public Kernel {
 public:
  LossKernel(const KernelCreateInfo& info, bool softmax)
      : info_(info),
        softmax_(softmax),
        reduction_(info.node.getString("reduction", "mean")),
        hasIgnore_(info.node.has("ignore_index")),
        ignore_(info.node.getInt("ignore_index", 0)) {
    if (inputType(info, 0) != DType::Undefined) info_.require(kFloats, inputType(info, 0));
  }

  void run(KernelContext& ctx) const override {
    const Tensor& x = requireInput(ctx, info_, 0);
    const Tensor& target = requireInput(ctx, info_, 1);
    const Tensor* weight = ctx.inputs.size() > 2 ? ctx.inputs[2] : nullptr;
    if (x.shape.size() < 2) info_.shape("input must have rank >= 2, got " + shapeToString(x.shape));
    const int64_t N = x.shape[0], C = x.shape[1];
    const Shape targetShape(x.shape.begin() + 2, x.shape.end());
    Shape wantTarget{N};
    wantTarget.insert(wantTarget.end(), targetShape.begin(), targetShape.end());
    if (target.shape != wantTarget) info_.shape("target " + shapeToString(target.shape) + " must be " + shapeToString(wantTarget));
    if (target.dtype != DType::Int32 && target.dtype != DType::Int64) info_.invalid("target must be int32 or int64");
    if (weight && (weight->shape != Shape{C} || weight->dtype != x.dtype)) {
      info_.shape("weight must be [" + std::to_string(C) + "] of the input's type, got " + shapeToString(weight->shape));
    }
    const int64_t D = shapeNumel(targetShape);
    const std::vector<int64_t> labels = target.toInt64Vector();
    std::vector<double> in((size_t)x.numel()), w;
    dispatch<kFloats>(x.dtype, info_, [&](auto tag) {
      using S = typename decltype(tag)::type;
      for (int64_t i = 0; i < x.numel(); i++) in[(size_t)i] = static_cast<double>(Num<S>::load(x.ptr<S>()[i]));
      if (weight) {
        w.resize((size_t)C);
        for (int64_t c = 0; c < C; c++) w[(size_t)c] = static_cast<double>(Num<S>::load(weight->ptr<S>()[c]));
      }
    });
    if (softmax_) {
      for (int64_t n = 0; n < N; n++) {
        for (int64_t d = 0; d < D; d++) {
          double m = -INFINITY, sum = 0;
          for (int64_t c = 0; c < C; c++) m = std::max(m, in[(size_t)((n * C + c) * D + d)]);
          for (int64_t c = 0; c < C; c++) sum += std::exp(in[(size_t)((n * C + c) * D + d)] - m);
          const double logSum = std::log(sum) + m;
          for (int64_t c = 0; c < C; c++) in[(size_t)((n * C + c) * D + d)] -= logSum;
        }
      }
    }
    std::vector<double> loss((size_t)(N * D));
    double weightSum = 0;
    for (int64_t n = 0; n < N; n++) {
      for (int64_t d = 0; d < D; d++) {
        const int64_t t = labels[(size_t)(n * D + d)];
        if (hasIgnore_ && t == ignore_) continue;
        if (t < 0 || t >= C) info_.shape("target value " + std::to_string(t) + " is outside [0, " + std::to_string(C) + ")");
        const double wt = weight ? w[(size_t)t] : 1.0;
        loss[(size_t)(n * D + d)] = -in[(size_t)((n * C + t) * D + d)] * wt;
        weightSum += wt;
      }
    }
    // The reference divides by the weights only when it built them: NLL without weights and with
    // ignore_index == -1 averages over every element, ignored ones included.
    const bool byWeights = weight || (hasIgnore_ && (softmax_ || ignore_ != -1));
    std::vector<double> result;
    if (reduction_ == "none") {
      result = loss;
    } else {
      double total = 0;
      for (double v : loss) total += v;
      if (reduction_ == "mean") total = byWeights ? total / weightSum : total / double(std::max<int64_t>(1, N * D));
      result = {total};
    }
    Tensor& out = requireOutput(ctx, info_, 0, reduction_ == "none" ? wantTarget : Shape{});
    Tensor* logProb = softmax_ && ctx.outputs.size() > 1 ? ctx.outputs[1] : nullptr;
    dispatch<kFloats>(x.dtype, info_, [&](auto tag) {
      using S = typename decltype(tag)::type;
      using C2 = typename Num<S>::C;
      for (size_t i = 0; i < result.size(); i++) out.ptr<S>()[i] = Num<S>::store(static_cast<C2>(result[i]));
      if (logProb) {
        for (size_t i = 0; i < in.size(); i++) logProb->ptr<S>()[i] = Num<S>::store(static_cast<C2>(in[i]));
      }
    });
  }
  std::string name() const override { return softmax_ ? "loss.softmax_cross_entropy" : "loss.nll"; }

 private:
  OpInfo info_;
  bool softmax_;
  std::string reduction_;
  bool hasIgnore_;
  int64_t ignore_;
};

template <bool Softmax>
std::unique_ptr<Kernel> makeLoss(const KernelCreateInfo& info) {
  return std::make_unique<LossKernel>(info, Softmax);
}

}  // namespace

KILN_REGISTER_KERNEL(NegativeLogLikelihoodLoss, (KernelDef{"cpu", "", "NegativeLogLikelihoodLoss", 12, makeLoss<false>}));
KILN_REGISTER_KERNEL(SoftmaxCrossEntropyLoss, (KernelDef{"cpu", "", "SoftmaxCrossEntropyLoss", 12, makeLoss<true>}));

}  // namespace kiln::cpu
