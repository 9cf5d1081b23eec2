// Shape folding. Matches
//   Shape(x)            when the dims it reports (all of them, or [start, end) from opset 15) are
//                       known after shape inference,
//   Size(x)             when every dim of x is known,
//   Gather(Shape(x), i) with constant indices picking only known dims (axis 0), and
//   Slice(Shape(x), ...) with constant starts/ends/axes/steps picking only known dims,
// and replaces the result with an int64 constant. Exporters compute reshape targets from runtime
// shapes (Shape -> Gather -> Unsqueeze -> Concat -> Reshape); once the dims involved are static the
// whole chain folds (constant folding takes it from here) and Reshape gets a static target. Safe
// because a known dim is the same in every run: inference proved it from the model's static dims.
// The Shape node itself stays while something else still reads it; dead-node elimination removes
// it later. Results that are graph outputs are left alone (graph outputs stay produced by nodes).
#include <algorithm>

#include "core/error.h"
#include "graph/passes/pass.h"
#include "graph/passes/pattern.h"

namespace kiln {
namespace {

// The dims Shape(x) reports, with unknown ones as -1; nullopt when x's rank is unknown.
std::optional<std::vector<int64_t>> reportedDims(const Graph& graph, const Node& shapeNode) {
  const SymShape& s = graph.values[shapeNode.inputs[0]].shape;
  if (!s.hasRank) return std::nullopt;
  const int64_t rank = (int64_t)s.rank();
  // Shape-15 start/end: negative counts from the back; both clamp to [0, rank].
  auto clampIndex = [rank](int64_t i) { return std::clamp(i < 0 ? i + rank : i, int64_t(0), rank); };
  int64_t start = clampIndex(shapeNode.getInt("start", 0));
  int64_t end = shapeNode.has("end") ? clampIndex(shapeNode.getInt("end", rank)) : rank;
  std::vector<int64_t> dims;
  for (int64_t d = start; d < end; d++) dims.push_back(s.dims[d].isKnown() ? s.dims[d].value : -1);
  return dims;
}

bool allKnown(const std::vector<int64_t>& dims) {
  return std::all_of(dims.begin(), dims.end(), [](int64_t d) { return d >= 0; });
}

Tensor int64Tensor(const std::vector<int64_t>& values, const Shape& shape) {
  Tensor t = Tensor::allocate(DType::Int64, shape);
  std::copy(values.begin(), values.end(), t.ptr<int64_t>());
  return t;
}

// Elements picked by Gather(data = dims, indices, axis 0); nullopt on anything unusual.
std::optional<std::pair<std::vector<int64_t>, Shape>> gatherDims(const Rewriter& rw, const Node& gather,
                                                                 const std::vector<int64_t>& dims) {
  if (gather.inputs.size() != 2 || gather.getInt("axis", 0) != 0) return std::nullopt;
  const Tensor* indices = rw.constant(gather.inputs[1]);
  if (!indices || (indices->dtype != DType::Int64 && indices->dtype != DType::Int32)) return std::nullopt;
  std::vector<int64_t> picked;
  const int64_t n = (int64_t)dims.size();
  for (int64_t i : indices->toInt64Vector()) {
    if (i < -n || i >= n) return std::nullopt;  // out of range: leave it to the kernel's error
    picked.push_back(dims[i < 0 ? i + n : i]);
  }
  return std::make_pair(picked, indices->shape);
}

// Elements picked by a 1-D Slice with constant arguments (ONNX clamping rules).
std::optional<std::vector<int64_t>> sliceDims(const Rewriter& rw, const Node& slice, const std::vector<int64_t>& dims) {
  std::vector<int64_t> starts, ends, axes = {0}, steps = {1};
  auto readInput = [&](size_t i, std::vector<int64_t>& out) {
    if (!slice.hasInput(i)) return true;
    const Tensor* t = rw.constant(slice.inputs[i]);
    if (!t || (t->dtype != DType::Int64 && t->dtype != DType::Int32)) return false;
    out = t->toInt64Vector();
    return true;
  };
  if (slice.has("starts")) {  // Slice-1: attributes
    starts = slice.getInts("starts");
    ends = slice.getInts("ends");
    axes = slice.getInts("axes", {0});
  } else if (!readInput(1, starts) || !readInput(2, ends) || !readInput(3, axes) || !readInput(4, steps)) {
    return std::nullopt;
  }
  if (starts.size() != 1 || ends.size() != 1 || axes.size() != 1 || steps.size() != 1) return std::nullopt;
  if ((axes[0] != 0 && axes[0] != -1) || steps[0] == 0) return std::nullopt;
  const int64_t n = (int64_t)dims.size(), step = steps[0];
  auto norm = [n](int64_t i) { return i < 0 ? i + n : i; };
  int64_t start = norm(starts[0]), end = norm(ends[0]);
  if (step > 0) {
    start = std::clamp(start, int64_t(0), n);
    end = std::clamp(end, int64_t(0), n);
  } else {
    start = std::clamp(start, int64_t(0), n - 1);
    end = std::clamp(end, int64_t(-1), n - 1);
  }
  std::vector<int64_t> picked;
  for (int64_t i = start; step > 0 ? i < end : i > end; i += step) picked.push_back(dims[i]);
  return picked;
}

void makeConstant(Graph& graph, Rewriter& rw, int32_t node, Tensor value) {
  ValueId out = graph.nodes[node].outputs[0];
  Value& v = graph.values[out];
  v.dtype = DType::Int64;
  v.shape = SymShape::of(value.shape);
  v.constant = std::make_shared<Tensor>(std::move(value));
  v.producer = -1;
  rw.remove(node);
}

bool foldable(const Graph& graph, const Node& n) {
  return n.outputs.size() == 1 && n.outputs[0] != kNoValue && !graph.isGraphOutput(n.outputs[0]) &&
         !n.inputs.empty() && n.inputs[0] != kNoValue;
}

}  // namespace

int foldShapes(Graph& graph, PassContext&) {
  Rewriter rw(graph);
  int folded = 0;
  for (int32_t i = 0; i < (int32_t)graph.nodes.size(); i++) {
    const Node& n = graph.nodes[i];
    if (rw.isOp(i, "Size") && foldable(graph, n)) {
      const SymShape& s = graph.values[n.inputs[0]].shape;
      if (!s.isConcrete()) continue;
      makeConstant(graph, rw, i, int64Tensor({shapeNumel(s.concrete())}, {}));
      folded++;
      continue;
    }
    if (!rw.isOp(i, "Shape") || n.inputs.size() != 1 || n.outputs.size() != 1) continue;
    auto dims = reportedDims(graph, n);
    if (!dims) continue;
    if (allKnown(*dims) && foldable(graph, n)) {
      makeConstant(graph, rw, i, int64Tensor(*dims, {(int64_t)dims->size()}));
      folded++;
      continue;
    }
    // Some dims are symbolic: fold the readers that only pick known ones.
    for (int32_t reader : rw.consumers(n.outputs[0])) {
      if (!rw.usable(reader) || !foldable(graph, graph.nodes[reader])) continue;
      const Node& r = graph.nodes[reader];
      if (r.inputs[0] != n.outputs[0]) continue;
      if (rw.isOp(reader, "Gather")) {
        auto picked = gatherDims(rw, r, *dims);
        if (!picked || !allKnown(picked->first)) continue;
        makeConstant(graph, rw, reader, int64Tensor(picked->first, picked->second));
        folded++;
      } else if (rw.isOp(reader, "Slice")) {
        auto picked = sliceDims(rw, r, *dims);
        if (!picked || !allKnown(*picked)) continue;
        makeConstant(graph, rw, reader, int64Tensor(*picked, {(int64_t)picked->size()}));
        folded++;
      }
    }
  }
  return folded;
}

}  // namespace kiln
