// CPU kernels of Pad (constant, reflect, edge, wrap; negative pads crop), CenterCropPad (a pad with
// zeros whose pads are computed from the target shape) and Tile (a strided view with stride-0
// repeat dims).
#include <algorithm>

#include "backends/cpu/ops/tensor_copy.h"
#include "ops/tensor_pad.h"
#include "ops/tensor_util.h"

namespace kiln::cpu {

namespace {

// For each output index along one axis, the input index it reads, or -1 for the constant value.
// Negative pads first crop the input to [lo, hi); the mode then extends that cropped range.
std::vector<int64_t> axisSourceMap(const Node& node, int64_t dim, int64_t padBegin, int64_t padEnd, PadMode mode,
                                   int64_t outDim) {
  const int64_t lo = std::max<int64_t>(0, -padBegin), hi = dim - std::max<int64_t>(0, -padEnd);
  const int64_t n = hi - lo, front = std::max<int64_t>(0, padBegin);
  std::vector<int64_t> map((size_t)outDim);
  for (int64_t o = 0; o < outDim; o++) {
    const int64_t r = o - front;
    int64_t src = -1;
    if (r >= 0 && r < n) {
      src = lo + r;
    } else if (mode != PadMode::Constant) {
      if (n <= 0) nodeFail(node, ErrorCode::InvalidArgument, "cannot pad an empty axis in a non-constant mode");
      switch (mode) {
        case PadMode::Edge:
          src = lo + std::clamp<int64_t>(r, 0, n - 1);
          break;
        case PadMode::Reflect: {
          // Reflection without repeating the edge element has period 2(n-1).
          if (n == 1) {
            src = lo;
            break;
          }
          const int64_t period = 2 * (n - 1);
          int64_t m = ((r % period) + period) % period;
          src = lo + (m >= n ? period - m : m);
          break;
        }
        case PadMode::Wrap:
          src = lo + ((r % n) + n) % n;
          break;
        case PadMode::Constant:
          break;
      }
    }
    map[(size_t)o] = src;
  }
  return map;
}

template <class T>
void padRows(const Tensor& in, Tensor& out, const std::vector<std::vector<int64_t>>& maps, const T& value,
             ThreadPool& pool) {
  const size_t rank = out.shape.size();
  const T* src = in.ptr<T>();
  T* dst = out.ptr<T>();
  if (rank == 0) {
    dst[0] = src[0];
    return;
  }
  const std::vector<int64_t> inStrides = shapeStrides(in.shape);
  const int64_t len = out.shape.back();
  const int64_t rows = len == 0 ? 0 : out.numel() / len;
  const std::vector<int64_t>& lastMap = maps.back();
  pool.parallelFor(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(len, 1)), [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; row++) {
      T* o = dst + row * len;
      // The source row, unless some outer index falls in a constant pad.
      int64_t base = 0, rest = row;
      bool constantRow = false;
      for (size_t k = rank - 1; k-- > 0;) {
        const int64_t idx = rest % out.shape[k];
        rest /= out.shape[k];
        const int64_t s = maps[k][(size_t)idx];
        if (s < 0) constantRow = true;
        else base += s * inStrides[k];
      }
      if (constantRow) {
        std::fill(o, o + len, value);
        continue;
      }
      const T* i = src + base;
      for (int64_t j = 0; j < len; j++) {
        const int64_t s = lastMap[(size_t)j];
        o[j] = s < 0 ? value : i[s];
      }
    }
  });
}

// Pads (or crops) `in` into `out` whose shape is the padded shape; `value` holds one element of
// the data type (the constant) or is null for zero.
void padInto(const Node& node, const Tensor& in, Tensor& out, const Pads& pads, PadMode mode, const Tensor* value,
             ThreadPool& pool) {
  const size_t rank = in.shape.size();
  std::vector<std::vector<int64_t>> maps;
  for (size_t d = 0; d < rank; d++) {
    int64_t outDim = 0;
    if (__builtin_add_overflow(in.shape[d], pads.begin[d], &outDim) || __builtin_add_overflow(outDim, pads.end[d], &outDim) ||
        outDim < 0 || outDim != out.shape[d]) {
      nodeFail(node, ErrorCode::ShapeMismatch,
               "pads do not turn input " + shapeToString(in.shape) + " into output " + shapeToString(out.shape));
    }
    maps.push_back(axisSourceMap(node, in.shape[d], pads.begin[d], pads.end[d], mode, outDim));
  }
  if (out.numel() == 0) return;
  visitStorage(in.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    T v{};
    if (value && value->numel() > 0) v = value->ptr<T>()[0];
    padRows<T>(in, out, maps, v, pool);
  });
}

std::unique_ptr<Kernel> createPadKernel(const KernelCreateInfo& info) {
  const int64_t opset = info.opset;
  const PadMode mode = parsePadMode(info.node.getString("mode", "constant"), opset, [&](const std::string& m) {
    nodeFail(info.node, ErrorCode::UnsupportedOp, m);
  });
  return makeKernel("pad", [opset, mode](KernelContext& ctx) {
    const Tensor& in = needInput(ctx, 0, "data");
    Tensor& out = needOutput(ctx, 0);
    auto onError = [&](const std::string& m) { nodeFail(ctx.node, ErrorCode::InvalidArgument, m); };
    std::vector<int64_t> pads, axes;
    Tensor value;  // one element of the data type; empty means zero
    if (opset < 11) {
      pads = ctx.node.getInts(opset < 2 ? "paddings" : "pads");
      if (in.dtype != DType::String) {
        value = Tensor::allocate(in.dtype, {});
        storeDouble(value, 0, ctx.node.getFloat("value", 0.0f));
      }
    } else {
      pads = needInput(ctx, 1, "pads").toInt64Vector();
      if (ctx.inputs.size() > 2 && ctx.inputs[2] && ctx.inputs[2]->numel() > 0) {
        if (ctx.inputs[2]->dtype != in.dtype) onError("constant_value must have the data's type");
        value = *ctx.inputs[2];
      }
      if (opset >= 18 && ctx.inputs.size() > 3 && ctx.inputs[3]) axes = ctx.inputs[3]->toInt64Vector();
    }
    Pads p = resolvePads((int64_t)in.shape.size(), pads, axes, onError);
    padInto(ctx.node, in, out, p, mode, value.data ? &value : nullptr, threadsOf(ctx));
  });
}

std::unique_ptr<Kernel> createCenterCropPadKernel(const KernelCreateInfo& info) {
  const std::vector<int64_t> axes = info.node.getInts("axes");
  return makeKernel("center_crop_pad", [axes](KernelContext& ctx) {
    const Tensor& in = needInput(ctx, 0, "input_data");
    std::vector<int64_t> target = needInput(ctx, 1, "shape").toInt64Vector();
    Pads p = centerCropPads(in.shape, target, axes,
                            [&](const std::string& m) { nodeFail(ctx.node, ErrorCode::InvalidArgument, m); });
    padInto(ctx.node, in, needOutput(ctx, 0), p, PadMode::Constant, nullptr, threadsOf(ctx));
  });
}

std::unique_ptr<Kernel> createTileKernel(const KernelCreateInfo& info) {
  return makeKernel("tile.strided", [](KernelContext& ctx) {
    const Tensor& in = needInput(ctx, 0, "input");
    Tensor& out = needOutput(ctx, 0);
    std::vector<int64_t> repeats = needInput(ctx, 1, "repeats").toInt64Vector();
    const size_t rank = in.shape.size();
    if (repeats.size() != rank) {
      nodeFail(ctx.node, ErrorCode::InvalidArgument,
               "repeats " + shapeToString(repeats) + " must have one entry per dim of " + shapeToString(in.shape));
    }
    // Output dim k is (repeat r_k, then input dim d_k) in row-major order, so the output is the
    // view [r_0, d_0, r_1, d_1, ...] with stride 0 on every repeat dim.
    const std::vector<int64_t> inStrides = shapeStrides(in.shape);
    Shape shape;
    std::vector<int64_t> strides;
    for (size_t k = 0; k < rank; k++) {
      if (repeats[k] < 0) nodeFail(ctx.node, ErrorCode::InvalidArgument, "repeats " + shapeToString(repeats) + " has a negative entry");
      if (in.shape[k] * repeats[k] != out.shape[k]) {
        nodeFail(ctx.node, ErrorCode::Internal, "output allocated as " + shapeToString(out.shape));
      }
      shape.insert(shape.end(), {repeats[k], in.shape[k]});
      strides.insert(strides.end(), {0, inStrides[k]});
    }
    copyStrided(in.dtype, out.data, in.data, shape, strides, 0, threadsOf(ctx));
  });
}

}  // namespace

KILN_REGISTER_KERNEL(Pad, (KernelDef{"cpu", "", "Pad", 1, createPadKernel}));
KILN_REGISTER_KERNEL(CenterCropPad, (KernelDef{"cpu", "", "CenterCropPad", 18, createCenterCropPadKernel}));
KILN_REGISTER_KERNEL(Tile, (KernelDef{"cpu", "", "Tile", 6, createTileKernel}));

}  // namespace kiln::cpu
