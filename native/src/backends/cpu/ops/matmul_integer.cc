// CPU kernels of MatMulInteger and QLinearMatMul (the ONNX quantized matmuls): exact int32
// accumulation of (a - a_zero_point) * (b - b_zero_point) in a plain loop, with numpy batch
// broadcasting; QLinearMatMul requantizes with scale a_scale * b_scale / y_scale, rounding half to
// even and saturating to the output type. Zero points and scales may be per-tensor, per-row of A
// ([M]) or per-column of B ([N]). These exist for model coverage; the fast path of quantized
// models is the INT8 engine build. Schemas: ops/nn_gemm.cc.
#include <algorithm>
#include <cmath>
#include <memory>

#include "backends/cpu/ops/gemm_common.h"

namespace kiln::cpu {
namespace {

using namespace nn;

int32_t readInt(const Tensor& t, int64_t i) {
  switch (t.dtype) {
    case DType::Int8: return t.ptr<int8_t>()[i];
    case DType::UInt8: return t.ptr<uint8_t>()[i];
    default: return 0;
  }
}

// Per-tensor, per-row or per-column parameter: value for row i / column j of one matrix.
struct QuantParam {
  const Tensor* t = nullptr;
  bool perRow = false, perCol = false;

  float asFloat(int64_t i, int64_t j) const {
    const int64_t at = perRow ? i : (perCol ? j : 0);
    return float(t->scalarAsDouble(at));
  }
  int32_t asInt(int64_t i, int64_t j) const {
    if (!t) return 0;
    const int64_t at = perRow ? i : (perCol ? j : 0);
    return readInt(*t, at);
  }
};

QuantParam quantParam(const Node& node, const Tensor* t, int64_t rows, int64_t cols, bool rowWise, const char* what) {
  QuantParam q;
  q.t = t;
  if (!t) return q;
  if (t->numel() == 1) return q;
  // Per-row zero points/scales of A have M values, per-column ones of B N values (1-D or [M,1]/[1,N]).
  const int64_t want = rowWise ? rows : cols;
  if (t->numel() != want) {
    failAt(node, ErrorCode::ShapeMismatch, std::string(what) + " " + shapeToString(t->shape) + " must be a scalar or have " +
                                               std::to_string(want) + " values");
  }
  (rowWise ? q.perRow : q.perCol) = true;
  return q;
}

void requireQuantized(const Node& node, const Tensor& t, const char* what) {
  if (t.dtype != DType::Int8 && t.dtype != DType::UInt8) {
    failAt(node, ErrorCode::UnsupportedOp, std::string(what) + " of type " + dtypeName(t.dtype) + " is not supported (int8, uint8 are)");
  }
}

struct IntMatMulShape {
  int64_t M, N, K;
  Shape out;
  std::vector<int64_t> aOffset, bOffset;
};

IntMatMulShape resolve(const Node& node, const Shape& a, const Shape& b) {
  if (a.empty() || b.empty()) failAt(node, ErrorCode::ShapeMismatch, "operands must be at least 1-D");
  Shape pa = a, pb = b;
  if (a.size() == 1) pa.insert(pa.begin(), 1);
  if (b.size() == 1) pb.push_back(1);
  IntMatMulShape s;
  s.M = pa[pa.size() - 2];
  s.K = pa.back();
  s.N = pb.back();
  if (pb[pb.size() - 2] != s.K) {
    failAt(node, ErrorCode::ShapeMismatch, "inner dimensions differ: A " + shapeToString(a) + " and B " + shapeToString(b));
  }
  const size_t br = std::max(pa.size(), pb.size()) - 2;
  Shape batch(br);
  std::vector<int64_t> as(br), bs(br);
  int64_t aStride = s.M * s.K, bStride = s.K * s.N;
  for (size_t k = 0; k < br; k++) {
    const size_t d = br - 1 - k;
    const int64_t ad = k + 2 < pa.size() ? pa[pa.size() - 3 - k] : 1, bd = k + 2 < pb.size() ? pb[pb.size() - 3 - k] : 1;
    if (ad != bd && ad != 1 && bd != 1) failAt(node, ErrorCode::ShapeMismatch, "batch dims of A and B do not broadcast");
    batch[d] = std::max(ad, bd);
    as[d] = ad == 1 ? 0 : aStride;
    bs[d] = bd == 1 ? 0 : bStride;
    aStride *= ad;
    bStride *= bd;
  }
  const int64_t batches = shapeNumel(batch);
  std::vector<int64_t> idx(br, 0);
  for (int64_t t = 0; t < batches; t++) {
    int64_t ao = 0, bo = 0;
    for (size_t d = 0; d < br; d++) {
      ao += idx[d] * as[d];
      bo += idx[d] * bs[d];
    }
    s.aOffset.push_back(ao);
    s.bOffset.push_back(bo);
    for (size_t d = br; d-- > 0;) {
      if (++idx[d] < batch[d]) break;
      idx[d] = 0;
    }
  }
  s.out = batch;
  if (a.size() != 1) s.out.push_back(s.M);
  if (b.size() != 1) s.out.push_back(s.N);
  return s;
}

// acc[t, i, j] = sum_k (a - za(i)) * (b - zb(j)).
std::vector<int32_t> accumulate(const IntMatMulShape& s, const Tensor& a, const Tensor& b, const QuantParam& za,
                                const QuantParam& zb) {
  std::vector<int32_t> acc(s.aOffset.size() * size_t(s.M * s.N));
  for (size_t t = 0; t < s.aOffset.size(); t++) {
    for (int64_t i = 0; i < s.M; i++) {
      const int32_t zai = za.asInt(i, 0);
      int32_t* row = acc.data() + (int64_t(t) * s.M + i) * s.N;
      for (int64_t k = 0; k < s.K; k++) {
        const int32_t av = readInt(a, s.aOffset[t] + i * s.K + k) - zai;
        if (av == 0) continue;
        for (int64_t j = 0; j < s.N; j++) row[j] += av * (readInt(b, s.bOffset[t] + k * s.N + j) - zb.asInt(0, j));
      }
    }
  }
  return acc;
}

class MatMulIntegerKernel final : public Kernel {
 public:
  MatMulIntegerKernel(const KernelCreateInfo& info, bool qlinear) : node_(info.node), qlinear_(qlinear) {}

  void run(KernelContext& ctx) const override {
    const size_t bi = qlinear_ ? 3 : 1;
    const Tensor& a = requiredInput(ctx, 0, "A");
    const Tensor& b = requiredInput(ctx, bi, "B");
    requireQuantized(node_, a, "input A");
    requireQuantized(node_, b, "input B");
    const IntMatMulShape s = resolve(node_, a.shape, b.shape);
    const QuantParam za = quantParam(node_, optionalInput(ctx, qlinear_ ? 2 : 2), s.M, s.N, true, "a_zero_point");
    const QuantParam zb = quantParam(node_, optionalInput(ctx, qlinear_ ? 5 : 3), s.M, s.N, false, "b_zero_point");
    for (const QuantParam* z : {&za, &zb}) {
      if (z->t) requireQuantized(node_, *z->t, "zero point");
    }
    std::vector<int32_t> acc = accumulate(s, a, b, za, zb);
    if (!qlinear_) {
      Tensor& y = requiredOutput(ctx, 0, DType::Int32, s.out);
      std::copy(acc.begin(), acc.end(), y.ptr<int32_t>());
      return;
    }
    const QuantParam sa = quantParam(node_, &requiredInput(ctx, 1, "a_scale"), s.M, s.N, true, "a_scale");
    const QuantParam sb = quantParam(node_, &requiredInput(ctx, 4, "b_scale"), s.M, s.N, false, "b_scale");
    const Tensor& ys = requiredInput(ctx, 6, "y_scale");
    const Tensor& yz = requiredInput(ctx, 7, "y_zero_point");
    requireQuantized(node_, yz, "y_zero_point");
    if (ys.numel() != 1 || yz.numel() != 1) failAt(node_, ErrorCode::ShapeMismatch, "y_scale and y_zero_point must be scalars");
    const float yScale = float(ys.scalarAsDouble(0));
    const int32_t yZero = readInt(yz, 0);
    const int32_t lo = yz.dtype == DType::Int8 ? -128 : 0, hi = yz.dtype == DType::Int8 ? 127 : 255;
    Tensor& y = requiredOutput(ctx, 0, yz.dtype, s.out);
    for (size_t t = 0; t < s.aOffset.size(); t++) {
      for (int64_t i = 0; i < s.M; i++) {
        for (int64_t j = 0; j < s.N; j++) {
          const int64_t at = (int64_t(t) * s.M + i) * s.N + j;
          const float real = float(acc[size_t(at)]) * (sa.asFloat(i, j) * sb.asFloat(i, j) / yScale);
          const int32_t q = std::clamp(int32_t(std::nearbyint(real)) + yZero, lo, hi);
          if (yz.dtype == DType::Int8) y.ptr<int8_t>()[at] = int8_t(q);
          else y.ptr<uint8_t>()[at] = uint8_t(q);
        }
      }
    }
  }

  std::string name() const override { return qlinear_ ? "qlinear_matmul.int32_loop" : "matmul_integer.int32_loop"; }

 private:
  Node node_;
  bool qlinear_;
};

std::unique_ptr<Kernel> createMatMulInteger(const KernelCreateInfo& info) {
  return std::make_unique<MatMulIntegerKernel>(info, false);
}
std::unique_ptr<Kernel> createQLinearMatMul(const KernelCreateInfo& info) {
  return std::make_unique<MatMulIntegerKernel>(info, true);
}

}  // namespace

KILN_REGISTER_KERNEL(MatMulInteger, (KernelDef{"cpu", "", "MatMulInteger", 10, createMatMulInteger}));
KILN_REGISTER_KERNEL(QLinearMatMul, (KernelDef{"cpu", "", "QLinearMatMul", 10, createQLinearMatMul}));

}  // namespace kiln::cpu
