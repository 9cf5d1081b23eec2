#include "backends/cpu/ops/tensor_copy.h"

#include <algorithm>
#include <cstring>

#include "ops/tensor_util.h"

namespace kiln::cpu {

const Tensor& needInput(const KernelContext& ctx, size_t i, const char* name) {
  if (i >= ctx.inputs.size() || ctx.inputs[i] == nullptr) {
    nodeFail(ctx.node, ErrorCode::InvalidArgument, std::string("required input '") + name + "' is missing");
  }
  return *ctx.inputs[i];
}

Tensor& needOutput(KernelContext& ctx, size_t i) {
  if (i >= ctx.outputs.size() || ctx.outputs[i] == nullptr) {
    nodeFail(ctx.node, ErrorCode::Internal, "output " + std::to_string(i) + " was not provided");
  }
  return *ctx.outputs[i];
}

namespace {

// Elements per parallel task: large enough that scheduling costs nothing next to the copy.
constexpr int64_t kCopyGrainElements = 1 << 15;
// Side of the square tiles a transposing copy walks, so both the rows it reads and the rows it
// writes stay in L1.
constexpr int64_t kTransposeBlock = 32;

// A view reduced to its essentials: size-1 dims dropped and dims merged wherever the view is
// contiguous across them, so most real copies become one to three dims.
struct View {
  std::vector<int64_t> shape, strides;
};

View simplify(const Shape& shape, const std::vector<int64_t>& strides) {
  View v;
  for (size_t i = 0; i < shape.size(); i++) {
    if (shape[i] == 1) continue;
    if (!v.shape.empty() && v.strides.back() == strides[i] * shape[i]) {
      v.shape.back() *= shape[i];
      v.strides.back() = strides[i];
    } else {
      v.shape.push_back(shape[i]);
      v.strides.push_back(strides[i]);
    }
  }
  return v;
}

// Source offset of the first element of outer row `row` (dims [0, dims) of the view).
int64_t rowOffset(const View& v, size_t dims, int64_t row) {
  int64_t off = 0;
  for (size_t i = dims; i-- > 0;) {
    off += (row % v.shape[i]) * v.strides[i];
    row /= v.shape[i];
  }
  return off;
}

// Advances a multi-index over dims [0, dims) by one, keeping `off` equal to its source offset.
void nextRow(const View& v, size_t dims, std::vector<int64_t>& idx, int64_t& off) {
  for (size_t i = dims; i-- > 0;) {
    off += v.strides[i];
    if (++idx[i] < v.shape[i]) return;
    off -= v.strides[i] * v.shape[i];
    idx[i] = 0;
  }
}

std::vector<int64_t> rowIndex(const View& v, size_t dims, int64_t row) {
  std::vector<int64_t> idx(dims);
  for (size_t i = dims; i-- > 0;) {
    idx[i] = row % v.shape[i];
    row /= v.shape[i];
  }
  return idx;
}

// Rows of the last dim: contiguous source (memcpy-like), broadcast (fill) or strided (gather).
template <class T>
void copyRows(T* dst, const T* src, const View& v, ThreadPool& pool) {
  const size_t outer = v.shape.size() - 1;
  const int64_t len = v.shape.back(), step = v.strides.back();
  int64_t rows = 1;
  for (size_t i = 0; i < outer; i++) rows *= v.shape[i];
  pool.parallelFor(rows, std::max<int64_t>(1, kCopyGrainElements / len), [&](int64_t begin, int64_t end) {
    std::vector<int64_t> idx = rowIndex(v, outer, begin);
    int64_t off = rowOffset(v, outer, begin);
    for (int64_t r = begin; r < end; r++) {
      T* out = dst + r * len;
      const T* in = src + off;
      if (step == 1) {
        std::copy(in, in + len, out);
      } else if (step == 0) {
        std::fill(out, out + len, *in);
      } else {
        for (int64_t j = 0; j < len; j++) out[j] = in[j * step];
      }
      nextRow(v, outer, idx, off);
    }
  });
}

// A copy whose source is contiguous along dim `a` but not along the last dim: a transpose of the
// (a, last) plane for every index of the other dims, walked in square tiles.
template <class T>
void copyTransposed(T* dst, const T* src, const View& v, size_t a, ThreadPool& pool) {
  const size_t rank = v.shape.size(), last = rank - 1;
  const int64_t na = v.shape[a], nb = v.shape[last], sb = v.strides[last];
  // Destination strides (contiguous) of the view's dims.
  std::vector<int64_t> dstStride(rank, 1);
  for (size_t i = rank - 1; i-- > 0;) dstStride[i] = dstStride[i + 1] * v.shape[i + 1];
  // The remaining dims ("planes"), in order.
  std::vector<size_t> others;
  for (size_t i = 0; i < last; i++)
    if (i != a) others.push_back(i);
  int64_t planes = 1;
  for (size_t i : others) planes *= v.shape[i];
  const int64_t blocksA = (na + kTransposeBlock - 1) / kTransposeBlock;
  const int64_t grain = std::max<int64_t>(1, kCopyGrainElements / (kTransposeBlock * nb));
  pool.parallelFor(planes * blocksA, grain, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; task++) {
      int64_t plane = task / blocksA, blockA = task % blocksA;
      int64_t srcBase = 0, dstBase = 0;
      for (size_t k = others.size(); k-- > 0;) {
        int64_t i = plane % v.shape[others[k]];
        plane /= v.shape[others[k]];
        srcBase += i * v.strides[others[k]];
        dstBase += i * dstStride[others[k]];
      }
      const int64_t a0 = blockA * kTransposeBlock, a1 = std::min(na, a0 + kTransposeBlock);
      for (int64_t b0 = 0; b0 < nb; b0 += kTransposeBlock) {
        const int64_t b1 = std::min(nb, b0 + kTransposeBlock);
        for (int64_t ia = a0; ia < a1; ia++) {
          T* out = dst + dstBase + ia * dstStride[a];
          const T* in = src + srcBase + ia;  // stride 1 along a
          for (int64_t ib = b0; ib < b1; ib++) out[ib] = in[ib * sb];
        }
      }
    }
  });
}

template <class T>
void copyStridedT(T* dst, const T* src, const Shape& shape, const std::vector<int64_t>& strides, ThreadPool& pool) {
  View v = simplify(shape, strides);
  if (v.shape.empty()) {  // a single element
    dst[0] = src[0];
    return;
  }
  if (v.strides.back() != 1 && v.strides.back() != 0 && v.shape.back() > 1) {
    // Prefer a tiled transpose when some other dim is the contiguous one in the source.
    for (size_t a = 0; a + 1 < v.shape.size(); a++) {
      if (v.strides[a] == 1 && v.shape[a] >= 4) {
        copyTransposed(dst, src, v, a, pool);
        return;
      }
    }
  }
  copyRows(dst, src, v, pool);
}

}  // namespace

void copyStrided(DType dtype, void* dst, const void* src, const Shape& shape, const std::vector<int64_t>& strides,
                 int64_t offset, ThreadPool& pool) {
  KILN_CHECK(shape.size() == strides.size(), Internal, "copyStrided: shape and strides differ in rank");
  if (shapeNumel(shape) == 0) return;
  visitStorage(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    copyStridedT(static_cast<T*>(dst), static_cast<const T*>(src) + offset, shape, strides, pool);
  });
}

void copyTensor(const Tensor& src, Tensor& dst, ThreadPool& pool) {
  KILN_CHECK(src.dtype == dst.dtype && src.numel() == dst.numel(), Internal,
             "copyTensor: " + shapeToString(src.shape) + " " + dtypeName(src.dtype) + " into " +
                 shapeToString(dst.shape) + " " + dtypeName(dst.dtype));
  if (src.data == dst.data || src.numel() == 0) return;
  int64_t n = src.numel();
  visitStorage(src.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = src.ptr<T>();
    T* out = dst.ptr<T>();
    pool.parallelFor(n, kCopyGrainElements * 4, [&](int64_t b, int64_t e) { std::copy(in + b, in + e, out + b); });
  });
}

void transposeInto(const Tensor& src, const std::vector<int64_t>& perm, Tensor& dst, ThreadPool& pool) {
  const size_t rank = src.shape.size();
  KILN_CHECK(perm.size() == rank && dst.shape.size() == rank, Internal, "transposeInto: rank mismatch");
  std::vector<int64_t> inStrides = shapeStrides(src.shape), strides(rank);
  Shape shape(rank);
  for (size_t i = 0; i < rank; i++) {
    shape[i] = src.shape[(size_t)perm[i]];
    strides[i] = inStrides[(size_t)perm[i]];
  }
  KILN_CHECK(shape == dst.shape, Internal,
             "transposeInto: output " + shapeToString(dst.shape) + " is not " + shapeToString(shape));
  copyStrided(src.dtype, dst.data, src.data, shape, strides, 0, pool);
}

void copyElements(DType dtype, void* dst, int64_t dstIndex, const void* src, int64_t srcIndex, int64_t count) {
  if (count <= 0) return;
  visitStorage(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = static_cast<const T*>(src) + srcIndex;
    std::copy(in, in + count, static_cast<T*>(dst) + dstIndex);
  });
}

void fillElements(DType dtype, void* dst, int64_t dstIndex, int64_t count, const void* value, int64_t valueIndex) {
  if (count <= 0) return;
  visitStorage(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* out = static_cast<T*>(dst) + dstIndex;
    std::fill(out, out + count, static_cast<const T*>(value)[valueIndex]);
  });
}

void fillZero(DType dtype, void* dst, int64_t dstIndex, int64_t count) {
  if (count <= 0) return;
  visitStorage(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* out = static_cast<T*>(dst) + dstIndex;
    std::fill(out, out + count, T{});
  });
}

}  // namespace kiln::cpu
