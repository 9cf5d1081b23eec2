// CPU kernels of NonMaxSuppression and RoiAlign, matching the ONNX reference (and ONNX Runtime):
// NMS sorts each class's candidates by score (ties: lower box index first), keeps a box unless its
// IoU with an already kept box of the class exceeds the threshold; RoiAlign averages (or takes the
// max of weighted corners, as ONNX Runtime does) bilinear samples on a regular grid in each bin.
#include <algorithm>
#include <cmath>

#include "backends/cpu/ops/tensor_copy.h"
#include "backends/cpu/ops/tensor_numeric.h"
#include "ops/tensor_util.h"

namespace kiln::cpu {

namespace {

struct Box {
  float xmin, ymin, xmax, ymax;
};

Box readBox(const float* b, bool centerPoint) {
  if (centerPoint) {  // [x_center, y_center, width, height]
    return {b[0] - b[2] / 2, b[1] - b[3] / 2, b[0] + b[2] / 2, b[1] + b[3] / 2};
  }
  // [y1, x1, y2, x2], corners in either order.
  return {std::min(b[1], b[3]), std::min(b[0], b[2]), std::max(b[1], b[3]), std::max(b[0], b[2])};
}

bool suppressed(const Box& a, const Box& b, float iouThreshold) {
  const float ix0 = std::max(a.xmin, b.xmin), ix1 = std::min(a.xmax, b.xmax);
  if (ix1 <= ix0) return false;
  const float iy0 = std::max(a.ymin, b.ymin), iy1 = std::min(a.ymax, b.ymax);
  if (iy1 <= iy0) return false;
  const float inter = (ix1 - ix0) * (iy1 - iy0);
  const float areaA = (a.xmax - a.xmin) * (a.ymax - a.ymin), areaB = (b.xmax - b.xmin) * (b.ymax - b.ymin);
  const float uni = areaA + areaB - inter;
  if (inter <= 0 || areaA <= 0 || areaB <= 0 || uni <= 0) return false;
  return inter / uni > iouThreshold;
}

std::unique_ptr<Kernel> createNonMaxSuppressionKernel(const KernelCreateInfo& info) {
  const bool centerPoint = info.node.getInt("center_point_box", 0) == 1;
  return makeKernel("non_max_suppression", [centerPoint](KernelContext& ctx) {
    const Tensor& boxes = needInput(ctx, 0, "boxes");
    const Tensor& scores = needInput(ctx, 1, "scores");
    if (boxes.dtype != DType::Float32 || scores.dtype != DType::Float32) {
      nodeFail(ctx.node, ErrorCode::UnsupportedOp, "boxes and scores must be float32");
    }
    if (boxes.shape.size() != 3 || boxes.shape[2] != 4 || scores.shape.size() != 3 || boxes.shape[0] != scores.shape[0] ||
        boxes.shape[1] != scores.shape[2]) {
      nodeFail(ctx.node, ErrorCode::ShapeMismatch,
               "boxes " + shapeToString(boxes.shape) + " and scores " + shapeToString(scores.shape) +
                   " must be [batch, boxes, 4] and [batch, classes, boxes]");
    }
    auto optionalScalar = [&](size_t i) -> const Tensor* {
      return i < ctx.inputs.size() && ctx.inputs[i] && ctx.inputs[i]->numel() > 0 ? ctx.inputs[i] : nullptr;
    };
    int64_t maxPerClass = 0;
    float iouThreshold = 0;
    bool hasScoreThreshold = false;
    float scoreThreshold = 0;
    if (const Tensor* t = optionalScalar(2)) maxPerClass = std::max<int64_t>(0, t->toInt64Vector()[0]);
    if (const Tensor* t = optionalScalar(3)) iouThreshold = (float)t->scalarAsDouble(0);
    if (const Tensor* t = optionalScalar(4)) {
      hasScoreThreshold = true;
      scoreThreshold = (float)t->scalarAsDouble(0);
    }
    if (iouThreshold < 0 || iouThreshold > 1) {
      nodeFail(ctx.node, ErrorCode::InvalidArgument, "iou_threshold " + std::to_string(iouThreshold) + " must be in [0, 1]");
    }
    const int64_t batches = boxes.shape[0], count = boxes.shape[1], classes = scores.shape[1];
    std::vector<int64_t> selected;  // triples
    std::vector<std::pair<float, int64_t>> candidates;
    std::vector<Box> kept;
    for (int64_t b = 0; b < batches && maxPerClass > 0; b++) {
      const float* bb = boxes.ptr<float>() + b * count * 4;
      for (int64_t c = 0; c < classes; c++) {
        const float* sc = scores.ptr<float>() + (b * classes + c) * count;
        candidates.clear();
        for (int64_t i = 0; i < count; i++) {
          if (!hasScoreThreshold || sc[i] > scoreThreshold) candidates.push_back({sc[i], i});
        }
        std::stable_sort(candidates.begin(), candidates.end(),
                         [](const auto& x, const auto& y) { return x.first > y.first; });
        kept.clear();
        for (const auto& [score, i] : candidates) {
          if ((int64_t)kept.size() >= maxPerClass) break;
          const Box box = readBox(bb + i * 4, centerPoint);
          bool keep = true;
          for (const Box& k : kept) {
            if (suppressed(box, k, iouThreshold)) {
              keep = false;
              break;
            }
          }
          if (!keep) continue;
          kept.push_back(box);
          selected.insert(selected.end(), {b, c, i});
        }
      }
    }
    Tensor& out = ctx.allocateOutput(0, DType::Int64, {(int64_t)selected.size() / 3, 3});
    std::copy(selected.begin(), selected.end(), out.ptr<int64_t>());
  });
}

// One bilinear sample: four input offsets (within a channel plane) and their weights.
struct Sample {
  int64_t pos[4] = {0, 0, 0, 0};
  float w[4] = {0, 0, 0, 0};
};

Sample bilinearSample(float y, float x, int64_t height, int64_t width) {
  Sample s;
  // Outside the feature map (or not a number): the sample contributes zero.
  if (!(y >= -1.0f && y <= (float)height && x >= -1.0f && x <= (float)width)) return s;
  y = std::max(y, 0.0f);
  x = std::max(x, 0.0f);
  int64_t y0 = (int64_t)y, x0 = (int64_t)x, y1, x1;
  if (y0 >= height - 1) {
    y1 = y0 = height - 1;
    y = (float)y0;
  } else {
    y1 = y0 + 1;
  }
  if (x0 >= width - 1) {
    x1 = x0 = width - 1;
    x = (float)x0;
  } else {
    x1 = x0 + 1;
  }
  const float ly = y - (float)y0, lx = x - (float)x0, hy = 1 - ly, hx = 1 - lx;
  s.pos[0] = y0 * width + x0;
  s.pos[1] = y0 * width + x1;
  s.pos[2] = y1 * width + x0;
  s.pos[3] = y1 * width + x1;
  s.w[0] = hy * hx;
  s.w[1] = hy * lx;
  s.w[2] = ly * hx;
  s.w[3] = ly * lx;
  return s;
}

std::unique_ptr<Kernel> createRoiAlignKernel(const KernelCreateInfo& info) {
  const bool maxMode = info.node.getString("mode", "avg") == "max";
  const int64_t oh = info.node.getInt("output_height", 1), ow = info.node.getInt("output_width", 1);
  const int64_t samplingRatio = info.node.getInt("sampling_ratio", 0);
  const float spatialScale = info.node.getFloat("spatial_scale", 1.0f);
  // RoiAlign-10 had no attribute and behaved as "output_half_pixel" (no half-pixel shift).
  const bool halfPixel = info.opset >= 16 && info.node.getString("coordinate_transformation_mode", "half_pixel") == "half_pixel";
  return makeKernel(maxMode ? "roi_align.max" : "roi_align.avg", [=](KernelContext& ctx) {
    const Tensor& x = needInput(ctx, 0, "X");
    const Tensor& rois = needInput(ctx, 1, "rois");
    const Tensor& batchIdx = needInput(ctx, 2, "batch_indices");
    Tensor& out = needOutput(ctx, 0);
    if (x.shape.size() != 4 || rois.shape.size() != 2 || rois.shape[1] != 4 || batchIdx.shape.size() != 1 ||
        batchIdx.shape[0] != rois.shape[0]) {
      nodeFail(ctx.node, ErrorCode::ShapeMismatch,
               "X " + shapeToString(x.shape) + ", rois " + shapeToString(rois.shape) + ", batch_indices " +
                   shapeToString(batchIdx.shape) + " must be [N,C,H,W], [R,4], [R]");
    }
    if (oh <= 0 || ow <= 0 || samplingRatio < 0) nodeFail(ctx.node, ErrorCode::InvalidArgument, "invalid output size or sampling_ratio");
    const int64_t n = x.shape[0], channels = x.shape[1], height = x.shape[2], width = x.shape[3], numRois = rois.shape[0];
    const std::vector<int64_t> batches = batchIdx.toInt64Vector();
    for (int64_t r = 0; r < numRois; r++) {
      if (batches[(size_t)r] < 0 || batches[(size_t)r] >= n) {
        nodeFail(ctx.node, ErrorCode::InvalidArgument,
                 "batch_indices[" + std::to_string(r) + "] = " + std::to_string(batches[(size_t)r]) + " is out of range [0, " +
                     std::to_string(n) + ")");
      }
    }
    // Each ROI's geometry, computed (and bounded) before the parallel part: kernels must not throw
    // from pool threads.
    struct Geometry {
      float startH, startW, binH, binW;
      int64_t gridH, gridW;
    };
    const std::vector<double> roiValues = tensorToDoubles(rois);
    std::vector<Geometry> geometry((size_t)numRois);
    for (int64_t r = 0; r < numRois; r++) {
      const float offset = halfPixel ? 0.5f : 0.0f;
      Geometry& g = geometry[(size_t)r];
      g.startW = (float)roiValues[(size_t)(r * 4)] * spatialScale - offset;
      g.startH = (float)roiValues[(size_t)(r * 4 + 1)] * spatialScale - offset;
      float roiW = (float)roiValues[(size_t)(r * 4 + 2)] * spatialScale - offset - g.startW;
      float roiH = (float)roiValues[(size_t)(r * 4 + 3)] * spatialScale - offset - g.startH;
      if (!halfPixel) {  // malformed ROIs become 1x1
        roiW = std::max(roiW, 1.0f);
        roiH = std::max(roiH, 1.0f);
      }
      g.binH = roiH / (float)oh;
      g.binW = roiW / (float)ow;
      // Adaptive grids follow the ROI's size; a hostile ROI must not ask for billions of samples.
      const double gh = samplingRatio > 0 ? (double)samplingRatio : std::ceil((double)roiH / (double)oh);
      const double gw = samplingRatio > 0 ? (double)samplingRatio : std::ceil((double)roiW / (double)ow);
      if (!(gh >= 0 && gw >= 0 && gh * gw * (double)(oh * ow) <= double(1 << 26))) {
        nodeFail(ctx.node, ErrorCode::InvalidArgument, "roi " + std::to_string(r) + " needs too many samples");
      }
      g.gridH = (int64_t)gh;
      g.gridW = (int64_t)gw;
    }
    visitFloating(x.dtype, describeNode(ctx.node), [&](auto num) {
      using N = decltype(num);
      using S = typename N::Storage;
      const S* src = x.ptr<S>();
      S* dst = out.ptr<S>();
      threadsOf(ctx).parallelFor(numRois, 1, [&](int64_t begin, int64_t end) {
        std::vector<Sample> samples;
        for (int64_t r = begin; r < end; r++) {
          const Geometry& g = geometry[(size_t)r];
          const int64_t gridH = g.gridH, gridW = g.gridW;
          const float count = (float)std::max<int64_t>(gridH * gridW, 1);
          // Sample positions and weights are shared by every channel.
          samples.clear();
          for (int64_t ph = 0; ph < oh; ph++) {
            for (int64_t pw = 0; pw < ow; pw++) {
              for (int64_t iy = 0; iy < gridH; iy++) {
                const float y = g.startH + (float)ph * g.binH + ((float)iy + 0.5f) * g.binH / (float)gridH;
                for (int64_t ix = 0; ix < gridW; ix++) {
                  const float xx = g.startW + (float)pw * g.binW + ((float)ix + 0.5f) * g.binW / (float)gridW;
                  samples.push_back(bilinearSample(y, xx, height, width));
                }
              }
            }
          }
          const int64_t perBin = gridH * gridW;
          for (int64_t c = 0; c < channels; c++) {
            const S* plane = src + (batches[(size_t)r] * channels + c) * height * width;
            S* o = dst + (r * channels + c) * oh * ow;
            for (int64_t bin = 0; bin < oh * ow; bin++) {
              float acc = 0;
              bool first = true;
              for (int64_t k = 0; k < perBin; k++) {
                const Sample& s = samples[(size_t)(bin * perBin + k)];
                if (maxMode) {
                  float v = s.w[0] * (float)N::load(plane[s.pos[0]]);
                  for (int q = 1; q < 4; q++) v = std::max(v, s.w[q] * (float)N::load(plane[s.pos[q]]));
                  acc = first ? v : std::max(acc, v);
                  first = false;
                } else {
                  for (int q = 0; q < 4; q++) acc += s.w[q] * (float)N::load(plane[s.pos[q]]);
                }
              }
              o[bin] = N::fromDouble(maxMode ? acc : acc / count);
            }
          }
        }
      });
    });
  });
}

}  // namespace

KILN_REGISTER_KERNEL(NonMaxSuppression, (KernelDef{"cpu", "", "NonMaxSuppression", 10, createNonMaxSuppressionKernel}));
KILN_REGISTER_KERNEL(RoiAlign, (KernelDef{"cpu", "", "RoiAlign", 10, createRoiAlignKernel}));

}  // namespace kiln::cpu
