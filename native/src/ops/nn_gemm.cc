// Schemas of MatMul, Gemm, MatMulInteger and QLinearMatMul. MatMul follows numpy.matmul: 1-D
// operands are promoted (a row vector on the left, a column vector on the right) and the promoted
// dim is dropped from the result; leading batch dims broadcast. Kernels: backends/cpu/ops/gemm.cc
// and matmul*.cc.
#include <string>

#include "ops/nn_infer.h"

namespace kiln {
namespace {

bool knownDiffer(const Dim& a, const Dim& b) { return a.isKnown() && b.isKnown() && a.value != b.value; }

void requireInput(InferContext& ctx, size_t i, const char* name) {
  if (!ctx.hasInput(i)) ctx.error(std::string("input ") + name + " is required");
}

void requireSameType(InferContext& ctx, size_t a, size_t b, const char* what) {
  DType ta = ctx.inputTypes[a], tb = ctx.inputTypes[b];
  if (ta != DType::Undefined && tb != DType::Undefined && ta != tb) {
    ctx.error(std::string(what) + " types differ: " + dtypeName(ta) + " vs " + dtypeName(tb));
  }
}

void inferMatMulInteger(InferContext& ctx) {
  requireInput(ctx, 0, "A");
  requireInput(ctx, 1, "B");
  ctx.setOutput(0, DType::Int32, matmulShape(ctx, ctx.inputShapes[0], ctx.inputShapes[1]));
}

void inferQLinearMatMul(InferContext& ctx) {
  // a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point
  for (size_t i = 0; i < 8; i++) requireInput(ctx, i, "of QLinearMatMul");
  ctx.setOutput(0, ctx.inputTypes[7], matmulShape(ctx, ctx.inputShapes[0], ctx.inputShapes[3]));
}

}  // namespace

SymShape matmulShape(InferContext& ctx, const SymShape& a, const SymShape& b) {
  if (!a.hasRank || !b.hasRank) return SymShape::unknown();
  if (a.rank() == 0 || b.rank() == 0) {
    ctx.error("MatMul operands must be at least 1-D, got " + a.toString() + " and " + b.toString());
  }
  SymShape pa = a, pb = b;
  if (a.rank() == 1) pa.dims.insert(pa.dims.begin(), Dim::known(1));
  if (b.rank() == 1) pb.dims.push_back(Dim::known(1));
  const Dim& ka = pa.dims[pa.rank() - 1];
  const Dim& kb = pb.dims[pb.rank() - 2];
  if (knownDiffer(ka, kb)) {
    ctx.error("inner dimensions differ: A " + a.toString() + " has K=" + ka.toString() + ", B " + b.toString() +
              " has K=" + kb.toString());
  }
  SymShape batchA{true, std::vector<Dim>(pa.dims.begin(), pa.dims.end() - 2)};
  SymShape batchB{true, std::vector<Dim>(pb.dims.begin(), pb.dims.end() - 2)};
  SymShape out = ctx.broadcast({batchA, batchB});
  if (a.rank() != 1) out.dims.push_back(pa.dims[pa.rank() - 2]);
  if (b.rank() != 1) out.dims.push_back(pb.dims[pb.rank() - 1]);
  return out;
}

void inferMatMul(InferContext& ctx) {
  requireInput(ctx, 0, "A");
  requireInput(ctx, 1, "B");
  requireSameType(ctx, 0, 1, "A and B");
  ctx.setOutput(0, ctx.inputTypes[0], matmulShape(ctx, ctx.inputShapes[0], ctx.inputShapes[1]));
}

void inferGemm(InferContext& ctx) {
  requireInput(ctx, 0, "A");
  requireInput(ctx, 1, "B");
  requireSameType(ctx, 0, 1, "A and B");
  const SymShape& a = ctx.inputShapes[0];
  const SymShape& b = ctx.inputShapes[1];
  const bool transA = ctx.node.getInt("transA", 0) != 0;
  const bool transB = ctx.node.getInt("transB", 0) != 0;
  if (a.hasRank && a.rank() != 2) ctx.error("input A must be 2-D, got " + a.toString());
  if (b.hasRank && b.rank() != 2) ctx.error("input B must be 2-D, got " + b.toString());
  Dim m = a.hasRank ? a.dims[transA ? 1 : 0] : ctx.freshDim();
  Dim n = b.hasRank ? b.dims[transB ? 0 : 1] : ctx.freshDim();
  if (a.hasRank && b.hasRank) {
    const Dim& ka = a.dims[transA ? 0 : 1];
    const Dim& kb = b.dims[transB ? 1 : 0];
    if (knownDiffer(ka, kb)) {
      ctx.error("inner dimensions differ: A " + a.toString() + (transA ? " (transposed)" : "") + " and B " + b.toString() +
                (transB ? " (transposed)" : ""));
    }
  }
  if (ctx.hasInput(2)) {
    // C broadcasts one way onto [M, N].
    requireSameType(ctx, 0, 2, "A and C");
    const SymShape& c = ctx.inputShapes[2];
    if (c.hasRank) {
      if (c.rank() > 2) ctx.error("input C " + c.toString() + " must be at most 2-D");
      const Dim* target[2] = {&m, &n};
      for (size_t i = 0; i < c.rank(); i++) {
        const Dim& d = c.dims[i];
        const Dim& t = *target[2 - c.rank() + i];
        if (d.isKnown() && d.value != 1 && knownDiffer(d, t)) {
          ctx.error("input C " + c.toString() + " does not broadcast to [" + m.toString() + "," + n.toString() + "]");
        }
      }
    }
  }
  ctx.setOutput(0, ctx.inputTypes[0], SymShape{true, {m, n}});
}

KILN_REGISTER_SCHEMA(MatMul, (OpSchema{"", "MatMul", 1, inferMatMul}));
KILN_REGISTER_SCHEMA(Gemm, (OpSchema{"", "Gemm", 1, inferGemm}));
KILN_REGISTER_SCHEMA(MatMulInteger, (OpSchema{"", "MatMulInteger", 10, inferMatMulInteger}));
KILN_REGISTER_SCHEMA(QLinearMatMul, (OpSchema{"", "QLinearMatMul", 10, inferQLinearMatMul}));

}  // namespace kiln
