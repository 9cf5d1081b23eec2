// CPU kernel of Resize and Upsample. Nearest is a gather through per-axis index tables (any element
// type). Linear and cubic, with or without antialias, are separable: each resized axis is applied
// in turn as a small weighted sum over its taps, innermost axis first as the reference does, on a
// float (double for float64) buffer; axes whose taps are the identity are skipped.
#include <algorithm>

#include "backends/cpu/ops/tensor_copy.h"
#include "backends/cpu/ops/tensor_numeric.h"
#include "ops/resize.h"
#include "ops/tensor_util.h"

namespace kiln::cpu {

namespace {

std::optional<std::vector<double>> nonEmptyDoubles(const KernelContext& ctx, int i) {
  if (i < 0 || (size_t)i >= ctx.inputs.size() || !ctx.inputs[(size_t)i] || ctx.inputs[(size_t)i]->numel() == 0) {
    return std::nullopt;
  }
  return tensorToDoubles(*ctx.inputs[(size_t)i]);
}

// out[o] = in[sum_d index_d[o_d] * stride_d], or `fill` where some axis is outside the ROI.
template <class T>
void nearestGather(const Tensor& in, Tensor& out, const std::vector<ResizeTaps>& taps, const T& fill, ThreadPool& pool) {
  const size_t rank = out.shape.size();
  const T* src = in.ptr<T>();
  T* dst = out.ptr<T>();
  if (rank == 0) {
    dst[0] = src[0];
    return;
  }
  const std::vector<int64_t> strides = shapeStrides(in.shape);
  const int64_t len = out.shape.back(), rows = out.numel() / len;
  const ResizeTaps& lastTaps = taps.back();
  const int64_t lastStride = strides.back();
  pool.parallelFor(rows, std::max<int64_t>(1, 16384 / len), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; r++) {
      int64_t base = 0, rest = r;
      bool outside = false;
      for (size_t d = rank - 1; d-- > 0;) {
        const int64_t i = rest % out.shape[d];
        rest /= out.shape[d];
        outside = outside || taps[d].outside[(size_t)i];
        base += taps[d].index[(size_t)i] * strides[d];
      }
      T* o = dst + r * len;
      for (int64_t j = 0; j < len; j++) {
        o[j] = (outside || lastTaps.outside[(size_t)j]) ? fill : src[base + lastTaps.index[(size_t)j] * lastStride];
      }
    }
  });
}

// Applies one axis's taps to a buffer of shape `shape` (contiguous), returning the resized buffer.
template <class C>
std::vector<C> applyAxis(const std::vector<C>& src, Shape& shape, size_t axis, const ResizeTaps& t, int64_t outDim,
                         C extrapolation, ThreadPool& pool) {
  int64_t outer = 1, inner = 1;
  for (size_t d = 0; d < axis; d++) outer *= shape[d];
  for (size_t d = axis + 1; d < shape.size(); d++) inner *= shape[d];
  const int64_t inDim = shape[axis];
  std::vector<C> dst((size_t)(outer * outDim * inner));
  pool.parallelFor(outer * outDim, std::max<int64_t>(1, 4096 / (inner * t.taps)), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; r++) {
      const int64_t o = r / outDim, j = r % outDim;
      C* out = dst.data() + r * inner;
      if (t.outside[(size_t)j]) {
        std::fill(out, out + inner, extrapolation);
        continue;
      }
      std::fill(out, out + inner, C(0));
      for (int64_t k = 0; k < t.taps; k++) {
        const C w = (C)t.weight[(size_t)(j * t.taps + k)];
        if (w == 0) continue;
        const C* in = src.data() + (o * inDim + t.index[(size_t)(j * t.taps + k)]) * inner;
        for (int64_t i = 0; i < inner; i++) out[i] += w * in[i];
      }
    }
  });
  shape[axis] = outDim;
  return dst;
}

std::unique_ptr<Kernel> createResizeKernel(const KernelCreateInfo& info) {
  const ResizeAttrs attrs = parseResizeAttrs(info.node, info.opset, [&](const std::string& m) {
    nodeFail(info.node, ErrorCode::UnsupportedOp, m);
  });
  const char* name = attrs.mode == ResizeMode::Nearest ? "resize.nearest"
                     : attrs.mode == ResizeMode::Linear ? "resize.linear"
                                                        : "resize.cubic";
  return makeKernel(name, [attrs](KernelContext& ctx) {
    const Tensor& x = needInput(ctx, 0, "X");
    Tensor& out = needOutput(ctx, 0);
    auto onError = [&](const std::string& m) { nodeFail(ctx.node, ErrorCode::InvalidArgument, m); };
    std::optional<std::vector<double>> scales = nonEmptyDoubles(ctx, attrs.scalesInput), roi;
    if (!attrs.scalesAttr.empty()) scales = std::vector<double>(attrs.scalesAttr.begin(), attrs.scalesAttr.end());
    std::optional<std::vector<int64_t>> sizes;
    if (attrs.sizesInput >= 0 && (size_t)attrs.sizesInput < ctx.inputs.size() && ctx.inputs[(size_t)attrs.sizesInput] &&
        ctx.inputs[(size_t)attrs.sizesInput]->numel() > 0) {
      sizes = ctx.inputs[(size_t)attrs.sizesInput]->toInt64Vector();
    }
    if (attrs.coord == ResizeCoord::TfCropAndResize) roi = nonEmptyDoubles(ctx, attrs.roiInput);
    const ResizePlan plan = planResize(attrs, x.shape, scales, sizes, roi, onError);
    if (plan.outShape != out.shape) {
      nodeFail(ctx.node, ErrorCode::Internal,
               "output allocated as " + shapeToString(out.shape) + " but resizes to " + shapeToString(plan.outShape));
    }
    if (out.numel() == 0) return;
    if (x.numel() == 0) nodeFail(ctx.node, ErrorCode::InvalidArgument, "cannot resize an empty input to a non-empty output");
    const size_t rank = x.shape.size();
    std::vector<ResizeTaps> taps;
    for (size_t d = 0; d < rank; d++) {
      taps.push_back(resizeAxisTaps(attrs, x.shape[d], out.shape[d], plan.scales[d], plan.roiStart[d], plan.roiEnd[d]));
    }
    ThreadPool& pool = threadsOf(ctx);
    if (attrs.mode == ResizeMode::Nearest) {
      Tensor fill = Tensor::allocate(x.dtype, {});
      if (x.dtype != DType::String) storeDouble(fill, 0, attrs.extrapolation);
      visitStorage(x.dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        nearestGather<T>(x, out, taps, fill.ptr<T>()[0], pool);
      });
      return;
    }
    visitNumeric(x.dtype, describeNode(ctx.node), [&](auto num) {
      using N = decltype(num);
      using S = typename N::Storage;
      using C = std::conditional_t<std::is_same<S, double>::value, double, float>;
      const S* src = x.ptr<S>();
      std::vector<C> buf((size_t)x.numel());
      for (size_t i = 0; i < buf.size(); i++) buf[i] = (C)N::load(src[i]);
      Shape shape = x.shape;
      for (size_t d = rank; d-- > 0;) {
        if (taps[d].identity) continue;
        buf = applyAxis<C>(buf, shape, d, taps[d], out.shape[d], (C)attrs.extrapolation, pool);
      }
      S* dst = out.ptr<S>();
      for (size_t i = 0; i < buf.size(); i++) dst[i] = N::fromDouble((double)buf[i]);
    });
  });
}

}  // namespace

KILN_REGISTER_KERNEL(Upsample, (KernelDef{"cpu", "", "Upsample", 7, createResizeKernel}));
KILN_REGISTER_KERNEL(Resize, (KernelDef{"cpu", "", "Resize", 10, createResizeKernel}));

}  // namespace kiln::cpu
