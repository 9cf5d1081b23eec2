// Schemas of Slice and ReverseSequence.
#include "ops/tensor_slice.h"

#include <algorithm>

#include "ops/tensor_util.h"

namespace kiln {

AxisSlice resolveSliceAxis(int64_t dim, int64_t start, int64_t end, int64_t step) {
  // Negative indices count from the end; then both ends clamp to the valid range for the step's
  // direction: [0, dim] going forward, [-1, dim-1] going backward (-1 meaning "past the front").
  if (dim <= 0) return AxisSlice{0, step, 0};
  if (start < 0) start += dim;
  if (end < 0) end += dim;
  AxisSlice s;
  s.step = step;
  if (step > 0) {
    start = std::clamp<int64_t>(start, 0, dim);
    end = std::clamp<int64_t>(end, 0, dim);
    s.count = end > start ? (end - start - 1) / step + 1 : 0;
  } else {
    start = std::clamp<int64_t>(start, 0, dim - 1);
    end = std::clamp<int64_t>(end, -1, dim - 1);
    // -step would overflow for INT64_MIN; in unsigned arithmetic it is exact.
    const uint64_t stride = uint64_t(0) - (uint64_t)step;
    s.count = start > end ? (int64_t)((uint64_t)(start - end - 1) / stride + 1) : 0;
  }
  s.start = s.count > 0 ? start : 0;
  return s;
}

std::vector<AxisSlice> resolveSlice(const std::vector<int64_t>& dims, const std::vector<int64_t>& starts,
                                    const std::vector<int64_t>& ends, const std::vector<int64_t>& axesIn,
                                    const std::vector<int64_t>& steps,
                                    const std::function<void(const std::string&)>& onError) {
  const int64_t rank = (int64_t)dims.size();
  if (starts.size() != ends.size()) {
    onError("starts " + shapeToString(starts) + " and ends " + shapeToString(ends) + " differ in length");
  }
  std::vector<int64_t> axes = axesIn;
  if (axes.empty()) {
    for (size_t i = 0; i < starts.size(); i++) axes.push_back((int64_t)i);
  }
  if (axes.size() != starts.size()) onError("axes " + shapeToString(axes) + " and starts differ in length");
  if (!steps.empty() && steps.size() != starts.size()) onError("steps " + shapeToString(steps) + " and starts differ in length");
  axes = normalizeAxes(axes, rank, "axes", onError);
  std::vector<AxisSlice> out((size_t)rank);
  for (int64_t d = 0; d < rank; d++) out[(size_t)d] = AxisSlice{0, 1, dims[(size_t)d]};
  for (size_t i = 0; i < axes.size(); i++) {
    int64_t step = steps.empty() ? 1 : steps[i];
    if (step == 0) onError("steps " + shapeToString(steps) + " contain 0");
    out[(size_t)axes[i]] = resolveSliceAxis(dims[(size_t)axes[i]], starts[i], ends[i], step);
  }
  return out;
}

namespace {

void inferSlice(InferContext& ctx) {
  expectInput(ctx, 0, "data");
  const SymShape& in = ctx.inputShapes[0];
  const DType type = ctx.inputTypes[0];
  // Slice-1 takes starts/ends/axes as attributes; Slice-10 as inputs 1..4 (axes, steps optional).
  IntsArg starts = readIntsArg(ctx, "starts", 1, 10), ends = readIntsArg(ctx, "ends", 2, 10);
  IntsArg axes = readIntsArg(ctx, "axes", 3, 10);
  IntsArg steps = ctx.opset >= 10 ? readIntsArg(ctx, "", 4, 10) : IntsArg{};
  if (!starts.present || !ends.present) ctx.error("starts and ends are required");
  if (!in.hasRank) {
    ctx.setOutput(0, type, SymShape::unknown());
    return;
  }
  const int64_t rank = (int64_t)in.rank();
  SymShape out = in;
  if (!starts.known || !ends.known || (axes.present && !axes.known) || (steps.present && !steps.known)) {
    if (axes.present && axes.known) {
      // Only the listed axes change.
      for (int64_t a : normalizeAxes(axes.values, rank, "axes", [&](const std::string& m) { ctx.error(m); })) {
        out.dims[(size_t)a] = ctx.freshDim();
      }
    } else {
      for (Dim& d : out.dims) d = ctx.freshDim();
    }
    ctx.setOutput(0, type, out);
    return;
  }
  // Resolve with every unknown dim stood in by a huge size, then keep only what does not depend
  // on it: a full-range step-1 slice of a symbolic dim is that dim.
  constexpr int64_t kUnknown = int64_t(1) << 60;
  std::vector<int64_t> dims;
  for (const Dim& d : in.dims) dims.push_back(d.isKnown() ? d.value : kUnknown);
  auto slices = resolveSlice(dims, starts.values, ends.values, axes.values, steps.values,
                             [&](const std::string& m) { ctx.error(m); });
  for (int64_t d = 0; d < rank; d++) {
    const Dim& x = in.dims[(size_t)d];
    const AxisSlice& s = slices[(size_t)d];
    if (x.isKnown()) out.dims[(size_t)d] = Dim::known(s.count);
    else out.dims[(size_t)d] = (s.start == 0 && s.step == 1 && s.count == kUnknown) ? x : ctx.freshDim();
  }
  ctx.setOutput(0, type, out);
}

void inferReverseSequence(InferContext& ctx) {
  expectInput(ctx, 0, "input");
  expectInput(ctx, 1, "sequence_lens");
  const SymShape& in = ctx.inputShapes[0];
  const int64_t batchAxis = ctx.node.getInt("batch_axis", 1), timeAxis = ctx.node.getInt("time_axis", 0);
  if ((batchAxis != 0 && batchAxis != 1) || (timeAxis != 0 && timeAxis != 1) || batchAxis == timeAxis) {
    ctx.error("batch_axis and time_axis must be 0 and 1 in some order");
  }
  if (in.hasRank && in.rank() < 2) ctx.error("input must have rank >= 2, got " + in.toString());
  if (ctx.inputTypes[1] != DType::Int64) ctx.error("sequence_lens must be int64");
  ctx.setOutput(0, ctx.inputTypes[0], in);
}

}  // namespace

KILN_REGISTER_SCHEMA(Slice, (OpSchema{"", "Slice", 1, inferSlice}));
KILN_REGISTER_SCHEMA(Slice, (OpSchema{"", "Slice", 10, inferSlice}));  // attrs -> inputs, steps
KILN_REGISTER_SCHEMA(Slice, (OpSchema{"", "Slice", 11, inferSlice}));  // negative axes
KILN_REGISTER_SCHEMA(ReverseSequence, (OpSchema{"", "ReverseSequence", 10, inferReverseSequence}));

}  // namespace kiln
