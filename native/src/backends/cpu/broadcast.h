// Multidirectional (numpy/ONNX) broadcasting for CPU kernels.
//
// makeBroadcast() right-aligns every input shape against the output shape, drops dims of size 1 and
// merges adjacent dims whose broadcast pattern is the same for every input. What remains is usually
// one or two dims: same-shape operands become one contiguous run, a scalar becomes a run with stride
// 0, a bias [C] over [N, C] becomes runs of C. forEachRun() then walks any sub-range of the output
// as runs that lie within one innermost row, handing the kernel an offset per input and a run length;
// each input's stride inside a run is 0 (broadcast) or 1 (contiguous), so the kernel's inner loop is
// a plain loop the compiler vectorizes. Sub-ranges let kernels split work with ThreadPool::parallelFor.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"

namespace kiln::cpu {

// The broadcast of several concrete shapes; throws ShapeMismatch naming `where` when incompatible.
inline Shape broadcastShapes(const std::vector<Shape>& shapes, const std::string& where) {
  size_t rank = 0;
  for (const Shape& s : shapes) rank = s.size() > rank ? s.size() : rank;
  Shape out(rank, 1);
  for (const Shape& s : shapes) {
    size_t offset = rank - s.size();
    for (size_t i = 0; i < s.size(); i++) {
      int64_t d = s[i];
      int64_t& o = out[offset + i];
      if (d == o || d == 1) continue;
      if (o == 1) {
        o = d;
        continue;
      }
      std::string list;
      for (const Shape& t : shapes) list += (list.empty() ? "" : " and ") + shapeToString(t);
      fail(ErrorCode::ShapeMismatch, where + ": shapes " + list + " cannot be broadcast together");
    }
  }
  return out;
}

struct Broadcast {
  std::vector<int64_t> dims;                  // collapsed output dims; at least one
  std::vector<std::vector<int64_t>> strides;  // [input][dim] element strides, 0 where broadcast
  int64_t numel = 0;

  int64_t inner() const { return dims.back(); }
  // Stride of input k inside a run: 0 (one element repeated) or 1 (contiguous).
  int64_t innerStride(size_t k) const { return strides[k].back(); }
  bool contiguous(size_t k) const { return innerStride(k) == 1; }
};

// Plans the iteration of `out` over inputs of the given shapes (each must broadcast to `out`).
inline Broadcast makeBroadcast(const Shape& out, const std::vector<Shape>& inputs) {
  const size_t rank = out.size();
  const size_t n = inputs.size();
  // Per input: its dims right-aligned to the output rank (missing leading dims are 1).
  std::vector<Shape> padded(n, Shape(rank, 1));
  for (size_t k = 0; k < n; k++) {
    KILN_CHECK(inputs[k].size() <= rank, Internal,
               "broadcast input " + shapeToString(inputs[k]) + " has higher rank than output " + shapeToString(out));
    size_t offset = rank - inputs[k].size();
    for (size_t i = 0; i < inputs[k].size(); i++) {
      int64_t d = inputs[k][i];
      KILN_CHECK(d == out[offset + i] || d == 1, Internal,
                 "input " + shapeToString(inputs[k]) + " does not broadcast to " + shapeToString(out));
      padded[k][offset + i] = d;
    }
  }
  Broadcast b;
  b.numel = shapeNumel(out);
  b.strides.assign(n, {});
  // Contiguous strides of each padded input, then 0 wherever it broadcasts.
  std::vector<std::vector<int64_t>> full(n, std::vector<int64_t>(rank, 0));
  for (size_t k = 0; k < n; k++) {
    int64_t s = 1;
    for (size_t i = rank; i-- > 0;) {
      full[k][i] = (padded[k][i] == 1) ? 0 : s;
      s *= padded[k][i];
    }
  }
  for (size_t i = 0; i < rank; i++) {
    if (out[i] == 1) continue;  // contributes nothing to iteration
    bool merge = !b.dims.empty();
    if (merge) {
      // Merging dim i into the previous kept dim is valid when, for every input, both are
      // broadcast or both are contiguous continuations (stride(prev) == stride(i) * out[i]).
      for (size_t k = 0; k < n && merge; k++) {
        int64_t prev = b.strides[k].back();
        int64_t cur = full[k][i];
        merge = (prev == 0 && cur == 0) || (prev != 0 && cur != 0 && prev == cur * out[i]);
      }
    }
    if (merge) {
      b.dims.back() *= out[i];
      for (size_t k = 0; k < n; k++) b.strides[k].back() = full[k][i];
    } else {
      b.dims.push_back(out[i]);
      for (size_t k = 0; k < n; k++) b.strides[k].push_back(full[k][i]);
    }
  }
  if (b.dims.empty()) {  // scalar output (or all dims 1)
    b.dims.push_back(1);
    for (size_t k = 0; k < n; k++) b.strides[k].push_back(0);
  }
  // Inner strides are 0 or 1: only dims of size 1 (skipped above) can follow the innermost kept dim.
  return b;
}

// Calls run(outOffset, inOffsets, count) for consecutive runs covering output elements [begin, end).
// Each run lies inside one innermost row; inOffsets[k] is input k's element offset at the run start.
template <class F>
void forEachRun(const Broadcast& b, int64_t begin, int64_t end, F&& run) {
  if (begin >= end) return;
  const size_t rank = b.dims.size();
  const size_t n = b.strides.size();
  // Small fixed buffers cover every realistic case without allocating in the hot path.
  int64_t idxBuf[16], offBuf[16];
  std::vector<int64_t> idxVec, offVec;
  int64_t* idx = idxBuf;
  int64_t* off = offBuf;
  if (rank > 16 || n > 16) {
    idxVec.assign(rank, 0);
    offVec.assign(n, 0);
    idx = idxVec.data();
    off = offVec.data();
  }
  // Decompose `begin` into a multi-index and per-input offsets.
  int64_t rem = begin;
  for (size_t d = rank; d-- > 0;) {
    idx[d] = rem % b.dims[d];
    rem /= b.dims[d];
  }
  for (size_t k = 0; k < n; k++) {
    int64_t o = 0;
    for (size_t d = 0; d < rank; d++) o += idx[d] * b.strides[k][d];
    off[k] = o;
  }
  const int64_t inner = b.dims[rank - 1];
  int64_t pos = begin;
  while (pos < end) {
    int64_t count = inner - idx[rank - 1];
    if (count > end - pos) count = end - pos;
    run(pos, static_cast<const int64_t*>(off), count);
    pos += count;
    if (pos >= end) break;
    // Advance past the run: finish the innermost row, then carry into outer dims.
    for (size_t k = 0; k < n; k++) off[k] += count * b.strides[k][rank - 1];
    idx[rank - 1] += count;
    for (size_t d = rank - 1; d > 0 && idx[d] == b.dims[d]; d--) {
      for (size_t k = 0; k < n; k++) off[k] += b.strides[k][d - 1] - b.dims[d] * b.strides[k][d];
      idx[d] = 0;
      idx[d - 1]++;
    }
  }
}

}  // namespace kiln::cpu
