// CPU kernels of LayerNormalization (opset 17) and kiln.LayerNormalization (the same op at any
// opset, produced by the LayerNorm fusion): rows = X[:axis] flattened, each normalized over
// X[axis:] with vectorised two-pass moments, then Scale/Bias (broadcast onto X[axis:]). Optional
// Mean / InvStdDev outputs in stash_type. Schemas: ops/nn_norm.cc, ops/fused.cc.
#include <algorithm>
#include <cmath>
#include <memory>

#include "backends/cpu/ops/gemm_common.h"
#include "backends/cpu/ops/norm_kernels.h"

namespace kiln::cpu {
namespace {

using namespace nn;

// Expands `t` (broadcastable onto `target`, numpy rules) to target's full size.
std::vector<float> broadcastTo(const Node& node, const Tensor& t, const Shape& target, const char* what) {
  const int64_t n = shapeNumel(target);
  FloatView v(t);
  // Leading 1s never matter ([1, 768] scales a [768] row like [768] does).
  Shape ts = t.shape;
  while (!ts.empty() && ts.front() == 1) ts.erase(ts.begin());
  if (ts.size() > target.size()) {
    failAt(node, ErrorCode::ShapeMismatch, std::string(what) + " " + shapeToString(t.shape) +
                                               " has more dims than the normalized shape " + shapeToString(target));
  }
  // Strides of t aligned right onto target, 0 where broadcast.
  std::vector<int64_t> stride(target.size(), 0);
  int64_t s = 1;
  for (size_t k = 0; k < ts.size(); k++) {
    const size_t td = ts.size() - 1 - k, d = target.size() - 1 - k;
    if (ts[td] != 1 && ts[td] != target[d]) {
      failAt(node, ErrorCode::ShapeMismatch, std::string(what) + " " + shapeToString(t.shape) +
                                                 " does not broadcast to the normalized shape " + shapeToString(target));
    }
    stride[d] = ts[td] == 1 ? 0 : s;
    s *= ts[td];
  }
  if (t.numel() == n) return std::vector<float>(v.data(), v.data() + n);  // compatible and full: as is
  std::vector<float> out(static_cast<size_t>(n));
  std::vector<int64_t> idx(target.size(), 0);
  for (int64_t i = 0; i < n; i++) {
    int64_t off = 0;
    for (size_t d = 0; d < target.size(); d++) off += idx[d] * stride[d];
    out[size_t(i)] = v.data()[off];
    for (size_t d = target.size(); d-- > 0;) {
      if (++idx[d] < target[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

class LayerNormKernel final : public Kernel {
 public:
  LayerNormKernel(const KernelCreateInfo& info, bool fused, bool rms = false) : node_(info.node), fused_(fused), rms_(rms) {
    requireComputeFloat(node_, info.inputTypes.size() > 0 ? info.inputTypes[0] : DType::Undefined, "input X");
    axis_ = node_.getInt("axis", -1);
    epsilon_ = node_.getFloat("epsilon", 1e-5f);
    stash_ = static_cast<DType>(node_.getInt("stash_type", 1));
    if (!isComputeFloat(stash_)) failAt(node_, ErrorCode::InvalidModel, "stash_type must be a floating type");
  }

  void run(KernelContext& ctx) const override {
    const Tensor& x = requiredInput(ctx, 0, "X");
    const Tensor& scale = requiredInput(ctx, 1, "Scale");
    const Tensor* bias = optionalInput(ctx, 2);
    const int64_t rank = int64_t(x.shape.size());
    int64_t axis = axis_;
    if (axis < -rank || axis >= rank) {
      failAt(node_, ErrorCode::ShapeMismatch, "axis " + std::to_string(axis_) + " is out of range for X " + shapeToString(x.shape));
    }
    if (axis < 0) axis += rank;
    const Shape normShape(x.shape.begin() + axis, x.shape.end());
    const int64_t rows = productOf(x.shape, 0, size_t(axis)), n = shapeNumel(normShape);
    Tensor& y = requiredOutput(ctx, 0, x.dtype, x.shape);
    Shape statShape = x.shape;
    for (int64_t d = axis; d < rank; d++) statShape[size_t(d)] = 1;
    Tensor* meanOut = optionalOutput(ctx, 1, stash_, statShape);
    Tensor* invOut = optionalOutput(ctx, 2, stash_, statShape);
    if (x.numel() == 0) return;
    for (const Tensor* t : {&scale, bias}) {
      if (t && t->dtype != x.dtype) failAt(node_, ErrorCode::DTypeMismatch, "Scale/Bias type differs from X");
    }
    const std::vector<float> s = broadcastTo(node_, scale, normShape, "Scale");
    std::vector<float> b;
    if (bias) b = broadcastTo(node_, *bias, normShape, "Bias");
    std::vector<float> means(meanOut ? size_t(rows) : 0), invs(invOut ? size_t(rows) : 0);
    FloatView xv(x);
    FloatSink sink(y);
    const NormRowKernels& k = normRowKernels();
    computePool(ctx)->parallelFor(rows, std::max<int64_t>(1, 8192 / std::max<int64_t>(1, n)), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; r++) {
        float mean, inv;
        if (rms_) {
          // RMSNormalization: x / sqrt(mean(x^2) + epsilon), no centring.
          double squares = 0;
          const float* row = xv.data() + r * n;
          for (int64_t i = 0; i < n; i++) squares += double(row[i]) * row[i];
          mean = 0.f;
          inv = float(1.0 / std::sqrt(squares / double(n) + double(epsilon_)));
        } else {
          k.moments(xv.data() + r * n, n, epsilon_, &mean, &inv);
        }
        k.normalize(xv.data() + r * n, sink.data() + r * n, n, mean, inv, s.data(), bias ? b.data() : nullptr);
        if (meanOut) means[size_t(r)] = mean;
        if (invOut) invs[size_t(r)] = inv;
      }
    });
    sink.commit();
    if (meanOut) storeFloats(means.data(), stash_, meanOut->data, rows);
    if (invOut) storeFloats(invs.data(), stash_, invOut->data, rows);
  }

  std::string name() const override {
    return std::string(rms_ ? "rms_norm" : fused_ ? "fused_layer_norm" : "layer_norm") +
           (&normRowKernels() == &genericNormRowKernels() ? ".generic" : ".avx2");
  }

 private:
  Node node_;  // a copy: the kernel may outlive the graph it was built from
  bool fused_;
  bool rms_;
  int64_t axis_ = -1;
  float epsilon_ = 1e-5f;
  DType stash_ = DType::Float32;
};

std::unique_ptr<Kernel> createLayerNorm(const KernelCreateInfo& info) { return std::make_unique<LayerNormKernel>(info, false); }
std::unique_ptr<Kernel> createRmsNorm(const KernelCreateInfo& info) {
  return std::make_unique<LayerNormKernel>(info, false, true);
}
std::unique_ptr<Kernel> createFusedLayerNorm(const KernelCreateInfo& info) {
  return std::make_unique<LayerNormKernel>(info, true);
}

}  // namespace

KILN_REGISTER_KERNEL(LayerNormalization, (KernelDef{"cpu", "", "LayerNormalization", 17, createLayerNorm}));
KILN_REGISTER_KERNEL(RMSNormalization, (KernelDef{"cpu", "", "RMSNormalization", 23, createRmsNorm}));
KILN_REGISTER_KERNEL(FusedLayerNormalization, (KernelDef{"cpu", "kiln", "LayerNormalization", 1, createFusedLayerNorm}));

}  // namespace kiln::cpu
