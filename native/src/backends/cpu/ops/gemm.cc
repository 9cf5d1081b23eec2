// CPU kernels of Gemm and kiln.FusedGemm: Y = act(alpha * op(A) * op(B) + beta * C). Transposes
// are strides, never copies; a constant B (the weights of a Linear layer) is packed once at
// creation; C becomes the GEMM epilogue: a column bias ([N] or [1,N]), a row bias ([M,1]), a
// scaled residual ([M,N]) or a broadcast scalar. Schemas: ops/nn_gemm.cc, ops/fused.cc.
#include <algorithm>
#include <memory>

#include "backends/cpu/ops/gemm_common.h"

namespace kiln::cpu {
namespace {

using namespace nn;

class GemmKernel final : public Kernel {
 public:
  GemmKernel(const KernelCreateInfo& info, bool fused)
      : node_(info.node),
        fused_(fused),
        alpha_(info.node.getFloat("alpha", 1.f)),
        beta_(info.node.getFloat("beta", 1.f)),
        transA_(info.node.getInt("transA", 0) != 0),
        transB_(info.node.getInt("transB", 0) != 0) {
    const DType t = info.inputTypes.size() > 0 ? info.inputTypes[0] : DType::Undefined;
    requireComputeFloat(node_, t, "input A");
    if (info.inputTypes.size() < 2 || info.inputTypes[1] != t) {
      failAt(node_, ErrorCode::DTypeMismatch, "inputs A and B must have the same type");
    }
    if (fused_) activation_ = readActivation(node_);
    const Tensor* b = info.constantInputs.size() > 1 ? info.constantInputs[1] : nullptr;
    if (b && b->shape.size() == 2) {
      const int64_t K = transB_ ? b->shape[1] : b->shape[0];
      const int64_t N = transB_ ? b->shape[0] : b->shape[1];
      FloatView v(*b);
      packedB_ = transB_ ? PackedMatrix::pack(PackedMatrix::Side::B, v.data(), K, N, 1, K)
                         : PackedMatrix::pack(PackedMatrix::Side::B, v.data(), K, N, N, 1);
      packedBShape_ = b->shape;
    }
  }

  size_t workspaceBytes(const KernelContext& ctx) const override {
    // A beta-scaled copy of a vector C (M or N values).
    const Tensor* a = inputShapeOf(ctx, 0);
    const Tensor* b = inputShapeOf(ctx, 1);
    if (!a || !b || a->shape.size() != 2 || b->shape.size() != 2) return 0;
    const int64_t M = transA_ ? a->shape[1] : a->shape[0];
    const int64_t N = transB_ ? b->shape[0] : b->shape[1];
    return size_t(std::max<int64_t>(M, N)) * sizeof(float);
  }

  void run(KernelContext& ctx) const override {
    const Tensor& a = requiredInput(ctx, 0, "A");
    const Tensor& b = requiredInput(ctx, 1, "B");
    if (a.shape.size() != 2 || b.shape.size() != 2) {
      failAt(node_, ErrorCode::ShapeMismatch, "inputs A " + shapeToString(a.shape) + " and B " + shapeToString(b.shape) +
                                                    " must be 2-D");
    }
    if (a.dtype != b.dtype) failAt(node_, ErrorCode::DTypeMismatch, "inputs A and B must have the same type");
    const int64_t M = transA_ ? a.shape[1] : a.shape[0];
    const int64_t K = transA_ ? a.shape[0] : a.shape[1];
    const int64_t Kb = transB_ ? b.shape[1] : b.shape[0];
    const int64_t N = transB_ ? b.shape[0] : b.shape[1];
    if (K != Kb) {
      failAt(node_, ErrorCode::ShapeMismatch, "inner dimensions differ: A " + shapeToString(a.shape) +
                                                    (transA_ ? " (transposed)" : "") + " and B " + shapeToString(b.shape) +
                                                    (transB_ ? " (transposed)" : ""));
    }
    Tensor& y = requiredOutput(ctx, 0, a.dtype, {M, N});
    if (M == 0 || N == 0) return;

    FloatView av(a);
    const bool usePackedB = packedB_ && b.shape == packedBShape_;
    FloatView bv;
    if (!usePackedB) bv = FloatView(b);
    FloatSink sink(y);

    GemmArgs g;
    g.M = M, g.N = N, g.K = K;
    g.alpha = alpha_;
    g.A = transA_ ? GemmOperand::colMajor(av.data(), M) : GemmOperand::rowMajor(av.data(), K);
    if (usePackedB) g.B = GemmOperand::prepacked(packedB_.get());
    else g.B = transB_ ? GemmOperand::colMajor(bv.data(), K) : GemmOperand::rowMajor(bv.data(), N);
    g.C = sink.data();
    g.ldc = N;
    g.epilogue.activation = activation_;

    const Tensor* c = optionalInput(ctx, 2);
    FloatView cv;
    if (c && beta_ != 0.f) {
      if (c->dtype != a.dtype) failAt(node_, ErrorCode::DTypeMismatch, "input C type differs from A");
      if (c->shape.size() > 2) failAt(node_, ErrorCode::ShapeMismatch, "input C " + shapeToString(c->shape) + " must be at most 2-D");
      const int64_t cm = c->shape.size() == 2 ? c->shape[0] : 1;
      const int64_t cn = c->shape.empty() ? 1 : c->shape.back();
      if ((cm != 1 && cm != M) || (cn != 1 && cn != N)) {
        failAt(node_, ErrorCode::ShapeMismatch, "input C " + shapeToString(c->shape) + " does not broadcast to [" +
                                                      std::to_string(M) + "," + std::to_string(N) + "]");
      }
      cv = FloatView(*c);
      float* scratch = static_cast<float*>(ctx.workspace);
      if (ctx.workspaceSize < size_t(std::max(M, N)) * sizeof(float)) {
        failAt(node_, ErrorCode::Internal, "workspace too small");
      }
      if (cm == M && cn == N && !(M == 1 && N == 1)) {
        g.epilogue.residual = cv.data();
        g.epilogue.residualRowStride = N;
        g.epilogue.residualScale = beta_;
      } else if (cm == M && M != 1) {  // [M, 1]: one value per row
        for (int64_t i = 0; i < M; i++) scratch[i] = beta_ * cv.data()[i];
        g.epilogue.rowBias = scratch;
      } else {  // [N], [1, N] or a scalar: one value per column
        for (int64_t j = 0; j < N; j++) scratch[j] = beta_ * cv.data()[cn == 1 ? 0 : j];
        g.epilogue.colBias = scratch;
      }
    }
    sgemm(g, computePool(ctx));
    sink.commit();
  }

  std::string name() const override {
    return std::string(fused_ ? "fused_gemm." : "gemm.") + sgemmTactic() + (packedB_ ? ".prepacked" : "");
  }

 private:
  Node node_;  // a copy: the kernel may outlive the graph it was built from
  bool fused_;
  float alpha_, beta_;
  bool transA_, transB_;
  ActivationSpec activation_;
  std::shared_ptr<PackedMatrix> packedB_;
  Shape packedBShape_;
};

std::unique_ptr<Kernel> createGemm(const KernelCreateInfo& info) { return std::make_unique<GemmKernel>(info, false); }
std::unique_ptr<Kernel> createFusedGemm(const KernelCreateInfo& info) { return std::make_unique<GemmKernel>(info, true); }

}  // namespace

KILN_REGISTER_KERNEL(Gemm, (KernelDef{"cpu", "", "Gemm", 1, createGemm}));
KILN_REGISTER_KERNEL(FusedGemm, (KernelDef{"cpu", "kiln", "FusedGemm", 1, createFusedGemm}));

}  // namespace kiln::cpu
