// CPU kernels of the gathering ops: Gather, GatherElements, GatherND, OneHot, Compress, NonZero.
// Every index is checked against the data before any element moves, so a hostile index is an
// InvalidArgument error naming the node, never an out-of-bounds read.
#include <algorithm>

#include "backends/cpu/ops/tensor_copy.h"
#include "backends/cpu/ops/tensor_numeric.h"
#include "ops/tensor_util.h"

namespace kiln::cpu {

namespace {

// Index i of `indices` normalised to [0, dim) (negatives count from the end); throws otherwise.
int64_t checkedIndex(const Node& node, int64_t value, int64_t dim, int64_t position, const char* what = "indices") {
  if (value < -dim || value >= dim) {
    nodeFail(node, ErrorCode::InvalidArgument,
             std::string(what) + "[" + std::to_string(position) + "] = " + std::to_string(value) +
                 " is out of range [" + std::to_string(-dim) + ", " + std::to_string(dim) + ")");
  }
  return value < 0 ? value + dim : value;
}

std::vector<int64_t> checkedIndices(const Node& node, const Tensor& indices, int64_t dim) {
  if (indices.dtype != DType::Int32 && indices.dtype != DType::Int64) {
    nodeFail(node, ErrorCode::InvalidArgument, "indices must be int32 or int64");
  }
  std::vector<int64_t> out((size_t)indices.numel());
  for (int64_t i = 0; i < indices.numel(); i++) {
    out[(size_t)i] = checkedIndex(node, indexAt(indices.data, indices.dtype, i), dim, i);
  }
  return out;
}

std::unique_ptr<Kernel> createGatherKernel(const KernelCreateInfo& info) {
  const int64_t axisAttr = info.node.getInt("axis", 0);
  return makeKernel("gather", [axisAttr](KernelContext& ctx) {
    const Tensor& data = needInput(ctx, 0, "data");
    const Tensor& indices = needInput(ctx, 1, "indices");
    Tensor& out = needOutput(ctx, 0);
    const int64_t rank = (int64_t)data.shape.size();
    if (rank == 0) nodeFail(ctx.node, ErrorCode::ShapeMismatch, "data must have rank >= 1");
    const int64_t axis = kernelAxis(ctx.node, axisAttr, rank);
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; d++) outer *= data.shape[(size_t)d];
    for (int64_t d = axis + 1; d < rank; d++) inner *= data.shape[(size_t)d];
    const int64_t dim = data.shape[(size_t)axis];
    const std::vector<int64_t> idx = checkedIndices(ctx.node, indices, dim);
    const int64_t n = (int64_t)idx.size();
    KILN_CHECK(out.numel() == outer * n * inner, Internal, describeNode(ctx.node) + ": output allocated as " + shapeToString(out.shape));
    visitStorage(data.dtype, [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* src = data.ptr<T>();
      T* dst = out.ptr<T>();
      threadsOf(ctx).parallelFor(outer * n, std::max<int64_t>(1, 16384 / std::max<int64_t>(inner, 1)),
                              [&](int64_t begin, int64_t end) {
        for (int64_t t = begin; t < end; t++) {
          const int64_t o = t / n, j = t % n;
          const T* from = src + (o * dim + idx[(size_t)j]) * inner;
          std::copy(from, from + inner, dst + t * inner);
        }
      });
    });
  });
}

std::unique_ptr<Kernel> createGatherElementsKernel(const KernelCreateInfo& info) {
  const int64_t axisAttr = info.node.getInt("axis", 0);
  return makeKernel("gather_elements", [axisAttr](KernelContext& ctx) {
    const Tensor& data = needInput(ctx, 0, "data");
    const Tensor& indices = needInput(ctx, 1, "indices");
    Tensor& out = needOutput(ctx, 0);
    const size_t rank = data.shape.size();
    if (rank == 0 || indices.shape.size() != rank) {
      nodeFail(ctx.node, ErrorCode::ShapeMismatch,
               "data " + shapeToString(data.shape) + " and indices " + shapeToString(indices.shape) + " must have the same rank >= 1");
    }
    const int64_t axis = kernelAxis(ctx.node, axisAttr, (int64_t)rank);
    for (size_t d = 0; d < rank; d++) {
      if ((int64_t)d != axis && indices.shape[d] > data.shape[d]) {
        nodeFail(ctx.node, ErrorCode::ShapeMismatch,
                 "indices " + shapeToString(indices.shape) + " exceed data " + shapeToString(data.shape) + " outside the axis");
      }
    }
    const std::vector<int64_t> idx = checkedIndices(ctx.node, indices, data.shape[(size_t)axis]);
    const std::vector<int64_t> dataStrides = shapeStrides(data.shape);
    visitStorage(data.dtype, [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* src = data.ptr<T>();
      T* dst = out.ptr<T>();
      const int64_t n = (int64_t)idx.size();
      threadsOf(ctx).parallelFor(n, 8192, [&](int64_t begin, int64_t end) {
        for (int64_t e = begin; e < end; e++) {
          int64_t rest = e, off = 0;
          for (size_t d = rank; d-- > 0;) {
            const int64_t i = rest % indices.shape[d];
            rest /= indices.shape[d];
            off += ((int64_t)d == axis ? idx[(size_t)e] : i) * dataStrides[d];
          }
          dst[e] = src[off];
        }
      });
    });
  });
}

std::unique_ptr<Kernel> createGatherNDKernel(const KernelCreateInfo& info) {
  const int64_t b = info.opset >= 12 ? info.node.getInt("batch_dims", 0) : 0;
  return makeKernel("gather_nd", [b](KernelContext& ctx) {
    const Tensor& data = needInput(ctx, 0, "data");
    const Tensor& indices = needInput(ctx, 1, "indices");
    Tensor& out = needOutput(ctx, 0);
    const int64_t r = (int64_t)data.shape.size(), q = (int64_t)indices.shape.size();
    if (indices.dtype != DType::Int64) nodeFail(ctx.node, ErrorCode::InvalidArgument, "indices must be int64");
    if (q < 1 || b < 0 || b >= std::min(r, q)) nodeFail(ctx.node, ErrorCode::ShapeMismatch, "invalid batch_dims or ranks");
    const int64_t k = indices.shape.back();
    if (k < 1 || k > r - b) {
      nodeFail(ctx.node, ErrorCode::ShapeMismatch,
               "indices " + shapeToString(indices.shape) + " index more dims than data " + shapeToString(data.shape) + " has");
    }
    int64_t batch = 1, perBatch = 1, slice = 1;
    for (int64_t d = 0; d < b; d++) {
      if (data.shape[(size_t)d] != indices.shape[(size_t)d]) {
        nodeFail(ctx.node, ErrorCode::ShapeMismatch,
                 "batch dims of data " + shapeToString(data.shape) + " and indices " + shapeToString(indices.shape) + " differ");
      }
      batch *= data.shape[(size_t)d];
    }
    for (int64_t d = b; d < q - 1; d++) perBatch *= indices.shape[(size_t)d];
    for (int64_t d = b + k; d < r; d++) slice *= data.shape[(size_t)d];
    // Offsets (in elements, within one batch of data) of every index tuple, validated first.
    const std::vector<int64_t> strides = shapeStrides(data.shape);
    const int64_t batchStride = b > 0 ? strides[(size_t)b - 1] : 0;
    const int64_t* ip = indices.ptr<int64_t>();
    std::vector<int64_t> offsets((size_t)(batch * perBatch));
    for (int64_t t = 0; t < batch * perBatch; t++) {
      int64_t off = 0;
      for (int64_t j = 0; j < k; j++) {
        const int64_t dim = data.shape[(size_t)(b + j)];
        off += checkedIndex(ctx.node, ip[t * k + j], dim, t * k + j) * strides[(size_t)(b + j)];
      }
      offsets[(size_t)t] = (t / perBatch) * batchStride + off;
    }
    KILN_CHECK(out.numel() == batch * perBatch * slice, Internal, describeNode(ctx.node) + ": output allocated as " + shapeToString(out.shape));
    visitStorage(data.dtype, [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* src = data.ptr<T>();
      T* dst = out.ptr<T>();
      threadsOf(ctx).parallelFor((int64_t)offsets.size(), std::max<int64_t>(1, 16384 / std::max<int64_t>(slice, 1)),
                              [&](int64_t begin, int64_t end) {
        for (int64_t t = begin; t < end; t++) std::copy(src + offsets[(size_t)t], src + offsets[(size_t)t] + slice, dst + t * slice);
      });
    });
  });
}

std::unique_ptr<Kernel> createOneHotKernel(const KernelCreateInfo& info) {
  const int64_t axisAttr = info.node.getInt("axis", -1);
  return makeKernel("one_hot", [axisAttr](KernelContext& ctx) {
    const Tensor& indices = needInput(ctx, 0, "indices");
    const Tensor& depthT = needInput(ctx, 1, "depth");
    const Tensor& values = needInput(ctx, 2, "values");
    Tensor& out = needOutput(ctx, 0);
    if (values.numel() != 2) nodeFail(ctx.node, ErrorCode::InvalidArgument, "values must hold [off, on]");
    if (depthT.numel() != 1) nodeFail(ctx.node, ErrorCode::InvalidArgument, "depth must be a scalar");
    const double depthValue = depthT.scalarAsDouble(0);
    if (!(depthValue >= 1) || depthValue > 1e15) {
      nodeFail(ctx.node, ErrorCode::InvalidArgument, "depth " + std::to_string(depthValue) + " must be positive");
    }
    const int64_t depth = (int64_t)depthValue;
    const int64_t axis = kernelAxis(ctx.node, axisAttr, (int64_t)indices.shape.size() + 1);
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; d++) outer *= indices.shape[(size_t)d];
    for (size_t d = (size_t)axis; d < indices.shape.size(); d++) inner *= indices.shape[d];
    KILN_CHECK(out.numel() == outer * depth * inner, Internal, describeNode(ctx.node) + ": output allocated as " + shapeToString(out.shape));
    fillElements(out.dtype, out.data, 0, out.numel(), values.data, 0);
    for (int64_t o = 0; o < outer; o++) {
      for (int64_t i = 0; i < inner; i++) {
        // Indices may be of any numeric type; fractional values truncate. Negative ones count from
        // the end (opset 11); anything outside [-depth, depth) produces an all-off row.
        double v = indices.scalarAsDouble(o * inner + i);
        if (!(v >= -(double)depth && v < (double)depth)) continue;
        int64_t k = (int64_t)v;
        if (k < 0) k += depth;
        copyElements(out.dtype, out.data, (o * depth + k) * inner + i, values.data, 1, 1);
      }
    }
  });
}

// True for elements that are not zero (numerically: -0.0 is zero, NaN is not).
std::vector<uint8_t> nonZeroMask(const Node& node, const Tensor& t) {
  std::vector<uint8_t> mask((size_t)t.numel());
  if (t.dtype == DType::Bool) {
    for (int64_t i = 0; i < t.numel(); i++) mask[(size_t)i] = t.ptr<uint8_t>()[i] != 0;
    return mask;
  }
  visitNumeric(t.dtype, describeNode(node), [&](auto num) {
    using N = decltype(num);
    const auto* p = static_cast<const typename N::Storage*>(t.data);
    for (int64_t i = 0; i < t.numel(); i++) mask[(size_t)i] = N::load(p[i]) != 0;
  });
  return mask;
}

std::unique_ptr<Kernel> createNonZeroKernel(const KernelCreateInfo& info) {
  return makeKernel("non_zero", [](KernelContext& ctx) {
    const Tensor& x = needInput(ctx, 0, "X");
    std::vector<uint8_t> mask = nonZeroMask(ctx.node, x);
    int64_t count = 0;
    for (uint8_t m : mask) count += m;
    const int64_t rank = (int64_t)x.shape.size();
    Tensor& out = ctx.allocateOutput(0, DType::Int64, {rank, count});
    int64_t* o = out.ptr<int64_t>();
    int64_t at = 0;
    for (int64_t i = 0; i < (int64_t)mask.size(); i++) {
      if (!mask[(size_t)i]) continue;
      int64_t rest = i;
      for (int64_t d = rank; d-- > 0;) {
        o[d * count + at] = rest % x.shape[(size_t)d];
        rest /= x.shape[(size_t)d];
      }
      at++;
    }
  });
}

std::unique_ptr<Kernel> createCompressKernel(const KernelCreateInfo& info) {
  const bool hasAxis = info.node.has("axis");
  const int64_t axisAttr = info.node.getInt("axis", 0);
  return makeKernel("compress", [hasAxis, axisAttr](KernelContext& ctx) {
    const Tensor& in = needInput(ctx, 0, "input");
    const Tensor& cond = needInput(ctx, 1, "condition");
    if (cond.dtype != DType::Bool || cond.shape.size() != 1) {
      nodeFail(ctx.node, ErrorCode::InvalidArgument, "condition must be a 1-D bool tensor");
    }
    // Without an axis the input is flattened.
    const Shape shape = hasAxis ? in.shape : Shape{in.numel()};
    const int64_t axis = hasAxis ? kernelAxis(ctx.node, axisAttr, (int64_t)shape.size()) : 0;
    const int64_t dim = shape[(size_t)axis];
    std::vector<int64_t> keep;
    for (int64_t i = 0; i < cond.numel(); i++) {
      if (!cond.ptr<uint8_t>()[i]) continue;
      if (i >= dim) {
        nodeFail(ctx.node, ErrorCode::InvalidArgument,
                 "condition selects index " + std::to_string(i) + " but the axis has size " + std::to_string(dim));
      }
      keep.push_back(i);
    }
    Shape outShape = shape;
    outShape[(size_t)axis] = (int64_t)keep.size();
    Tensor& out = ctx.allocateOutput(0, in.dtype, outShape);
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; d++) outer *= shape[(size_t)d];
    for (size_t d = (size_t)axis + 1; d < shape.size(); d++) inner *= shape[d];
    int64_t at = 0;
    for (int64_t o = 0; o < outer; o++) {
      for (int64_t k : keep) {
        copyElements(in.dtype, out.data, at, in.data, (o * dim + k) * inner, inner);
        at += inner;
      }
    }
  });
}

}  // namespace

KILN_REGISTER_KERNEL(Gather, (KernelDef{"cpu", "", "Gather", 1, createGatherKernel}));
KILN_REGISTER_KERNEL(GatherElements, (KernelDef{"cpu", "", "GatherElements", 11, createGatherElementsKernel}));
KILN_REGISTER_KERNEL(GatherND, (KernelDef{"cpu", "", "GatherND", 11, createGatherNDKernel}));
KILN_REGISTER_KERNEL(OneHot, (KernelDef{"cpu", "", "OneHot", 9, createOneHotKernel}));
KILN_REGISTER_KERNEL(NonZero, (KernelDef{"cpu", "", "NonZero", 9, createNonZeroKernel}));
KILN_REGISTER_KERNEL(Compress, (KernelDef{"cpu", "", "Compress", 9, createCompressKernel}));

}  // namespace kiln::cpu
