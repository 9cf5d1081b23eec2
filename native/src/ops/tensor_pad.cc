// Schemas of Pad, CenterCropPad and Tile.
#include "ops/tensor_pad.h"

#include "ops/tensor_util.h"

namespace kiln {

PadMode parsePadMode(const std::string& mode, int64_t opset, const std::function<void(const std::string&)>& onError) {
  if (mode == "constant") return PadMode::Constant;
  if (mode == "reflect") return PadMode::Reflect;
  if (mode == "edge") return PadMode::Edge;
  if (mode == "wrap" && opset >= 19) return PadMode::Wrap;
  onError("unsupported pad mode '" + mode + "'");
  return PadMode::Constant;
}

Pads resolvePads(int64_t rank, const std::vector<int64_t>& pads, const std::vector<int64_t>& axesIn,
                 const std::function<void(const std::string&)>& onError) {
  std::vector<int64_t> axes = axesIn;
  if (axes.empty()) {
    for (int64_t i = 0; i < rank; i++) axes.push_back(i);
  }
  axes = normalizeAxes(axes, rank, "axes", onError);
  if (pads.size() != 2 * axes.size()) {
    onError("pads " + shapeToString(pads) + " must have 2 * " + std::to_string(axes.size()) + " entries");
  }
  Pads p{std::vector<int64_t>((size_t)rank, 0), std::vector<int64_t>((size_t)rank, 0)};
  for (size_t i = 0; i < axes.size(); i++) {
    p.begin[(size_t)axes[i]] = pads[i];
    p.end[(size_t)axes[i]] = pads[axes.size() + i];
  }
  return p;
}

Pads centerCropPads(const std::vector<int64_t>& dims, const std::vector<int64_t>& target,
                    const std::vector<int64_t>& axesIn, const std::function<void(const std::string&)>& onError) {
  const int64_t rank = (int64_t)dims.size();
  std::vector<int64_t> axes = axesIn;
  if (axes.empty()) {
    for (int64_t i = 0; i < rank; i++) axes.push_back(i);
  }
  axes = normalizeAxes(axes, rank, "axes", onError);
  if (target.size() != axes.size()) {
    onError("shape " + shapeToString(target) + " must have one entry per axis (" + std::to_string(axes.size()) + ")");
  }
  Pads p{std::vector<int64_t>((size_t)rank, 0), std::vector<int64_t>((size_t)rank, 0)};
  for (size_t i = 0; i < axes.size(); i++) {
    const int64_t d = dims[(size_t)axes[i]], t = target[i];
    if (t < 0) onError("shape " + shapeToString(target) + " has a negative size");
    // Crop: drop floor(diff/2) at the front. Pad: add floor(diff/2) at the front.
    const int64_t diff = t - d;
    const int64_t front = diff >= 0 ? diff / 2 : -((-diff) / 2);
    p.begin[(size_t)axes[i]] = front;
    p.end[(size_t)axes[i]] = diff - front;
  }
  return p;
}

namespace {

// Output dims of a pad, symbolically.
SymShape paddedShape(InferContext& ctx, const SymShape& in, const Pads& p) {
  SymShape out = in;
  for (size_t d = 0; d < in.rank(); d++) {
    int64_t delta = 0, padded = 0;
    const Dim& x = in.dims[d];
    if (__builtin_add_overflow(p.begin[d], p.end[d], &delta) ||
        (x.isKnown() && __builtin_add_overflow(x.value, delta, &padded))) {
      ctx.error("pads on axis " + std::to_string(d) + " overflow");
    }
    if (x.isKnown()) {
      if (padded < 0) {
        ctx.error("pads " + std::to_string(p.begin[d]) + "/" + std::to_string(p.end[d]) + " crop axis " +
                  std::to_string(d) + " of shape " + in.toString() + " below zero");
      }
      out.dims[d] = Dim::known(padded);
    } else {
      out.dims[d] = delta == 0 ? x : ctx.freshDim();
    }
  }
  return out;
}

void inferPad(InferContext& ctx) {
  expectInput(ctx, 0, "data");
  const SymShape& in = ctx.inputShapes[0];
  parsePadMode(ctx.node.getString("mode", "constant"), ctx.opset, [&](const std::string& m) { ctx.error(m); });
  // Pad-1 named the attribute "paddings", Pad-2 "pads"; Pad-11 made it an input, Pad-18 added axes.
  IntsArg pads = readIntsArg(ctx, ctx.opset < 2 ? "paddings" : "pads", 1, 11);
  IntsArg axes = ctx.opset >= 18 ? readIntsArg(ctx, "", 3, 18) : IntsArg{};
  if (!pads.present) ctx.error("pads are required");
  if (!in.hasRank) {
    ctx.setOutput(0, ctx.inputTypes[0], SymShape::unknown());
    return;
  }
  if (ctx.hasInput(2) && ctx.inputTypes[2] != ctx.inputTypes[0]) ctx.error("constant_value must have the data's type");
  if (!pads.known || (axes.present && !axes.known)) {
    SymShape out = in;
    for (Dim& d : out.dims) d = ctx.freshDim();
    ctx.setOutput(0, ctx.inputTypes[0], out);
    return;
  }
  Pads p = resolvePads((int64_t)in.rank(), pads.values, axes.values, [&](const std::string& m) { ctx.error(m); });
  ctx.setOutput(0, ctx.inputTypes[0], paddedShape(ctx, in, p));
}

void inferCenterCropPad(InferContext& ctx) {
  expectInput(ctx, 0, "input_data");
  expectInput(ctx, 1, "shape");
  const SymShape& in = ctx.inputShapes[0];
  auto target = ctx.intValues(1);
  if (!in.hasRank) {
    ctx.setOutput(0, ctx.inputTypes[0], SymShape::unknown());
    return;
  }
  std::vector<int64_t> axes = normalizeAxes(ctx.node.getInts("axes"), (int64_t)in.rank(), "axes",
                                            [&](const std::string& m) { ctx.error(m); });
  if (axes.empty()) {
    for (size_t i = 0; i < in.rank(); i++) axes.push_back((int64_t)i);
  }
  SymShape out = in;
  if (!target) {
    for (int64_t a : axes) out.dims[(size_t)a] = ctx.freshDim();
  } else {
    if (target->size() != axes.size()) ctx.error("shape " + shapeToString(*target) + " must have one entry per axis");
    for (size_t i = 0; i < axes.size(); i++) {
      if ((*target)[i] < 0) ctx.error("shape " + shapeToString(*target) + " has a negative size");
      out.dims[(size_t)axes[i]] = Dim::known((*target)[i]);
    }
  }
  ctx.setOutput(0, ctx.inputTypes[0], out);
}

void inferTile(InferContext& ctx) {
  expectInput(ctx, 0, "input");
  expectInput(ctx, 1, "repeats");
  const SymShape& in = ctx.inputShapes[0];
  auto repeats = ctx.intValues(1);
  if (!in.hasRank) {
    ctx.setOutput(0, ctx.inputTypes[0], SymShape::unknown());
    return;
  }
  SymShape out = in;
  if (!repeats) {
    for (Dim& d : out.dims) d = ctx.freshDim();
  } else {
    if (repeats->size() != in.rank()) {
      ctx.error("repeats " + shapeToString(*repeats) + " must have one entry per dim of " + in.toString());
    }
    for (size_t i = 0; i < in.rank(); i++) {
      if ((*repeats)[i] < 0) ctx.error("repeats " + shapeToString(*repeats) + " has a negative entry");
      out.dims[i] = ctx.mul(in.dims[i], Dim::known((*repeats)[i]));
    }
  }
  ctx.setOutput(0, ctx.inputTypes[0], out);
}

}  // namespace

KILN_REGISTER_SCHEMA(Pad, (OpSchema{"", "Pad", 1, inferPad}));
KILN_REGISTER_SCHEMA(Pad, (OpSchema{"", "Pad", 2, inferPad}));    // paddings -> pads
KILN_REGISTER_SCHEMA(Pad, (OpSchema{"", "Pad", 11, inferPad}));   // pads/value attrs -> inputs
KILN_REGISTER_SCHEMA(Pad, (OpSchema{"", "Pad", 18, inferPad}));   // axes
KILN_REGISTER_SCHEMA(Pad, (OpSchema{"", "Pad", 19, inferPad}));   // wrap mode
KILN_REGISTER_SCHEMA(CenterCropPad, (OpSchema{"", "CenterCropPad", 18, inferCenterCropPad}));
KILN_REGISTER_SCHEMA(Tile, (OpSchema{"", "Tile", 6, inferTile}));

}  // namespace kiln
