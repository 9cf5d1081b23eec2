// Schemas of the normalization ops: BatchNormalization (inference, and training_mode from opset
// 14), InstanceNormalization, LayerNormalization-17, GroupNormalization (18 and 21),
// LRN and MeanVarianceNormalization. Kernels: backends/cpu/ops/norm*.cc.
#include <string>

#include "ops/nn_infer.h"

namespace kiln {
namespace {

bool knownDiffer(const Dim& a, const Dim& b) { return a.isKnown() && b.isKnown() && a.value != b.value; }

void requireInput(InferContext& ctx, size_t i, const char* name) {
  if (!ctx.hasInput(i)) ctx.error(std::string("input ") + name + " is required");
}

// A per-channel parameter: 1-D with C values.
void requireChannelVector(InferContext& ctx, size_t i, const char* name, const Dim& channels) {
  if (!ctx.hasInput(i)) return;
  const SymShape& s = ctx.inputShapes[i];
  if (s.hasRank && (s.rank() != 1 || knownDiffer(s.dims[0], channels))) {
    ctx.error(std::string("input ") + name + " " + s.toString() + " must be 1-D with " + channels.toString() +
              " values (the channels of X " + ctx.inputShapes[0].toString() + ")");
  }
}

Dim channelsOf(InferContext& ctx, const SymShape& x) {
  if (!x.hasRank) return ctx.freshDim();
  if (x.rank() < 2) ctx.error("input X must be at least 2-D [N, C, ...], got " + x.toString());
  return x.dims[1];
}

void inferBatchNormalization(InferContext& ctx) {
  for (size_t i = 0; i < 5; i++) requireInput(ctx, i, i == 0 ? "X" : "scale/B/mean/var");
  // From opset 14 training_mode=1 normalizes with the batch's statistics and may output the
  // updated running mean/var. Before 14 extra outputs meant training with other semantics
  // (saved inverse std...), which exported inference models never use.
  bool extraOutputs = false;
  for (size_t i = 1; i < ctx.node.outputs.size(); i++) extraOutputs |= ctx.node.outputs[i] != kNoValue;
  if (ctx.opset < 14 && extraOutputs) {
    ctx.error("training outputs (opset < 14) are not supported; export the model for inference");
  }
  if (ctx.opset < 9 && ctx.node.getInt("spatial", 1) == 0) {
    ctx.error("spatial=0 (per-activation statistics) is not supported");
  }
  const SymShape& x = ctx.inputShapes[0];
  const Dim c = channelsOf(ctx, x);
  requireChannelVector(ctx, 1, "scale", c);
  requireChannelVector(ctx, 2, "B", c);
  requireChannelVector(ctx, 3, "input_mean", c);
  requireChannelVector(ctx, 4, "input_var", c);
  ctx.setOutput(0, ctx.inputTypes[0], x);
  // Running mean/var (training_mode only) have the type of the mean/var inputs.
  ctx.setOutput(1, ctx.inputTypes[3], SymShape{true, {c}});
  ctx.setOutput(2, ctx.inputTypes[4], SymShape{true, {c}});
}

void inferInstanceNormalization(InferContext& ctx) {
  requireInput(ctx, 0, "X");
  requireInput(ctx, 1, "scale");
  requireInput(ctx, 2, "B");
  const SymShape& x = ctx.inputShapes[0];
  const Dim c = channelsOf(ctx, x);
  if (x.hasRank && x.rank() < 3) ctx.error("input X must be at least 3-D [N, C, spatial...], got " + x.toString());
  requireChannelVector(ctx, 1, "scale", c);
  requireChannelVector(ctx, 2, "B", c);
  ctx.setOutput(0, ctx.inputTypes[0], x);
}

void inferGroupNormalization(InferContext& ctx) {
  requireInput(ctx, 0, "X");
  requireInput(ctx, 1, "scale");
  requireInput(ctx, 2, "bias");
  const SymShape& x = ctx.inputShapes[0];
  const Dim c = channelsOf(ctx, x);
  if (!ctx.node.has("num_groups")) ctx.error("attribute num_groups is required");
  const int64_t groups = ctx.node.getInt("num_groups", 1);
  if (groups < 1) ctx.error("num_groups " + std::to_string(groups) + " must be >= 1");
  if (c.isKnown() && c.value % groups != 0) {
    ctx.error("channels " + c.toString() + " of X " + x.toString() + " are not divisible by num_groups " +
              std::to_string(groups));
  }
  // Opset 18 took scale/bias per group; 21 per channel.
  const Dim perParam = ctx.opset >= 21 ? c : Dim::known(groups);
  requireChannelVector(ctx, 1, "scale", perParam);
  requireChannelVector(ctx, 2, "bias", perParam);
  ctx.setOutput(0, ctx.inputTypes[0], x);
}

void inferLRN(InferContext& ctx) {
  requireInput(ctx, 0, "X");
  const SymShape& x = ctx.inputShapes[0];
  if (x.hasRank && x.rank() < 3) ctx.error("input X must be at least 3-D [N, C, spatial...], got " + x.toString());
  const int64_t size = ctx.node.getInt("size", 0);
  if (size < 1) ctx.error("attribute size must be >= 1");
  ctx.setOutput(0, ctx.inputTypes[0], x);
}

void inferMeanVarianceNormalization(InferContext& ctx) {
  requireInput(ctx, 0, "X");
  const SymShape& x = ctx.inputShapes[0];
  if (x.hasRank) {
    const int64_t rank = int64_t(x.rank());
    for (int64_t a : ctx.node.getInts("axes", {0, 2, 3})) {
      if (a < -rank || a >= rank) {
        ctx.error("axis " + std::to_string(a) + " is out of range for X " + x.toString());
      }
    }
  }
  ctx.setOutput(0, ctx.inputTypes[0], x);
}

}  // namespace

void inferLayerNormalization(InferContext& ctx) {
  requireInput(ctx, 0, "X");
  requireInput(ctx, 1, "Scale");
  const SymShape& x = ctx.inputShapes[0];
  const DType t = ctx.inputTypes[0];
  // Mean and InvStdDev are computed in stash_type (float32 by default).
  const DType stash = static_cast<DType>(ctx.node.getInt("stash_type", 1));
  if (stash != DType::Float32 && stash != DType::Float64 && stash != DType::Float16 && stash != DType::BFloat16) {
    ctx.error("stash_type " + std::to_string(int(stash)) + " is not a floating type");
  }
  if (!x.hasRank) {
    ctx.setOutput(0, t, SymShape::unknown());
    ctx.setOutput(1, stash, SymShape::unknown());
    ctx.setOutput(2, stash, SymShape::unknown());
    return;
  }
  const int64_t rank = int64_t(x.rank());
  int64_t axis = ctx.node.getInt("axis", -1);
  if (axis < -rank || axis >= rank) ctx.error("axis " + std::to_string(axis) + " is out of range for X " + x.toString());
  if (axis < 0) axis += rank;
  // Scale and Bias broadcast onto the normalized trailing dims X[axis:].
  for (size_t i = 1; i <= 2; i++) {
    if (!ctx.hasInput(i)) continue;
    const SymShape& s = ctx.inputShapes[i];
    if (!s.hasRank) continue;
    if (int64_t(s.rank()) > rank - axis) {
      ctx.error(std::string(i == 1 ? "Scale " : "Bias ") + s.toString() + " has more dims than the normalized part of X " +
                x.toString());
    }
    for (size_t k = 0; k < s.rank(); k++) {
      const Dim& d = s.dims[s.rank() - 1 - k];
      const Dim& xd = x.dims[x.rank() - 1 - k];
      if (d.isKnown() && d.value != 1 && knownDiffer(d, xd)) {
        ctx.error(std::string(i == 1 ? "Scale " : "Bias ") + s.toString() + " does not broadcast to X " + x.toString() +
                  " from axis " + std::to_string(axis));
      }
    }
  }
  ctx.setOutput(0, t, x);
  SymShape stats = x;
  for (int64_t d = axis; d < rank; d++) stats.dims[size_t(d)] = Dim::known(1);
  ctx.setOutput(1, stash, stats);
  ctx.setOutput(2, stash, stats);
}

KILN_REGISTER_SCHEMA(BatchNormalization, (OpSchema{"", "BatchNormalization", 1, inferBatchNormalization}));
KILN_REGISTER_SCHEMA(InstanceNormalization, (OpSchema{"", "InstanceNormalization", 1, inferInstanceNormalization}));
KILN_REGISTER_SCHEMA(LayerNormalization, (OpSchema{"", "LayerNormalization", 17, inferLayerNormalization}));
// RMSNormalization-23: LayerNormalization's shape rule without the mean (and with only Y).
KILN_REGISTER_SCHEMA(LpNormalization, (OpSchema{"", "LpNormalization", 1, inferUnchangedShape}));
KILN_REGISTER_SCHEMA(LpNormalization22, (OpSchema{"", "LpNormalization", 22, inferUnchangedShape}));
KILN_REGISTER_SCHEMA(RMSNormalization, (OpSchema{"", "RMSNormalization", 23, inferLayerNormalization}));
KILN_REGISTER_SCHEMA(GroupNormalization, (OpSchema{"", "GroupNormalization", 18, inferGroupNormalization}));
KILN_REGISTER_SCHEMA(LRN, (OpSchema{"", "LRN", 1, inferLRN}));
KILN_REGISTER_SCHEMA(MeanVarianceNormalization, (OpSchema{"", "MeanVarianceNormalization", 9, inferMeanVarianceNormalization}));

}  // namespace kiln
