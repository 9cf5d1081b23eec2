// Schemas of Concat and Split.
#include "ops/tensor_concat_split.h"

#include <algorithm>

#include "ops/tensor_util.h"

namespace kiln {

std::optional<std::vector<int64_t>> splitSizes(const Node& node, int64_t opset, std::optional<int64_t> dim,
                                               const std::optional<std::vector<int64_t>>& split, size_t numOutputs,
                                               const std::function<void(const std::string&)>& onError) {
  if (numOutputs == 0) onError("Split needs at least one output");
  if (split) {
    if (split->size() != numOutputs) {
      onError("split " + shapeToString(*split) + " has " + std::to_string(split->size()) + " entries for " +
              std::to_string(numOutputs) + " outputs");
    }
    int64_t sum = 0;
    for (int64_t s : *split) {
      if (s < 0 || __builtin_add_overflow(sum, s, &sum)) onError("split " + shapeToString(*split) + " has an invalid size");
    }
    if (dim && sum != *dim) {
      onError("split " + shapeToString(*split) + " sums to " + std::to_string(sum) + " but the axis has size " +
              std::to_string(*dim));
    }
    return *split;
  }
  if (opset >= 18 && node.has("num_outputs")) {
    int64_t n = node.getInt("num_outputs", 0);
    if (n <= 0 || (size_t)n != numOutputs) {
      onError("num_outputs " + std::to_string(n) + " does not match the node's " + std::to_string(numOutputs) +
              " outputs");
    }
    if (!dim) return std::nullopt;
    // Split-18: chunks of ceil(dim / n) until the axis runs out, as the ONNX reference does: the
    // last chunks may be smaller or empty (size 5 into 4 outputs is 2, 2, 1, 0).
    const int64_t chunk = *dim / n + (*dim % n != 0 ? 1 : 0);
    std::vector<int64_t> sizes((size_t)n, 0);
    int64_t left = *dim;
    for (int64_t& size : sizes) {
      size = std::min(chunk, left);
      left -= size;
    }
    return sizes;
  }
  if (opset >= 18) onError("either the split input or the num_outputs attribute is required");
  if (!dim) return std::nullopt;
  if (*dim % (int64_t)numOutputs != 0) {
    onError("an axis of size " + std::to_string(*dim) + " cannot be split evenly into " + std::to_string(numOutputs) +
            " outputs");
  }
  return std::vector<int64_t>(numOutputs, *dim / (int64_t)numOutputs);
}

namespace {

void inferConcat(InferContext& ctx) {
  if (ctx.numInputs() == 0) ctx.error("Concat needs at least one input");
  // Concat-1 defaulted the axis to 1; from opset 4 it is required.
  if (ctx.opset >= 4 && !ctx.node.has("axis")) ctx.error("attribute axis is required");
  const int64_t axisAttr = ctx.node.getInt("axis", 1);
  DType type = DType::Undefined;
  const SymShape* ranked = nullptr;
  for (size_t i = 0; i < ctx.numInputs(); i++) {
    expectInput(ctx, i, "inputs");
    if (type == DType::Undefined) type = ctx.inputTypes[i];
    if (ctx.inputTypes[i] != type) {
      ctx.error(std::string("input ") + std::to_string(i) + " has type " + dtypeName(ctx.inputTypes[i]) +
                ", expected " + dtypeName(type));
    }
    if (!ranked && ctx.inputShapes[i].hasRank) ranked = &ctx.inputShapes[i];
  }
  if (!ranked) {
    ctx.setOutput(0, type, SymShape::unknown());
    return;
  }
  const int64_t rank = (int64_t)ranked->rank();
  const int64_t axis = inferAxis(ctx, axisAttr, rank);
  SymShape out = *ranked;
  Dim total = Dim::known(0);
  bool totalKnown = true;
  for (size_t i = 0; i < ctx.numInputs(); i++) {
    const SymShape& s = ctx.inputShapes[i];
    if (!s.hasRank) {
      totalKnown = false;
      continue;
    }
    if ((int64_t)s.rank() != rank) {
      ctx.error("input " + std::to_string(i) + " has shape " + s.toString() + ", rank differs from " +
                ranked->toString());
    }
    for (int64_t d = 0; d < rank; d++) {
      if (d == axis) continue;
      Dim& o = out.dims[(size_t)d];
      const Dim& x = s.dims[(size_t)d];
      if (o.isKnown() && x.isKnown() && o.value != x.value) {
        ctx.error("input " + std::to_string(i) + " has shape " + s.toString() + ", incompatible with " +
                  ranked->toString() + " outside axis " + std::to_string(axis));
      }
      if (!o.isKnown() && x.isKnown()) o = x;
    }
    total = ctx.add(total, s.dims[(size_t)axis]);
  }
  out.dims[(size_t)axis] = totalKnown ? total : ctx.freshDim();
  ctx.setOutput(0, type, out);
}

void inferSplit(InferContext& ctx) {
  expectInput(ctx, 0, "input");
  if (!ctx.inputShapes[0].hasRank) {
    for (size_t i = 0; i < ctx.numOutputs(); i++) ctx.setOutput(i, ctx.inputTypes[0], SymShape::unknown());
    return;
  }
  const int64_t rank = (int64_t)ctx.inputShapes[0].rank();
  const int64_t axis = inferAxis(ctx, ctx.node.getInt("axis", 0), rank);
  const SymShape& in = ctx.inputShapes[0];
  std::optional<std::vector<int64_t>> split;
  IntsArg arg = readIntsArg(ctx, "split", 1, 13);
  if (ctx.opset < 13 && !arg.present && ctx.hasInput(1)) arg = readIntsArg(ctx, "", 1, 0);  // Split-1's input
  if (arg.present && !arg.known) {
    for (size_t i = 0; i < ctx.numOutputs(); i++) {
      SymShape s = in;
      s.dims[(size_t)axis] = ctx.freshDim();
      ctx.setOutput(i, ctx.inputTypes[0], s);
    }
    return;
  }
  if (arg.present && !(ctx.opset >= 13 && arg.values.empty())) split = arg.values;
  const Dim& d = in.dims[(size_t)axis];
  auto sizes = splitSizes(ctx.node, ctx.opset, d.isKnown() ? std::optional<int64_t>(d.value) : std::nullopt, split,
                          ctx.numOutputs(), [&](const std::string& m) { ctx.error(m); });
  for (size_t i = 0; i < ctx.numOutputs(); i++) {
    SymShape s = in;
    if (sizes) s.dims[(size_t)axis] = Dim::known((*sizes)[i]);
    else s.dims[(size_t)axis] = ctx.numOutputs() == 1 ? d : ctx.freshDim();
    ctx.setOutput(i, ctx.inputTypes[0], s);
  }
}

}  // namespace

KILN_REGISTER_SCHEMA(Concat, (OpSchema{"", "Concat", 1, inferConcat}));
KILN_REGISTER_SCHEMA(Concat, (OpSchema{"", "Concat", 4, inferConcat}));    // axis required
KILN_REGISTER_SCHEMA(Concat, (OpSchema{"", "Concat", 11, inferConcat}));   // negative axis
KILN_REGISTER_SCHEMA(Split, (OpSchema{"", "Split", 1, inferSplit}));
KILN_REGISTER_SCHEMA(Split, (OpSchema{"", "Split", 2, inferSplit}));
KILN_REGISTER_SCHEMA(Split, (OpSchema{"", "Split", 11, inferSplit}));      // negative axis
KILN_REGISTER_SCHEMA(Split, (OpSchema{"", "Split", 13, inferSplit}));      // split attr -> input
KILN_REGISTER_SCHEMA(Split, (OpSchema{"", "Split", 18, inferSplit}));      // num_outputs

}  // namespace kiln
