// Schemas of Resize and Upsample, and their attribute parsing and size resolution.
#include "ops/resize.h"

#include <algorithm>
#include <cmath>

#include "ops/tensor_util.h"

namespace kiln {

ResizeAttrs parseResizeAttrs(const Node& node, int64_t opset, const std::function<void(const std::string&)>& onError) {
  ResizeAttrs a;
  const bool upsample = node.opType == "Upsample";
  const std::string mode = node.getString("mode", "nearest");
  if (mode == "nearest") a.mode = ResizeMode::Nearest;
  else if (mode == "linear" || (upsample && mode == "bilinear")) a.mode = ResizeMode::Linear;
  else if (mode == "cubic" && !upsample && opset >= 11) a.mode = ResizeMode::Cubic;
  else onError("unsupported mode '" + mode + "'");

  if (upsample || opset < 11) {
    // Upsample-7/9 and Resize-10: asymmetric coordinates, nearest rounds the "simple" way.
    a.coord = ResizeCoord::Asymmetric;
    a.nearest = ResizeNearest::Simple;
    if (upsample && opset < 9) {
      if (!node.has("scales")) onError("attribute scales is required");
      a.scalesAttr = node.getFloats("scales");
    } else {
      a.scalesInput = 1;
    }
    return a;
  }
  a.roiInput = 1;
  a.scalesInput = 2;
  a.sizesInput = 3;
  const std::string coord = node.getString("coordinate_transformation_mode", "half_pixel");
  if (coord == "half_pixel") a.coord = ResizeCoord::HalfPixel;
  else if (coord == "half_pixel_symmetric") a.coord = ResizeCoord::HalfPixelSymmetric;
  else if (coord == "pytorch_half_pixel") a.coord = ResizeCoord::PytorchHalfPixel;
  else if (coord == "align_corners") a.coord = ResizeCoord::AlignCorners;
  else if (coord == "asymmetric") a.coord = ResizeCoord::Asymmetric;
  else if (coord == "tf_half_pixel_for_nn") a.coord = ResizeCoord::TfHalfPixelForNn;
  else if (coord == "tf_crop_and_resize") a.coord = ResizeCoord::TfCropAndResize;
  else onError("unsupported coordinate_transformation_mode '" + coord + "'");
  const std::string nearest = node.getString("nearest_mode", "round_prefer_floor");
  if (nearest == "round_prefer_floor") a.nearest = ResizeNearest::RoundPreferFloor;
  else if (nearest == "round_prefer_ceil") a.nearest = ResizeNearest::RoundPreferCeil;
  else if (nearest == "floor") a.nearest = ResizeNearest::Floor;
  else if (nearest == "ceil") a.nearest = ResizeNearest::Ceil;
  else onError("unsupported nearest_mode '" + nearest + "'");
  a.cubicA = node.getFloat("cubic_coeff_a", -0.75f);
  a.excludeOutside = node.getInt("exclude_outside", 0) != 0;
  a.extrapolation = node.getFloat("extrapolation_value", 0.0f);
  if (opset >= 18) {
    a.antialias = node.getInt("antialias", 0) != 0;
    a.axes = node.getInts("axes");
    const std::string policy = node.getString("keep_aspect_ratio_policy", "stretch");
    if (policy == "stretch") a.aspect = ResizeAspect::Stretch;
    else if (policy == "not_larger") a.aspect = ResizeAspect::NotLarger;
    else if (policy == "not_smaller") a.aspect = ResizeAspect::NotSmaller;
    else onError("unsupported keep_aspect_ratio_policy '" + policy + "'");
  }
  if (a.antialias && a.mode == ResizeMode::Nearest) onError("antialias is not defined for mode 'nearest'");
  return a;
}

ResizePlan planResize(const ResizeAttrs& attrs, const Shape& in, const std::optional<std::vector<double>>& scales,
                      const std::optional<std::vector<int64_t>>& sizes, const std::optional<std::vector<double>>& roi,
                      const std::function<void(const std::string&)>& onError) {
  const int64_t rank = (int64_t)in.size();
  std::vector<int64_t> axes = attrs.axes;
  if (axes.empty()) {
    for (int64_t i = 0; i < rank; i++) axes.push_back(i);
  }
  axes = normalizeAxes(axes, rank, "axes", onError);
  const size_t n = axes.size();
  ResizePlan plan;
  plan.outShape = in;
  plan.scales.assign((size_t)rank, 1.0);
  plan.roiStart.assign((size_t)rank, 0.0);
  plan.roiEnd.assign((size_t)rank, 1.0);
  if (scales && sizes) onError("only one of scales and sizes may be given");
  if (!scales && !sizes) onError("one of scales and sizes is required");
  if (roi && attrs.coord == ResizeCoord::TfCropAndResize) {
    if (roi->size() != 2 * n) onError("roi must have 2 * " + std::to_string(n) + " entries");
    for (size_t i = 0; i < n; i++) {
      plan.roiStart[(size_t)axes[i]] = (*roi)[i];
      plan.roiEnd[(size_t)axes[i]] = (*roi)[n + i];
    }
  }
  if (scales) {
    if (scales->size() != n) {
      onError("scales has " + std::to_string(scales->size()) + " entries for " + std::to_string(n) + " axes");
    }
    for (size_t i = 0; i < n; i++) {
      const double s = (*scales)[i];
      if (!(s > 0) || !std::isfinite(s)) onError("scale " + std::to_string(s) + " must be positive");
      const size_t d = (size_t)axes[i];
      plan.scales[d] = s;
      // The reference truncates: floor(input * scale).
      const double size = std::floor((double)in[d] * s);
      if (size > double(int64_t(1) << 40)) onError("scale " + std::to_string(s) + " makes the output too large");
      plan.outShape[d] = (int64_t)size;
    }
    return plan;
  }
  if (sizes->size() != n) onError("sizes has " + std::to_string(sizes->size()) + " entries for " + std::to_string(n) + " axes");
  for (size_t i = 0; i < n; i++) {
    if ((*sizes)[i] < 0) onError("sizes has a negative entry");
    const size_t d = (size_t)axes[i];
    plan.scales[d] = in[d] > 0 ? (double)(*sizes)[i] / (double)in[d] : 1.0;
    plan.outShape[d] = (*sizes)[i];
  }
  if (attrs.aspect != ResizeAspect::Stretch) {
    // One scale for every resized axis (the smallest or largest), sizes rounded half up from it.
    double s = attrs.aspect == ResizeAspect::NotLarger ? INFINITY : 0;
    for (int64_t a : axes) s = attrs.aspect == ResizeAspect::NotLarger ? std::min(s, plan.scales[(size_t)a]) : std::max(s, plan.scales[(size_t)a]);
    for (int64_t a : axes) {
      plan.scales[(size_t)a] = s;
      plan.outShape[(size_t)a] = (int64_t)(s * (double)in[(size_t)a] + 0.5);
    }
  }
  return plan;
}

namespace {

// The non-empty value of an optional input, when present and known.
std::optional<std::vector<double>> nonEmptyFloats(InferContext& ctx, int input, bool* unknown) {
  if (input < 0 || !ctx.hasInput((size_t)input)) return std::nullopt;
  const Tensor* t = ctx.inputValues[(size_t)input];
  if (!t) {
    // A statically empty input (shape [0]) counts as absent even without its value.
    const SymShape& s = ctx.inputShapes[(size_t)input];
    if (!(s.isConcrete() && inferNumel(ctx, s.concrete()) == 0)) *unknown = true;
    return std::nullopt;
  }
  if (t->numel() == 0) return std::nullopt;
  return tensorToDoubles(*t);
}

void inferResize(InferContext& ctx) {
  expectInput(ctx, 0, "X");
  ResizeAttrs attrs = parseResizeAttrs(ctx.node, ctx.opset, [&](const std::string& m) { ctx.error(m); });
  const SymShape& x = ctx.inputShapes[0];
  const DType type = ctx.inputTypes[0];
  if (!x.hasRank) {
    ctx.setOutput(0, type, SymShape::unknown());
    return;
  }
  bool unknown = false;
  std::optional<std::vector<double>> scales;
  if (!attrs.scalesAttr.empty()) scales = std::vector<double>(attrs.scalesAttr.begin(), attrs.scalesAttr.end());
  else scales = nonEmptyFloats(ctx, attrs.scalesInput, &unknown);
  std::optional<std::vector<int64_t>> sizes;
  if (attrs.sizesInput >= 0 && ctx.hasInput((size_t)attrs.sizesInput)) {
    sizes = ctx.intValues((size_t)attrs.sizesInput);
    if (!sizes) unknown = true;
    else if (sizes->empty()) sizes.reset();
  }
  std::optional<std::vector<double>> roi;
  if (attrs.coord == ResizeCoord::TfCropAndResize) roi = nonEmptyFloats(ctx, attrs.roiInput, &unknown);
  if (unknown || !x.isConcrete()) {
    // Only the resized axes change; without values they are unknown.
    SymShape out = x;
    std::vector<int64_t> axes = normalizeAxes(attrs.axes, (int64_t)x.rank(), "axes", [&](const std::string& m) { ctx.error(m); });
    if (axes.empty()) {
      for (size_t i = 0; i < x.rank(); i++) axes.push_back((int64_t)i);
    }
    if (!unknown) {
      // Values known but some dims symbolic: a scale of exactly 1 keeps the dim.
      Shape stand;
      for (const Dim& d : x.dims) stand.push_back(d.isKnown() ? d.value : 1);
      ResizePlan p = planResize(attrs, stand, scales, sizes, roi, [&](const std::string& m) { ctx.error(m); });
      for (int64_t a : axes) {
        const Dim& d = x.dims[(size_t)a];
        if (d.isKnown()) out.dims[(size_t)a] = Dim::known(p.outShape[(size_t)a]);
        else if (!(scales && p.scales[(size_t)a] == 1.0)) out.dims[(size_t)a] = ctx.freshDim();
      }
    } else {
      for (int64_t a : axes) out.dims[(size_t)a] = ctx.freshDim();
    }
    ctx.setOutput(0, type, out);
    return;
  }
  ResizePlan plan = planResize(attrs, x.concrete(), scales, sizes, roi, [&](const std::string& m) { ctx.error(m); });
  ctx.setOutput(0, type, SymShape::of(plan.outShape));
}

}  // namespace

KILN_REGISTER_SCHEMA(Upsample, (OpSchema{"", "Upsample", 7, inferResize}));
KILN_REGISTER_SCHEMA(Upsample, (OpSchema{"", "Upsample", 9, inferResize}));   // scales attr -> input
KILN_REGISTER_SCHEMA(Resize, (OpSchema{"", "Resize", 10, inferResize}));
KILN_REGISTER_SCHEMA(Resize, (OpSchema{"", "Resize", 11, inferResize}));      // roi, sizes, coordinate modes, cubic
KILN_REGISTER_SCHEMA(Resize, (OpSchema{"", "Resize", 13, inferResize}));      // roi and scales optional
KILN_REGISTER_SCHEMA(Resize, (OpSchema{"", "Resize", 18, inferResize}));      // antialias, axes, aspect policy
KILN_REGISTER_SCHEMA(Resize, (OpSchema{"", "Resize", 19, inferResize}));      // half_pixel_symmetric

}  // namespace kiln
