// Schemas of the kiln-domain fused ops (documented in graph/fused_ops.h). Where a fused op extends
// an ONNX op (FusedConv = Conv + epilogue, FusedGemm = Gemm + activation, FusedMatMul = MatMul +
// bias + activation) the shape logic is delegated to that op's own schema, so the two can never
// disagree; this file only checks what the fusion adds (bias, residual, activation parameters).
#include <cmath>

#include "core/error.h"
#include "graph/fused_ops.h"
#include "ops/schema.h"

namespace kiln {
namespace {

// The base op's schema is the newest registered one: fused nodes are always written in the newest
// form of their base op (Gemm's C optional, no legacy `broadcast` attribute).
constexpr int64_t kNewestOpset = 1 << 30;

// Runs the ONNX schema of `opType` on the first `numInputs` inputs of a fused node and copies its
// results into ctx.
void inferAsBaseOp(InferContext& ctx, const char* opType, size_t numInputs) {
  const OpSchema* base = SchemaRegistry::instance().find("", opType, kNewestOpset);
  if (!base) ctx.error(std::string("the ") + opType + " schema this fused op builds on is not registered");
  InferContext sub(ctx.node, kNewestOpset, numInputs, 1);
  sub.symbolCounter = ctx.symbolCounter;
  for (size_t i = 0; i < numInputs && i < ctx.numInputs(); i++) {
    sub.present[i] = ctx.present[i];
    sub.inputTypes[i] = ctx.inputTypes[i];
    sub.inputShapes[i] = ctx.inputShapes[i];
    sub.inputValues[i] = ctx.inputValues[i];
  }
  for (size_t i = ctx.numInputs(); i < numInputs; i++) sub.present[i] = false;
  base->infer(sub);
  if (sub.outputTypes[0] == DType::Undefined) ctx.error(std::string("the ") + opType + " schema gave no output");
  ctx.setOutput(0, sub.outputTypes[0], sub.outputShapes[0]);
}

// The `activation` attribute and its parameters (graph/fused_ops.h).
void checkActivation(InferContext& ctx) {
  Activation act;
  try {
    act = parseActivation(ctx.node.getString("activation", ""));
  } catch (const KilnError& e) {
    ctx.error(e.what());
  }
  size_t want = 0;
  switch (act) {
    case Activation::None:
    case Activation::Relu:
    case Activation::Sigmoid:
    case Activation::Tanh:
    case Activation::HardSwish:
    case Activation::Gelu:
    case Activation::GeluTanh:
    case Activation::Silu:
      want = 0;
      break;
    case Activation::LeakyRelu:
      want = 1;
      break;
    case Activation::Clip:
    case Activation::HardSigmoid:
      want = 2;
      break;
  }
  std::vector<float> params = ctx.node.getFloats("activation_params");
  if (params.size() != want) {
    ctx.error(std::string("activation ") + activationName(act) + " takes " + std::to_string(want) +
              " activation_params, got " + std::to_string(params.size()));
  }
  for (float p : params) {
    // Clip may be unbounded on one side (the pass writes +-inf); NaN is never meaningful.
    if (std::isnan(p)) ctx.error("activation_params contains NaN");
  }
  if (act == Activation::Clip && params[0] > params[1]) {
    ctx.error("Clip activation min " + std::to_string(params[0]) + " exceeds max " + std::to_string(params[1]));
  }
}

void needInput(InferContext& ctx, size_t i, const char* what) {
  if (!ctx.hasInput(i)) ctx.error(std::string("input ") + std::to_string(i) + " (" + what + ") is required");
}

void requireFloat(InferContext& ctx, size_t i, const char* what) {
  if (ctx.hasInput(i) && !isFloating(ctx.inputTypes[i])) {
    ctx.error(std::string(what) + " must be a floating-point tensor, got " + dtypeName(ctx.inputTypes[i]));
  }
}

void requireSameType(InferContext& ctx, size_t i, size_t j, const char* what) {
  if (ctx.hasInput(i) && ctx.hasInput(j) && ctx.inputTypes[i] != ctx.inputTypes[j]) {
    ctx.error(std::string(what) + " has type " + dtypeName(ctx.inputTypes[i]) + " but the input is " +
              dtypeName(ctx.inputTypes[j]));
  }
}

// Two dims that are both known must be equal; symbols are taken on trust (a symbol may equal a size).
bool dimsConflict(const Dim& a, const Dim& b) { return a.isKnown() && b.isKnown() && a.value != b.value; }

// `small` broadcasts onto `big` without changing it (numpy unidirectional broadcasting).
void requireBroadcastsTo(InferContext& ctx, const SymShape& small, const SymShape& big, const char* what) {
  if (!small.hasRank || !big.hasRank) return;
  bool ok = small.rank() <= big.rank();
  for (size_t k = 0; ok && k < small.rank(); k++) {
    const Dim& s = small.dims[small.rank() - 1 - k];
    const Dim& b = big.dims[big.rank() - 1 - k];
    ok = !(s.isKnown() && s.value != 1 && dimsConflict(s, b));
  }
  if (!ok) ctx.error(std::string(what) + " " + small.toString() + " does not broadcast to " + big.toString());
}

void inferFusedConv(InferContext& ctx) {
  needInput(ctx, 0, "X");
  needInput(ctx, 1, "W");
  requireFloat(ctx, 0, "X");
  checkActivation(ctx);
  inferAsBaseOp(ctx, "Conv", 3);
  if (ctx.hasInput(3)) {
    requireSameType(ctx, 3, 0, "the residual input Z");
    // The residual is added elementwise to Y: same shape, no broadcasting (the kernel adds it in
    // the GEMM epilogue, element for element).
    const SymShape& z = ctx.inputShapes[3];
    const SymShape& y = ctx.outputShapes[0];
    if (z.hasRank && y.hasRank) {
      bool ok = z.rank() == y.rank();
      for (size_t d = 0; ok && d < z.rank(); d++) ok = !dimsConflict(z.dims[d], y.dims[d]);
      if (!ok) ctx.error("the residual input Z " + z.toString() + " differs from the output shape " + y.toString());
    }
  }
}

void inferFusedGemm(InferContext& ctx) {
  needInput(ctx, 0, "A");
  needInput(ctx, 1, "B");
  requireFloat(ctx, 0, "A");
  checkActivation(ctx);
  inferAsBaseOp(ctx, "Gemm", 3);
}

void inferFusedMatMul(InferContext& ctx) {
  needInput(ctx, 0, "A");
  needInput(ctx, 1, "B");
  requireFloat(ctx, 0, "A");
  checkActivation(ctx);
  inferAsBaseOp(ctx, "MatMul", 2);
  if (!ctx.hasInput(2)) return;
  requireSameType(ctx, 2, 0, "the bias");
  const SymShape& bias = ctx.inputShapes[2];
  const SymShape& y = ctx.outputShapes[0];
  if (bias.hasRank && bias.rank() != 1) ctx.error("the bias must be 1-D, got " + bias.toString());
  if (bias.hasRank && y.hasRank) {
    if (y.rank() == 0) ctx.error("a bias needs an output of rank >= 1, got a scalar");
    if (dimsConflict(bias.dims[0], y.dims.back())) {
      ctx.error("the bias " + bias.toString() + " does not match the last dim of the output " + y.toString());
    }
  }
}

void inferLayerNorm(InferContext& ctx) {
  needInput(ctx, 0, "X");
  needInput(ctx, 1, "Scale");
  requireFloat(ctx, 0, "X");
  requireSameType(ctx, 1, 0, "Scale");
  requireSameType(ctx, 2, 0, "Bias");
  float epsilon = ctx.node.getFloat("epsilon", 1e-5f);
  if (!(epsilon >= 0) || std::isinf(epsilon)) ctx.error("epsilon must be finite and >= 0, got " + std::to_string(epsilon));
  const SymShape& x = ctx.inputShapes[0];
  ctx.setOutput(0, ctx.inputTypes[0], x);
  if (!x.hasRank) {
    ctx.setOutput(1, DType::Float32, SymShape::unknown());
    ctx.setOutput(2, DType::Float32, SymShape::unknown());
    return;
  }
  const int64_t rank = (int64_t)x.rank();
  if (rank == 0) ctx.error("X must have rank >= 1");
  int64_t axis = ctx.node.getInt("axis", -1);
  if (axis < -rank || axis >= rank) {
    ctx.error("axis " + std::to_string(axis) + " is out of range for X " + x.toString());
  }
  if (axis < 0) axis += rank;
  SymShape normalized;
  normalized.hasRank = true;
  normalized.dims.assign(x.dims.begin() + axis, x.dims.end());
  requireBroadcastsTo(ctx, ctx.inputShapes[1], normalized, "Scale");
  if (ctx.hasInput(2)) requireBroadcastsTo(ctx, ctx.inputShapes[2], normalized, "Bias");
  // Mean and InvStdDev keep the leading dims and reduce the normalized ones to 1 (ONNX-17).
  SymShape stats = x;
  for (int64_t d = axis; d < rank; d++) stats.dims[(size_t)d] = Dim::known(1);
  ctx.setOutput(1, DType::Float32, stats);
  ctx.setOutput(2, DType::Float32, stats);
}

void inferGelu(InferContext& ctx) {
  needInput(ctx, 0, "X");
  requireFloat(ctx, 0, "X");
  std::string approximate = ctx.node.getString("approximate", "none");
  if (approximate != "none" && approximate != "tanh") {
    ctx.error("approximate must be \"none\" or \"tanh\", got \"" + approximate + "\"");
  }
  inferUnchangedShape(ctx);
}

void inferAttention(InferContext& ctx) {
  const char* names[] = {"Q", "K", "V"};
  for (size_t i = 0; i < 3; i++) {
    needInput(ctx, i, names[i]);
    requireFloat(ctx, i, names[i]);
  }
  requireSameType(ctx, 1, 0, "K");
  requireSameType(ctx, 2, 0, "V");
  requireSameType(ctx, 3, 0, "the mask");
  if (!ctx.node.has("scale")) ctx.error("the scale attribute is required");
  float scale = ctx.node.getFloat("scale", 0);
  if (!std::isfinite(scale)) ctx.error("scale must be finite, got " + std::to_string(scale));
  int64_t causal = ctx.node.getInt("causal", 0);
  if (causal != 0 && causal != 1) ctx.error("causal must be 0 or 1, got " + std::to_string(causal));

  const SymShape& q = ctx.inputShapes[0];
  const SymShape& k = ctx.inputShapes[1];
  const SymShape& v = ctx.inputShapes[2];
  for (size_t i = 0; i < 3; i++) {
    const SymShape& s = ctx.inputShapes[i];
    if (s.hasRank && s.rank() != 4) ctx.error(std::string(names[i]) + " must be [B,H,S,D], got " + s.toString());
  }
  if (!q.hasRank || !k.hasRank || !v.hasRank) {
    ctx.setOutput(0, ctx.inputTypes[0], SymShape::unknown());
    return;
  }
  auto mismatch = [&](const std::string& what) {
    ctx.error(what + " disagree: Q " + q.toString() + ", K " + k.toString() + ", V " + v.toString());
  };
  for (size_t d = 0; d < 2; d++) {
    if (dimsConflict(q.dims[d], k.dims[d]) || dimsConflict(q.dims[d], v.dims[d])) mismatch("batch/head dims");
  }
  if (dimsConflict(q.dims[3], k.dims[3])) mismatch("the head sizes of Q and K");
  if (dimsConflict(k.dims[2], v.dims[2])) mismatch("the key lengths of K and V");
  SymShape out;
  out.hasRank = true;
  out.dims = {q.dims[0], q.dims[1], q.dims[2], v.dims[3]};
  if (ctx.hasInput(3)) {
    SymShape scores;
    scores.hasRank = true;
    scores.dims = {q.dims[0], q.dims[1], q.dims[2], k.dims[2]};
    requireBroadcastsTo(ctx, ctx.inputShapes[3], scores, "the mask");
  }
  ctx.setOutput(0, ctx.inputTypes[0], out);
}

}  // namespace

KILN_REGISTER_SCHEMA(FusedConv, (OpSchema{kKilnDomain, "FusedConv", 1, inferFusedConv}));
KILN_REGISTER_SCHEMA(FusedGemm, (OpSchema{kKilnDomain, "FusedGemm", 1, inferFusedGemm}));
KILN_REGISTER_SCHEMA(FusedMatMul, (OpSchema{kKilnDomain, "FusedMatMul", 1, inferFusedMatMul}));
KILN_REGISTER_SCHEMA(LayerNormalization, (OpSchema{kKilnDomain, "LayerNormalization", 1, inferLayerNorm}));
KILN_REGISTER_SCHEMA(Gelu, (OpSchema{kKilnDomain, "Gelu", 1, inferGelu}));
KILN_REGISTER_SCHEMA(Attention, (OpSchema{kKilnDomain, "Attention", 1, inferAttention}));

}  // namespace kiln
