// CPU kernels of BatchNormalization (inference, and training_mode from opset 14),
// InstanceNormalization, GroupNormalization (per-group scale of opset 18, per-channel of 21),
// LRN and MeanVarianceNormalization. Planes are [N, C, spatial...] slices processed in parallel
// with the vectorised row primitives of norm_kernels.h. Schemas: ops/nn_norm.cc.
#include <algorithm>
#include <cmath>
#include <memory>

#include "backends/cpu/ops/gemm_common.h"
#include "backends/cpu/ops/norm_kernels.h"

namespace kiln::cpu {
namespace {

using namespace nn;

std::vector<float> channelVector(const Node& node, const Tensor& t, int64_t c, const char* what, DType xType) {
  if (t.numel() != c || t.shape.size() != 1) {
    failAt(node, ErrorCode::ShapeMismatch, std::string("input ") + what + " " + shapeToString(t.shape) + " must be 1-D with " +
                                               std::to_string(c) + " values (the channels of X)");
  }
  requireComputeFloat(node, t.dtype, what);
  FloatView v(t);
  return std::vector<float>(v.data(), v.data() + c);
}

void requireNC(const Node& node, const Tensor& x, size_t minRank) {
  if (x.shape.size() < minRank) {
    failAt(node, ErrorCode::ShapeMismatch, "input X " + shapeToString(x.shape) + " must be at least " +
                                               std::to_string(minRank) + "-D [N, C, ...]");
  }
}

class BatchNormKernel final : public Kernel {
 public:
  explicit BatchNormKernel(const KernelCreateInfo& info) : node_(info.node), opset_(info.opset) {
    requireComputeFloat(node_, info.inputTypes.size() > 0 ? info.inputTypes[0] : DType::Undefined, "input X");
    epsilon_ = node_.getFloat("epsilon", 1e-5f);
    momentum_ = node_.getFloat("momentum", 0.9f);
    training_ = opset_ >= 14 && node_.getInt("training_mode", 0) != 0;
  }

  void run(KernelContext& ctx) const override {
    const Tensor& x = requiredInput(ctx, 0, "X");
    requireNC(node_, x, 2);
    const int64_t N = x.shape[0], C = x.shape[1], S = productOf(x.shape, 2, x.shape.size());
    const std::vector<float> scale = channelVector(node_, requiredInput(ctx, 1, "scale"), C, "scale", x.dtype);
    const std::vector<float> bias = channelVector(node_, requiredInput(ctx, 2, "B"), C, "B", x.dtype);
    const Tensor& meanIn = requiredInput(ctx, 3, "input_mean");
    const Tensor& varIn = requiredInput(ctx, 4, "input_var");
    std::vector<float> mean = channelVector(node_, meanIn, C, "input_mean", x.dtype);
    std::vector<float> var = channelVector(node_, varIn, C, "input_var", x.dtype);
    Tensor& y = requiredOutput(ctx, 0, x.dtype, x.shape);
    Tensor* runningMean = training_ ? optionalOutput(ctx, 1, meanIn.dtype, {C}) : nullptr;
    Tensor* runningVar = training_ ? optionalOutput(ctx, 2, varIn.dtype, {C}) : nullptr;
    FloatView xv(x);
    FloatSink sink(y);
    ThreadPool* pool = computePool(ctx);
    if (training_) {
      // Batch statistics per channel over N and the spatial dims (population variance), as the
      // ONNX reference; running stats blend them into the inputs with `momentum`.
      std::vector<float> batchMean(static_cast<size_t>(C)), batchVar(static_cast<size_t>(C));
      pool->parallelFor(C, 1, [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; c++) {
          double sum = 0, sq = 0;
          for (int64_t n = 0; n < N; n++) {
            const float* p = xv.data() + (n * C + c) * S;
            for (int64_t i = 0; i < S; i++) sum += p[i];
          }
          const double count = double(std::max<int64_t>(1, N * S)), m = sum / count;
          for (int64_t n = 0; n < N; n++) {
            const float* p = xv.data() + (n * C + c) * S;
            for (int64_t i = 0; i < S; i++) sq += (p[i] - m) * (p[i] - m);
          }
          batchMean[size_t(c)] = float(m);
          batchVar[size_t(c)] = float(sq / count);
        }
      });
      std::vector<float> rm(static_cast<size_t>(C)), rv(static_cast<size_t>(C));
      for (int64_t c = 0; c < C; c++) {
        rm[size_t(c)] = mean[size_t(c)] * momentum_ + batchMean[size_t(c)] * (1.f - momentum_);
        rv[size_t(c)] = var[size_t(c)] * momentum_ + batchVar[size_t(c)] * (1.f - momentum_);
      }
      if (runningMean) storeFloats(rm.data(), meanIn.dtype, runningMean->data, C);
      if (runningVar) storeFloats(rv.data(), varIn.dtype, runningVar->data, C);
      mean = batchMean;
      var = batchVar;
    }
    // y = x * a + b per channel with a = scale / sqrt(var + eps), b = bias - mean * a.
    const NormRowKernels& k = normRowKernels();
    pool->parallelFor(N * C, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, S)), [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; p++) {
        const int64_t c = p % C;
        const float a = scale[size_t(c)] / std::sqrt(var[size_t(c)] + epsilon_);
        k.affine(xv.data() + p * S, sink.data() + p * S, S, a, bias[size_t(c)] - mean[size_t(c)] * a);
      }
    });
    sink.commit();
  }

  std::string name() const override { return training_ ? "norm.batch_training" : "norm.batch_inference"; }

 private:
  Node node_;
  int64_t opset_;
  float epsilon_ = 1e-5f, momentum_ = 0.9f;
  bool training_ = false;
};

// InstanceNormalization is GroupNormalization with one channel per group.
class GroupNormKernel final : public Kernel {
 public:
  GroupNormKernel(const KernelCreateInfo& info, bool instance) : node_(info.node), instance_(instance) {
    requireComputeFloat(node_, info.inputTypes.size() > 0 ? info.inputTypes[0] : DType::Undefined, "input X");
    epsilon_ = node_.getFloat("epsilon", 1e-5f);
    groups_ = node_.getInt("num_groups", 1);
    if (!instance_ && groups_ < 1) failAt(node_, ErrorCode::InvalidModel, "num_groups must be >= 1");
  }

  void run(KernelContext& ctx) const override {
    const Tensor& x = requiredInput(ctx, 0, "X");
    requireNC(node_, x, instance_ ? 3 : 2);
    const int64_t N = x.shape[0], C = x.shape[1], S = productOf(x.shape, 2, x.shape.size());
    const int64_t G = instance_ ? C : groups_;
    if (G == 0 || C % G != 0) {
      failAt(node_, ErrorCode::ShapeMismatch, "channels of X " + shapeToString(x.shape) + " are not divisible by num_groups " +
                                                  std::to_string(G));
    }
    const int64_t Cg = C / G;
    const Tensor& scaleT = requiredInput(ctx, 1, "scale");
    const Tensor& biasT = requiredInput(ctx, 2, "bias");
    // GroupNormalization-18 took one scale per group, 21 one per channel; expand to per channel.
    const int64_t perParam = scaleT.numel() == C ? C : G;
    std::vector<float> scale = channelVector(node_, scaleT, perParam, "scale", x.dtype);
    std::vector<float> bias = channelVector(node_, biasT, perParam, "bias", x.dtype);
    if (perParam != C) {
      std::vector<float> s(static_cast<size_t>(C)), b(static_cast<size_t>(C));
      for (int64_t c = 0; c < C; c++) {
        s[size_t(c)] = scale[size_t(c / Cg)];
        b[size_t(c)] = bias[size_t(c / Cg)];
      }
      scale.swap(s);
      bias.swap(b);
    }
    Tensor& y = requiredOutput(ctx, 0, x.dtype, x.shape);
    FloatView xv(x);
    FloatSink sink(y);
    const NormRowKernels& k = normRowKernels();
    const int64_t groupSize = Cg * S;
    computePool(ctx)->parallelFor(N * G, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, groupSize)), [&](int64_t g0, int64_t g1) {
      for (int64_t ng = g0; ng < g1; ng++) {
        const float* xg = xv.data() + ng * groupSize;
        float* yg = sink.data() + ng * groupSize;
        float mean, inv;
        k.moments(xg, groupSize, epsilon_, &mean, &inv);
        for (int64_t ci = 0; ci < Cg; ci++) {
          const int64_t c = (ng % G) * Cg + ci;
          const float a = scale[size_t(c)] * inv;
          k.affine(xg + ci * S, yg + ci * S, S, a, bias[size_t(c)] - mean * a);
        }
      }
    });
    sink.commit();
  }

  std::string name() const override { return instance_ ? "norm.instance" : "norm.group"; }

 private:
  Node node_;
  bool instance_;
  float epsilon_ = 1e-5f;
  int64_t groups_ = 1;
};

// LRN: y = x / (bias + alpha / size * sum of x^2 over the `size` neighbouring channels)^beta.
class LRNKernel final : public Kernel {
 public:
  explicit LRNKernel(const KernelCreateInfo& info) : node_(info.node) {
    requireComputeFloat(node_, info.inputTypes.size() > 0 ? info.inputTypes[0] : DType::Undefined, "input X");
    alpha_ = node_.getFloat("alpha", 1e-4f);
    beta_ = node_.getFloat("beta", 0.75f);
    bias_ = node_.getFloat("bias", 1.f);
    size_ = node_.getInt("size", 0);
    if (size_ < 1) failAt(node_, ErrorCode::InvalidModel, "attribute size must be >= 1");
  }

  void run(KernelContext& ctx) const override {
    const Tensor& x = requiredInput(ctx, 0, "X");
    requireNC(node_, x, 2);
    const int64_t N = x.shape[0], C = x.shape[1], S = productOf(x.shape, 2, x.shape.size());
    Tensor& y = requiredOutput(ctx, 0, x.dtype, x.shape);
    FloatView xv(x);
    FloatSink sink(y);
    const int64_t before = (size_ - 1) / 2, after = size_ - 1 - before;  // floor / ceil of (size-1)/2
    computePool(ctx)->parallelFor(N * C, 1, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; p++) {
        const int64_t n = p / C, c = p % C;
        const int64_t lo = std::max<int64_t>(0, c - before), hi = std::min<int64_t>(C - 1, c + after);
        for (int64_t i = 0; i < S; i++) {
          double sq = 0;
          for (int64_t cc = lo; cc <= hi; cc++) {
            const double v = xv.data()[(n * C + cc) * S + i];
            sq += v * v;
          }
          const double denom = std::pow(double(bias_) + double(alpha_) / double(size_) * sq, double(beta_));
          sink.data()[p * S + i] = float(xv.data()[p * S + i] / denom);
        }
      }
    });
    sink.commit();
  }

  std::string name() const override { return "norm.lrn"; }

 private:
  Node node_;
  float alpha_, beta_, bias_;
  int64_t size_;
};

// MeanVarianceNormalization over `axes` (default N and the spatial dims of NCHW):
// y = (x - mean) / (sqrt(E[x^2] - mean^2) + 1e-9), as the ONNX function body.
class MVNKernel final : public Kernel {
 public:
  explicit MVNKernel(const KernelCreateInfo& info) : node_(info.node) {
    requireComputeFloat(node_, info.inputTypes.size() > 0 ? info.inputTypes[0] : DType::Undefined, "input X");
    axes_ = node_.getInts("axes", {0, 2, 3});
  }

  void run(KernelContext& ctx) const override {
    const Tensor& x = requiredInput(ctx, 0, "X");
    const int64_t rank = int64_t(x.shape.size());
    std::vector<bool> reduced(static_cast<size_t>(rank), false);
    for (int64_t a : axes_) {
      if (a < -rank || a >= rank) {
        failAt(node_, ErrorCode::ShapeMismatch, "axis " + std::to_string(a) + " is out of range for X " + shapeToString(x.shape));
      }
      reduced[size_t(a < 0 ? a + rank : a)] = true;
    }
    Tensor& y = requiredOutput(ctx, 0, x.dtype, x.shape);
    const int64_t total = x.numel();
    if (total == 0) return;
    // Group id of each element = its flat index over the kept dims.
    int64_t groups = 1;
    for (int64_t d = 0; d < rank; d++) groups *= reduced[size_t(d)] ? 1 : x.shape[size_t(d)];
    std::vector<double> sum(static_cast<size_t>(groups), 0.0), sq(static_cast<size_t>(groups), 0.0), count(static_cast<size_t>(groups), 0.0);
    std::vector<int64_t> groupOf(static_cast<size_t>(total));
    std::vector<int64_t> idx(static_cast<size_t>(rank), 0);
    FloatView xv(x);
    for (int64_t i = 0; i < total; i++) {
      int64_t g = 0;
      for (int64_t d = 0; d < rank; d++) {
        if (!reduced[size_t(d)]) g = g * x.shape[size_t(d)] + idx[size_t(d)];
      }
      groupOf[size_t(i)] = g;
      const double v = xv.data()[i];
      sum[size_t(g)] += v;
      sq[size_t(g)] += v * v;
      count[size_t(g)] += 1;
      for (int64_t d = rank; d-- > 0;) {
        if (++idx[size_t(d)] < x.shape[size_t(d)]) break;
        idx[size_t(d)] = 0;
      }
    }
    FloatSink sink(y);
    for (int64_t i = 0; i < total; i++) {
      const size_t g = size_t(groupOf[size_t(i)]);
      const double mean = sum[g] / count[g];
      const double var = std::max(0.0, sq[g] / count[g] - mean * mean);
      sink.data()[i] = float((xv.data()[i] - mean) / (std::sqrt(var) + 1e-9));
    }
    sink.commit();
  }

  std::string name() const override { return "norm.mean_variance"; }

 private:
  Node node_;
  std::vector<int64_t> axes_;
};

std::unique_ptr<Kernel> createBatchNorm(const KernelCreateInfo& info) { return std::make_unique<BatchNormKernel>(info); }
std::unique_ptr<Kernel> createInstanceNorm(const KernelCreateInfo& info) {
  return std::make_unique<GroupNormKernel>(info, true);
}
std::unique_ptr<Kernel> createGroupNorm(const KernelCreateInfo& info) { return std::make_unique<GroupNormKernel>(info, false); }
std::unique_ptr<Kernel> createLRN(const KernelCreateInfo& info) { return std::make_unique<LRNKernel>(info); }
std::unique_ptr<Kernel> createMVN(const KernelCreateInfo& info) { return std::make_unique<MVNKernel>(info); }

}  // namespace

KILN_REGISTER_KERNEL(BatchNormalization, (KernelDef{"cpu", "", "BatchNormalization", 1, createBatchNorm}));
KILN_REGISTER_KERNEL(InstanceNormalization, (KernelDef{"cpu", "", "InstanceNormalization", 1, createInstanceNorm}));
KILN_REGISTER_KERNEL(GroupNormalization, (KernelDef{"cpu", "", "GroupNormalization", 18, createGroupNorm}));
KILN_REGISTER_KERNEL(LRN, (KernelDef{"cpu", "", "LRN", 1, createLRN}));
KILN_REGISTER_KERNEL(MeanVarianceNormalization, (KernelDef{"cpu", "", "MeanVarianceNormalization", 9, createMVN}));

}  // namespace kiln::cpu
