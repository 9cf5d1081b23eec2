// CPU kernels of MatMul and kiln.FusedMatMul (bias over the last dim + activation, fused into the
// GEMM epilogue). numpy semantics: batch dims broadcast, 1-D operands promoted. A constant 2-D
// operand (the usual weight) is packed once at creation; when B has no batch, A's batch dims fold
// into M so [batch, seq, hidden] x [hidden, out] is a single large GEMM. Integer MatMul types use a
// plain loop. Schemas: ops/nn_gemm.cc (MatMul), ops/fused.cc (FusedMatMul).
#include <algorithm>
#include <memory>

#include "backends/cpu/ops/gemm_common.h"

namespace kiln::cpu {
namespace {

using namespace nn;

// Shapes of one MatMul run: operands promoted to >= 2-D, batch broadcast resolved to per-batch
// element offsets of A and B.
struct MatMulShape {
  int64_t M = 0, N = 0, K = 0;
  Shape out;
  std::vector<int64_t> aOffset, bOffset;  // per output batch
  bool bHasBatch = false;
};

MatMulShape resolveShape(const Node& node, const Shape& a, const Shape& b) {
  if (a.empty() || b.empty()) {
    failAt(node, ErrorCode::ShapeMismatch, "MatMul operands must be at least 1-D, got " + shapeToString(a) + " and " +
                                                 shapeToString(b));
  }
  Shape pa = a, pb = b;
  if (a.size() == 1) pa.insert(pa.begin(), 1);
  if (b.size() == 1) pb.push_back(1);
  MatMulShape s;
  s.M = pa[pa.size() - 2];
  s.K = pa[pa.size() - 1];
  s.N = pb[pb.size() - 1];
  if (pb[pb.size() - 2] != s.K) {
    failAt(node, ErrorCode::ShapeMismatch, "inner dimensions differ: A " + shapeToString(a) + " has K=" +
                                                 std::to_string(s.K) + ", B " + shapeToString(b) + " has K=" +
                                                 std::to_string(pb[pb.size() - 2]));
  }
  const size_t batchRank = std::max(pa.size(), pb.size()) - 2;
  Shape batch(batchRank, 1);
  // Right-aligned batch dims with their element strides (0 where broadcast).
  std::vector<int64_t> aStride(batchRank, 0), bStride(batchRank, 0);
  int64_t as = s.M * s.K, bs = s.K * s.N;
  for (size_t k = 0; k < batchRank; k++) {
    const size_t d = batchRank - 1 - k;
    const int64_t ad = k + 2 < pa.size() ? pa[pa.size() - 3 - k] : 1;
    const int64_t bd = k + 2 < pb.size() ? pb[pb.size() - 3 - k] : 1;
    if (ad != bd && ad != 1 && bd != 1) {
      failAt(node, ErrorCode::ShapeMismatch, "batch dimensions of A " + shapeToString(a) + " and B " + shapeToString(b) +
                                                   " do not broadcast");
    }
    batch[d] = std::max(ad, bd);
    if (ad == 0 || bd == 0) batch[d] = 0;
    aStride[d] = ad == 1 ? 0 : as;
    bStride[d] = bd == 1 ? 0 : bs;
    as *= ad;
    bs *= bd;
    if (bd != 1) s.bHasBatch = true;
  }
  const int64_t batches = shapeNumel(batch);
  s.aOffset.resize(size_t(batches));
  s.bOffset.resize(size_t(batches));
  std::vector<int64_t> idx(batchRank, 0);
  for (int64_t t = 0; t < batches; t++) {
    int64_t ao = 0, bo = 0;
    for (size_t d = 0; d < batchRank; d++) {
      ao += idx[d] * aStride[d];
      bo += idx[d] * bStride[d];
    }
    s.aOffset[size_t(t)] = ao;
    s.bOffset[size_t(t)] = bo;
    for (size_t d = batchRank; d-- > 0;) {
      if (++idx[d] < batch[d]) break;
      idx[d] = 0;
    }
  }
  s.out = batch;
  if (a.size() != 1) s.out.push_back(s.M);
  if (b.size() != 1) s.out.push_back(s.N);
  return s;
}

template <class T>
void integerMatMul(const MatMulShape& s, const T* a, const T* b, T* y, ThreadPool* pool) {
  const int64_t batches = int64_t(s.aOffset.size());
  pool->parallelFor(batches * s.M, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, s.N * s.K)), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; r++) {
      const int64_t t = r / s.M, i = r % s.M;
      const T* ar = a + s.aOffset[size_t(t)] + i * s.K;
      const T* bb = b + s.bOffset[size_t(t)];
      T* yr = y + (t * s.M + i) * s.N;
      std::fill(yr, yr + s.N, T(0));
      for (int64_t k = 0; k < s.K; k++) {
        const T av = ar[k];
        const T* br = bb + k * s.N;
        for (int64_t j = 0; j < s.N; j++) yr[j] += av * br[j];  // wraps like ORT for overflow
      }
    }
  });
}

class MatMulKernel final : public Kernel {
 public:
  MatMulKernel(const KernelCreateInfo& info, bool fused) : node_(info.node), fused_(fused) {
    const DType t = info.inputTypes.size() > 0 ? info.inputTypes[0] : DType::Undefined;
    integer_ = t == DType::Int32 || t == DType::Int64 || t == DType::UInt32 || t == DType::UInt64;
    if (!integer_) requireComputeFloat(node_, t, "input A");
    if (info.inputTypes.size() < 2 || info.inputTypes[1] != t) {
      failAt(node_, ErrorCode::DTypeMismatch, "inputs A and B must have the same type");
    }
    if (fused_) {
      if (integer_) failAt(node_, ErrorCode::UnsupportedOp, "FusedMatMul needs floating inputs");
      activation_ = readActivation(node_);
    }
    // Pre-pack a constant operand with no batch (weights). A 1-D constant B is a K x 1 matrix.
    if (!integer_) {
      const Tensor* b = info.constantInputs.size() > 1 ? info.constantInputs[1] : nullptr;
      const Tensor* a = info.constantInputs.size() > 0 ? info.constantInputs[0] : nullptr;
      if (b && (b->shape.size() == 2 || b->shape.size() == 1)) {
        const int64_t K = b->shape[0], N = b->shape.size() == 2 ? b->shape[1] : 1;
        FloatView v(*b);
        packedB_ = PackedMatrix::pack(PackedMatrix::Side::B, v.data(), K, N, N, 1);
        packedBShape_ = b->shape;
      } else if (a && a->shape.size() == 2) {
        FloatView v(*a);
        packedA_ = PackedMatrix::pack(PackedMatrix::Side::A, v.data(), a->shape[0], a->shape[1], a->shape[1], 1);
        packedAShape_ = a->shape;
      }
    }
  }

  void run(KernelContext& ctx) const override {
    const Tensor& a = requiredInput(ctx, 0, "A");
    const Tensor& b = requiredInput(ctx, 1, "B");
    if (a.dtype != b.dtype) failAt(node_, ErrorCode::DTypeMismatch, "inputs A and B must have the same type");
    MatMulShape s = resolveShape(node_, a.shape, b.shape);
    Tensor& y = requiredOutput(ctx, 0, a.dtype, s.out);
    if (y.numel() == 0) return;
    ThreadPool* pool = computePool(ctx);
    if (integer_) {
      switch (a.dtype) {
        case DType::Int32: integerMatMul(s, a.ptr<int32_t>(), b.ptr<int32_t>(), y.ptr<int32_t>(), pool); return;
        case DType::Int64: integerMatMul(s, a.ptr<int64_t>(), b.ptr<int64_t>(), y.ptr<int64_t>(), pool); return;
        case DType::UInt32: integerMatMul(s, a.ptr<uint32_t>(), b.ptr<uint32_t>(), y.ptr<uint32_t>(), pool); return;
        case DType::UInt64: integerMatMul(s, a.ptr<uint64_t>(), b.ptr<uint64_t>(), y.ptr<uint64_t>(), pool); return;
        default: failAt(node_, ErrorCode::UnsupportedOp, std::string("type ") + dtypeName(a.dtype) + " is not supported");
      }
    }
    const Tensor* bias = fused_ ? optionalInput(ctx, 2) : nullptr;
    FloatView biasView;
    if (bias) {
      if (bias->numel() != s.N) {
        failAt(node_, ErrorCode::ShapeMismatch, "bias " + shapeToString(bias->shape) + " must have N=" +
                                                      std::to_string(s.N) + " values");
      }
      if (bias->dtype != a.dtype) failAt(node_, ErrorCode::DTypeMismatch, "bias type differs from A");
      biasView = FloatView(*bias);
    }
    const bool usePackedB = packedB_ && b.shape == packedBShape_;
    const bool usePackedA = !usePackedB && packedA_ && a.shape == packedAShape_;
    FloatView av, bv;
    if (!usePackedA) av = FloatView(a);
    if (!usePackedB) bv = FloatView(b);
    FloatSink sink(y);

    GemmArgs g;
    g.N = s.N;
    g.K = s.K;
    g.epilogue.colBias = bias ? biasView.data() : nullptr;
    g.epilogue.activation = activation_;
    g.ldc = s.N;
    // B is K x N row-major (a 1-D B: K x 1).
    const int64_t batches = int64_t(s.aOffset.size());
    if (!s.bHasBatch && !usePackedA) {
      // One GEMM: A's batches are consecutive M-row blocks, and so are the output's.
      g.M = s.M * batches;
      g.A = GemmOperand::rowMajor(av.data(), s.K);
      g.B = usePackedB ? GemmOperand::prepacked(packedB_.get()) : GemmOperand::rowMajor(bv.data(), s.N);
      g.C = sink.data();
      // With a broadcast A (A has no batch but the output has), A's offsets repeat: not foldable.
      bool aContiguous = true;
      for (int64_t t = 0; t < batches; t++) aContiguous &= s.aOffset[size_t(t)] == t * s.M * s.K;
      if (aContiguous) {
        sgemm(g, pool);
        sink.commit();
        return;
      }
    }
    g.M = s.M;
    const double flops = 2.0 * s.M * s.N * s.K;
    auto one = [&](int64_t t, ThreadPool* inner) {
      GemmArgs gt = g;
      gt.A = usePackedA ? GemmOperand::prepacked(packedA_.get())
                        : GemmOperand::rowMajor(av.data() + s.aOffset[size_t(t)], s.K);
      gt.B = usePackedB ? GemmOperand::prepacked(packedB_.get())
                        : GemmOperand::rowMajor(bv.data() + s.bOffset[size_t(t)], s.N);
      gt.C = sink.data() + t * s.M * s.N;
      sgemm(gt, inner);
    };
    if (batches > 1 && flops < 8e6) {
      // Many small products (attention heads): one per task, each single-threaded.
      pool->parallelFor(batches, 1, [&](int64_t lo, int64_t hi) {
        for (int64_t t = lo; t < hi; t++) one(t, nullptr);
      });
    } else {
      for (int64_t t = 0; t < batches; t++) one(t, pool);
    }
    sink.commit();
  }

  std::string name() const override {
    return std::string(fused_ ? "fused_matmul." : "matmul.") + (integer_ ? "integer_loop" : sgemmTactic()) +
           (packedB_ || packedA_ ? ".prepacked" : "");
  }

 private:
  Node node_;  // a copy: the kernel may outlive the graph it was built from
  bool fused_;
  bool integer_ = false;
  ActivationSpec activation_;
  std::shared_ptr<PackedMatrix> packedA_, packedB_;
  Shape packedAShape_, packedBShape_;
};

std::unique_ptr<Kernel> createMatMul(const KernelCreateInfo& info) { return std::make_unique<MatMulKernel>(info, false); }
std::unique_ptr<Kernel> createFusedMatMul(const KernelCreateInfo& info) {
  return std::make_unique<MatMulKernel>(info, true);
}

}  // namespace

KILN_REGISTER_KERNEL(MatMul, (KernelDef{"cpu", "", "MatMul", 1, createMatMul}));
KILN_REGISTER_KERNEL(FusedMatMul, (KernelDef{"cpu", "kiln", "FusedMatMul", 1, createFusedMatMul}));

}  // namespace kiln::cpu
