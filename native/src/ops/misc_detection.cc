// Schemas of the detection ops: NonMaxSuppression (YOLO/SSD exports end with it) and RoiAlign.
#include "ops/tensor_util.h"

namespace kiln {

namespace {

// Unifies dim a with dim b for error checking: both known and different is an error.
void checkSameDim(InferContext& ctx, const Dim& a, const Dim& b, const std::string& what) {
  if (a.isKnown() && b.isKnown() && a.value != b.value) ctx.error(what + " differ: " + a.toString() + " vs " + b.toString());
}

void inferNonMaxSuppression(InferContext& ctx) {
  expectInput(ctx, 0, "boxes");
  expectInput(ctx, 1, "scores");
  const SymShape& boxes = ctx.inputShapes[0];
  const SymShape& scores = ctx.inputShapes[1];
  if (boxes.hasRank) {
    if (boxes.rank() != 3) ctx.error("boxes must be [batch, boxes, 4], got " + boxes.toString());
    checkSameDim(ctx, boxes.dims[2], Dim::known(4), "boxes' last dim and 4");
  }
  if (scores.hasRank && scores.rank() != 3) ctx.error("scores must be [batch, classes, boxes], got " + scores.toString());
  if (boxes.hasRank && scores.hasRank) {
    checkSameDim(ctx, boxes.dims[0], scores.dims[0], "batch sizes of boxes and scores");
    checkSameDim(ctx, boxes.dims[1], scores.dims[2], "box counts of boxes and scores");
  }
  const int64_t center = ctx.node.getInt("center_point_box", 0);
  if (center != 0 && center != 1) ctx.error("center_point_box must be 0 or 1");
  ctx.setOutput(0, DType::Int64, SymShape{true, {ctx.freshDim(), Dim::known(3)}});
}

void inferRoiAlign(InferContext& ctx) {
  expectInput(ctx, 0, "X");
  expectInput(ctx, 1, "rois");
  expectInput(ctx, 2, "batch_indices");
  const SymShape& x = ctx.inputShapes[0];
  const SymShape& rois = ctx.inputShapes[1];
  const SymShape& idx = ctx.inputShapes[2];
  if (x.hasRank && x.rank() != 4) ctx.error("X must be [N, C, H, W], got " + x.toString());
  if (rois.hasRank && (rois.rank() != 2 || (rois.dims[1].isKnown() && rois.dims[1].value != 4))) {
    ctx.error("rois must be [num_rois, 4], got " + rois.toString());
  }
  if (idx.hasRank && idx.rank() != 1) ctx.error("batch_indices must be 1-D, got " + idx.toString());
  if (rois.hasRank && idx.hasRank) checkSameDim(ctx, rois.dims[0], idx.dims[0], "roi counts of rois and batch_indices");
  const std::string mode = ctx.node.getString("mode", "avg");
  if (mode != "avg" && mode != "max") ctx.error("unsupported mode '" + mode + "'");
  if (ctx.opset >= 16) {
    const std::string coord = ctx.node.getString("coordinate_transformation_mode", "half_pixel");
    if (coord != "half_pixel" && coord != "output_half_pixel") ctx.error("unsupported coordinate_transformation_mode '" + coord + "'");
  }
  const int64_t oh = ctx.node.getInt("output_height", 1), ow = ctx.node.getInt("output_width", 1);
  if (oh <= 0 || ow <= 0) ctx.error("output_height and output_width must be positive");
  if (ctx.node.getInt("sampling_ratio", 0) < 0) ctx.error("sampling_ratio must be >= 0");
  Dim n = rois.hasRank ? rois.dims[0] : (idx.hasRank ? idx.dims[0] : ctx.freshDim());
  Dim c = x.hasRank ? x.dims[1] : ctx.freshDim();
  ctx.setOutput(0, ctx.inputTypes[0], SymShape{true, {n, c, Dim::known(oh), Dim::known(ow)}});
}

}  // namespace

KILN_REGISTER_SCHEMA(NonMaxSuppression, (OpSchema{"", "NonMaxSuppression", 10, inferNonMaxSuppression, true}));
KILN_REGISTER_SCHEMA(NonMaxSuppression, (OpSchema{"", "NonMaxSuppression", 11, inferNonMaxSuppression, true}));
KILN_REGISTER_SCHEMA(RoiAlign, (OpSchema{"", "RoiAlign", 10, inferRoiAlign}));
KILN_REGISTER_SCHEMA(RoiAlign, (OpSchema{"", "RoiAlign", 16, inferRoiAlign}));  // coordinate_transformation_mode

}  // namespace kiln
