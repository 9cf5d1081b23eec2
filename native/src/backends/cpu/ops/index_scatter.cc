// CPU kernels of the scattering ops: ScatterElements (and its deprecated name Scatter) and
// ScatterND, with reductions none/add/mul (opset 16) and max/min (opset 18). The output starts as a
// copy of data; updates are applied in index order, so with reduction "none" the last of several
// updates to one element wins, as in the reference implementation.
#include <algorithm>

#include "backends/cpu/ops/tensor_copy.h"
#include "backends/cpu/ops/tensor_numeric.h"
#include "ops/tensor_util.h"

namespace kiln::cpu {

namespace {

enum class Reduction { None, Add, Mul, Max, Min };

Reduction parseReduction(const Node& node) {
  const std::string r = node.getString("reduction", "none");
  if (r == "none") return Reduction::None;
  if (r == "add") return Reduction::Add;
  if (r == "mul") return Reduction::Mul;
  if (r == "max") return Reduction::Max;
  if (r == "min") return Reduction::Min;
  nodeFail(node, ErrorCode::UnsupportedOp, "unsupported reduction '" + r + "'");
}

// Integer add/mul wrap around like the hardware does instead of overflowing into undefined behaviour.
template <class C>
C wrapAdd(C a, C b) {
  if constexpr (std::is_integral<C>::value) {
    using U = std::make_unsigned_t<C>;
    return (C)(U)((U)a + (U)b);
  } else {
    return a + b;
  }
}
template <class C>
C wrapMul(C a, C b) {
  if constexpr (std::is_integral<C>::value) {
    using U = std::make_unsigned_t<decltype(a * b)>;
    return (C)(U)((U)a * (U)b);
  } else {
    return a * b;
  }
}

// Calls apply(target, updateIndex) for every update; `forEach` enumerates (target, update) pairs.
template <class ForEach>
void applyUpdates(const Node& node, Tensor& out, const Tensor& updates, Reduction reduction, ForEach&& forEach) {
  if (reduction == Reduction::None) {
    visitStorage(out.dtype, [&](auto tag) {
      using T = typename decltype(tag)::type;
      T* dst = out.ptr<T>();
      const T* src = updates.ptr<T>();
      forEach([&](int64_t target, int64_t u) { dst[target] = src[u]; });
    });
    return;
  }
  visitNumeric(out.dtype, describeNode(node) + " (reduction)", [&](auto num) {
    using N = decltype(num);
    using S = typename N::Storage;
    S* dst = static_cast<S*>(out.data);
    const S* src = static_cast<const S*>(updates.data);
    forEach([&](int64_t target, int64_t u) {
      auto a = N::load(dst[target]), b = N::load(src[u]);
      switch (reduction) {
        case Reduction::Add: a = wrapAdd(a, b); break;
        case Reduction::Mul: a = wrapMul(a, b); break;
        case Reduction::Max: a = std::max(a, b); break;
        case Reduction::Min: a = std::min(a, b); break;
        case Reduction::None: a = b; break;
      }
      dst[target] = N::store(a);
    });
  });
}

int64_t checkedIndex(const Node& node, int64_t value, int64_t dim, int64_t position) {
  if (value < -dim || value >= dim) {
    nodeFail(node, ErrorCode::InvalidArgument,
             "indices[" + std::to_string(position) + "] = " + std::to_string(value) + " is out of range [" +
                 std::to_string(-dim) + ", " + std::to_string(dim) + ")");
  }
  return value < 0 ? value + dim : value;
}

std::unique_ptr<Kernel> createScatterElementsKernel(const KernelCreateInfo& info) {
  const int64_t axisAttr = info.node.getInt("axis", 0);
  const Reduction reduction = info.opset >= 16 ? parseReduction(info.node) : Reduction::None;
  return makeKernel("scatter_elements", [axisAttr, reduction](KernelContext& ctx) {
    const Tensor& data = needInput(ctx, 0, "data");
    const Tensor& indices = needInput(ctx, 1, "indices");
    const Tensor& updates = needInput(ctx, 2, "updates");
    Tensor& out = needOutput(ctx, 0);
    const size_t rank = data.shape.size();
    if (rank == 0 || indices.shape.size() != rank || indices.shape != updates.shape) {
      nodeFail(ctx.node, ErrorCode::ShapeMismatch,
               "data " + shapeToString(data.shape) + ", indices " + shapeToString(indices.shape) + " and updates " +
                   shapeToString(updates.shape) + ": indices and updates must match and have data's rank");
    }
    if (updates.dtype != data.dtype) nodeFail(ctx.node, ErrorCode::InvalidArgument, "updates must have the data's type");
    if (indices.dtype != DType::Int32 && indices.dtype != DType::Int64) {
      nodeFail(ctx.node, ErrorCode::InvalidArgument, "indices must be int32 or int64");
    }
    const int64_t axis = kernelAxis(ctx.node, axisAttr, (int64_t)rank);
    for (size_t d = 0; d < rank; d++) {
      if ((int64_t)d != axis && indices.shape[d] > data.shape[d]) {
        nodeFail(ctx.node, ErrorCode::ShapeMismatch,
                 "indices " + shapeToString(indices.shape) + " exceed data " + shapeToString(data.shape) + " outside the axis");
      }
    }
    // Targets are computed (and validated) before the output is touched.
    const std::vector<int64_t> strides = shapeStrides(data.shape);
    std::vector<int64_t> targets((size_t)indices.numel());
    for (int64_t e = 0; e < indices.numel(); e++) {
      int64_t rest = e, off = 0;
      for (size_t d = rank; d-- > 0;) {
        const int64_t i = rest % indices.shape[d];
        rest /= indices.shape[d];
        const int64_t v = (int64_t)d == axis ? checkedIndex(ctx.node, indexAt(indices.data, indices.dtype, e), data.shape[d], e) : i;
        off += v * strides[d];
      }
      targets[(size_t)e] = off;
    }
    copyTensor(data, out, threadsOf(ctx));
    applyUpdates(ctx.node, out, updates, reduction, [&](auto&& apply) {
      for (size_t e = 0; e < targets.size(); e++) apply(targets[e], (int64_t)e);
    });
  });
}

std::unique_ptr<Kernel> createScatterNDKernel(const KernelCreateInfo& info) {
  const Reduction reduction = info.opset >= 16 ? parseReduction(info.node) : Reduction::None;
  return makeKernel("scatter_nd", [reduction](KernelContext& ctx) {
    const Tensor& data = needInput(ctx, 0, "data");
    const Tensor& indices = needInput(ctx, 1, "indices");
    const Tensor& updates = needInput(ctx, 2, "updates");
    Tensor& out = needOutput(ctx, 0);
    if (indices.dtype != DType::Int64) nodeFail(ctx.node, ErrorCode::InvalidArgument, "indices must be int64");
    if (updates.dtype != data.dtype) nodeFail(ctx.node, ErrorCode::InvalidArgument, "updates must have the data's type");
    const int64_t r = (int64_t)data.shape.size(), q = (int64_t)indices.shape.size();
    const int64_t k = q > 0 ? indices.shape.back() : -1;
    Shape expected;
    if (q >= 1 && k <= r) {
      expected.assign(indices.shape.begin(), indices.shape.end() - 1);
      expected.insert(expected.end(), data.shape.begin() + k, data.shape.end());
    }
    if (q < 1 || k > r || updates.shape != expected) {
      nodeFail(ctx.node, ErrorCode::ShapeMismatch,
               "data " + shapeToString(data.shape) + ", indices " + shapeToString(indices.shape) + ", updates " +
                   shapeToString(updates.shape) + ": updates must have shape indices[:-1] + data[k:]");
    }
    int64_t n = 1, slice = 1;
    for (int64_t d = 0; d < q - 1; d++) n *= indices.shape[(size_t)d];
    for (int64_t d = k; d < r; d++) slice *= data.shape[(size_t)d];
    const std::vector<int64_t> strides = shapeStrides(data.shape);
    const int64_t* ip = indices.ptr<int64_t>();
    std::vector<int64_t> offsets((size_t)n);
    for (int64_t t = 0; t < n; t++) {
      int64_t off = 0;
      for (int64_t j = 0; j < k; j++) off += checkedIndex(ctx.node, ip[t * k + j], data.shape[(size_t)j], t * k + j) * strides[(size_t)j];
      offsets[(size_t)t] = off;
    }
    copyTensor(data, out, threadsOf(ctx));
    applyUpdates(ctx.node, out, updates, reduction, [&](auto&& apply) {
      for (int64_t t = 0; t < n; t++) {
        for (int64_t s = 0; s < slice; s++) apply(offsets[(size_t)t] + s, t * slice + s);
      }
    });
  });
}

}  // namespace

KILN_REGISTER_KERNEL(Scatter, (KernelDef{"cpu", "", "Scatter", 9, createScatterElementsKernel}));
KILN_REGISTER_KERNEL(ScatterElements, (KernelDef{"cpu", "", "ScatterElements", 11, createScatterElementsKernel}));
KILN_REGISTER_KERNEL(ScatterND, (KernelDef{"cpu", "", "ScatterND", 11, createScatterNDKernel}));

}  // namespace kiln::cpu
