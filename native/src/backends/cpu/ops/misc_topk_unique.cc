// CPU kernels of TopK (partial sort per slice, ties broken by the lower index as the reference
// does) and Unique (stable sort of elements or slices, then grouping).
#include <algorithm>
#include <cmath>
#include <numeric>

#include "backends/cpu/ops/tensor_copy.h"
#include "backends/cpu/ops/tensor_numeric.h"
#include "ops/tensor_util.h"

namespace kiln::cpu {

namespace {

// A strict weak order on numbers that puts NaN above every number (and equal to NaN), so sorting
// never sees the inconsistent comparisons raw NaN produces.
template <class C>
bool numLess(C a, C b) {
  if constexpr (std::is_floating_point<C>::value) {
    if (std::isnan(a)) return false;
    if (std::isnan(b)) return true;
  }
  return a < b;
}
template <class C>
bool numEqual(C a, C b) {
  return !numLess(a, b) && !numLess(b, a);
}

std::unique_ptr<Kernel> createTopKKernel(const KernelCreateInfo& info) {
  const int64_t opset = info.opset;
  const int64_t axisAttr = info.node.getInt("axis", -1);
  const bool largest = opset < 11 || info.node.getInt("largest", 1) != 0;
  const int64_t kAttr = info.node.getInt("k", -1);
  return makeKernel(largest ? "topk.largest" : "topk.smallest", [=](KernelContext& ctx) {
    const Tensor& x = needInput(ctx, 0, "X");
    Tensor& values = needOutput(ctx, 0);
    const int64_t rank = (int64_t)x.shape.size();
    if (rank == 0) nodeFail(ctx.node, ErrorCode::ShapeMismatch, "X must have rank >= 1");
    const int64_t axis = kernelAxis(ctx.node, axisAttr, rank);
    int64_t k = kAttr;
    if (opset >= 10) {
      auto kv = needInput(ctx, 1, "K").toInt64Vector();
      if (kv.size() != 1) nodeFail(ctx.node, ErrorCode::InvalidArgument, "K must have exactly one element");
      k = kv[0];
    }
    const int64_t dim = x.shape[(size_t)axis];
    if (k < 0 || k > dim) {
      nodeFail(ctx.node, ErrorCode::InvalidArgument,
               "k = " + std::to_string(k) + " is outside [0, " + std::to_string(dim) + "] for X " + shapeToString(x.shape));
    }
    Shape outShape = x.shape;
    outShape[(size_t)axis] = k;
    KILN_CHECK(values.shape == outShape, Internal, describeNode(ctx.node) + ": output allocated as " + shapeToString(values.shape));
    Tensor scratch;
    Tensor* indices = maybeOutput(ctx, 1);
    if (!indices) {
      scratch = Tensor::allocate(DType::Int64, outShape);
      indices = &scratch;
    }
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; d++) outer *= x.shape[(size_t)d];
    for (int64_t d = axis + 1; d < rank; d++) inner *= x.shape[(size_t)d];
    visitNumeric(x.dtype, describeNode(ctx.node), [&](auto num) {
      using N = decltype(num);
      using S = typename N::Storage;
      using C = typename N::Compute;
      const S* in = x.ptr<S>();
      S* outV = values.ptr<S>();
      int64_t* outI = indices->ptr<int64_t>();
      threadsOf(ctx).parallelFor(outer * inner, std::max<int64_t>(1, 4096 / std::max<int64_t>(dim, 1)),
                              [&](int64_t begin, int64_t end) {
        std::vector<std::pair<C, int64_t>> items((size_t)dim);
        for (int64_t s = begin; s < end; s++) {
          const int64_t o = s / inner, i = s % inner;
          const S* base = in + o * dim * inner + i;
          for (int64_t j = 0; j < dim; j++) items[(size_t)j] = {N::load(base[j * inner]), j};
          // Ties go to the lower index in both directions; results are always sorted (the
          // spec leaves sorted=0's order open, so sorted order is a valid answer).
          auto better = [&](const std::pair<C, int64_t>& a, const std::pair<C, int64_t>& b) {
            if (numLess(a.first, b.first)) return !largest;
            if (numLess(b.first, a.first)) return largest;
            return a.second < b.second;
          };
          std::partial_sort(items.begin(), items.begin() + k, items.end(), better);
          for (int64_t j = 0; j < k; j++) {
            const int64_t at = o * k * inner + j * inner + i;
            outV[at] = base[items[(size_t)j].second * inner];
            outI[at] = items[(size_t)j].second;
          }
        }
      });
    });
  });
}

// Orders the `count` slices of `slice` elements each, lexicographically by element value.
struct SliceOrder {
  std::function<bool(int64_t, int64_t)> less;
  std::function<bool(int64_t, int64_t)> equal;
};

SliceOrder makeSliceOrder(const Node& node, const Tensor& x, int64_t outer, int64_t count, int64_t inner) {
  // Slice j is the elements x[o, j, i] for all o, i (the axis moved to the front).
  auto at = [=](int64_t j, int64_t e) { return (e / inner) * count * inner + j * inner + (e % inner); };
  const int64_t len = outer * inner;
  if (x.dtype == DType::String || x.dtype == DType::Bool) {
    auto cmp = [=, &x](int64_t a, int64_t b) -> int {
      for (int64_t e = 0; e < len; e++) {
        int c;
        if (x.dtype == DType::String) {
          c = x.ptr<std::string>()[at(a, e)].compare(x.ptr<std::string>()[at(b, e)]);
        } else {
          c = (int)x.ptr<uint8_t>()[at(a, e)] - (int)x.ptr<uint8_t>()[at(b, e)];
        }
        if (c != 0) return c;
      }
      return 0;
    };
    return {[cmp](int64_t a, int64_t b) { return cmp(a, b) < 0; }, [cmp](int64_t a, int64_t b) { return cmp(a, b) == 0; }};
  }
  return visitNumeric(x.dtype, describeNode(node), [&](auto num) -> SliceOrder {
    using N = decltype(num);
    using S = typename N::Storage;
    const S* p = x.ptr<S>();
    auto cmp = [=](int64_t a, int64_t b) -> int {
      for (int64_t e = 0; e < len; e++) {
        auto va = N::load(p[at(a, e)]), vb = N::load(p[at(b, e)]);
        if (numLess(va, vb)) return -1;
        if (numLess(vb, va)) return 1;
      }
      return 0;
    };
    return {[cmp](int64_t a, int64_t b) { return cmp(a, b) < 0; }, [cmp](int64_t a, int64_t b) { return cmp(a, b) == 0; }};
  });
}

std::unique_ptr<Kernel> createUniqueKernel(const KernelCreateInfo& info) {
  const bool sorted = info.node.getInt("sorted", 1) != 0;
  const bool hasAxis = info.node.has("axis");
  const int64_t axisAttr = info.node.getInt("axis", 0);
  return makeKernel("unique", [=](KernelContext& ctx) {
    const Tensor& x = needInput(ctx, 0, "X");
    const Shape shape = hasAxis ? x.shape : Shape{x.numel()};
    if (shape.empty()) nodeFail(ctx.node, ErrorCode::ShapeMismatch, "X must have rank >= 1 when axis is given");
    const int64_t axis = hasAxis ? kernelAxis(ctx.node, axisAttr, (int64_t)shape.size()) : 0;
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; d++) outer *= shape[(size_t)d];
    for (size_t d = (size_t)axis + 1; d < shape.size(); d++) inner *= shape[d];
    const int64_t count = shape[(size_t)axis];
    SliceOrder order = makeSliceOrder(ctx.node, x, outer, count, inner);
    std::vector<int64_t> perm((size_t)count);
    std::iota(perm.begin(), perm.end(), 0);
    std::stable_sort(perm.begin(), perm.end(), order.less);
    // Groups of equal slices in sorted order; the first member of each has the lowest index.
    std::vector<int64_t> groupFirst, groupCount, groupOf((size_t)count);
    for (size_t i = 0; i < perm.size(); i++) {
      if (i == 0 || !order.equal(perm[i - 1], perm[i])) {
        groupFirst.push_back(perm[i]);
        groupCount.push_back(0);
      }
      groupCount.back()++;
      groupOf[(size_t)perm[i]] = (int64_t)groupFirst.size() - 1;
    }
    const int64_t groups = (int64_t)groupFirst.size();
    // Output order of the groups: sorted, or by first occurrence.
    std::vector<int64_t> outOrder((size_t)groups), rankOf((size_t)groups);
    std::iota(outOrder.begin(), outOrder.end(), 0);
    if (!sorted) std::sort(outOrder.begin(), outOrder.end(), [&](int64_t a, int64_t b) { return groupFirst[(size_t)a] < groupFirst[(size_t)b]; });
    for (int64_t r = 0; r < groups; r++) rankOf[(size_t)outOrder[(size_t)r]] = r;
    Shape yShape = shape;
    yShape[(size_t)axis] = groups;
    Tensor& y = ctx.allocateOutput(0, x.dtype, yShape);
    for (int64_t o = 0; o < outer; o++) {
      for (int64_t r = 0; r < groups; r++) {
        const int64_t j = groupFirst[(size_t)outOrder[(size_t)r]];
        copyElements(x.dtype, y.data, (o * groups + r) * inner, x.data, (o * count + j) * inner, inner);
      }
    }
    auto vector = [&](size_t i, int64_t n) -> int64_t* {
      return i < ctx.outputs.size() ? ctx.allocateOutput(i, DType::Int64, {n}).ptr<int64_t>() : nullptr;
    };
    if (int64_t* p = vector(1, groups)) for (int64_t r = 0; r < groups; r++) p[r] = groupFirst[(size_t)outOrder[(size_t)r]];
    if (int64_t* p = vector(2, count)) for (int64_t j = 0; j < count; j++) p[j] = rankOf[(size_t)groupOf[(size_t)j]];
    if (int64_t* p = vector(3, groups)) for (int64_t r = 0; r < groups; r++) p[r] = groupCount[(size_t)outOrder[(size_t)r]];
  });
}

}  // namespace

KILN_REGISTER_KERNEL(TopK, (KernelDef{"cpu", "", "TopK", 1, createTopKKernel}));
KILN_REGISTER_KERNEL(Unique, (KernelDef{"cpu", "", "Unique", 11, createUniqueKernel}));

}  // namespace kiln::cpu
