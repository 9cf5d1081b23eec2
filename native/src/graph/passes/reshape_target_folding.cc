// Reshape target folding. Matches Reshape(data, target) (allowzero 0) whose target is not a
// constant but is assembled, by Concat along axis 0, from pieces that are each
//   - a constant 1-D int64 tensor, or
//   - dims of `data` itself at the same positions they take in the target:
//     Shape(data) (or its [start, end) form), Slice(Shape(data)) with constant bounds and step 1,
//     Gather(Shape(data), constant indices), Unsqueeze(Gather(Shape(data), constant scalar), 0),
// and replaces the target with a constant in which those positions are 0. Reshape (allowzero 0)
// reads 0 as "keep this dim of the input", so the constant means exactly what the chain computed,
// at every input shape. This is how exporters write x.view(x.size(0), x.size(1), heads, -1) and the
// merge back; afterwards the output shape keeps the input's symbols (batch, sequence) instead of
// fresh unknowns, the Shape/Gather/Concat chain becomes dead, and the attention fusion can prove
// Q, K and V agree.
#include <algorithm>

#include "core/error.h"
#include "graph/passes/pass.h"
#include "graph/passes/pattern.h"

namespace kiln {
namespace {

// One Concat input of the target: per element, the dim of `data` it is, or a constant value.
struct Piece {
  std::vector<int64_t> dimIndex;  // dim of data each element is, or -1 for constant elements
  std::vector<int64_t> values;    // the constant elements (unused where dimIndex >= 0)
};

std::optional<std::vector<int64_t>> constInts(const Rewriter& rw, ValueId v) {
  const Tensor* t = rw.constant(v);
  if (!t || (t->dtype != DType::Int64 && t->dtype != DType::Int32)) return std::nullopt;
  return t->toInt64Vector();
}

// The dims Shape(data) reports, as indices into data's dims.
std::optional<std::vector<int64_t>> shapeDims(const Rewriter& rw, ValueId v, ValueId data, int64_t rank) {
  int32_t s = rw.producerOp(v, "Shape");
  if (s < 0 || rw.graph.nodes[s].inputs.size() != 1 || rw.graph.nodes[s].inputs[0] != data) return std::nullopt;
  const Node& n = rw.graph.nodes[s];
  auto clampIndex = [rank](int64_t i) { return std::clamp(i < 0 ? i + rank : i, int64_t(0), rank); };
  int64_t start = clampIndex(n.getInt("start", 0));
  int64_t end = n.has("end") ? clampIndex(n.getInt("end", rank)) : rank;
  std::vector<int64_t> dims;
  for (int64_t d = start; d < end; d++) dims.push_back(d);
  return dims;
}

std::optional<Piece> readPiece(const Rewriter& rw, ValueId v, ValueId data, int64_t rank) {
  if (auto c = constInts(rw, v)) {
    const Tensor* t = rw.constant(v);
    if (t->shape.size() != 1) return std::nullopt;
    return Piece{std::vector<int64_t>(c->size(), -1), *c};
  }
  if (auto dims = shapeDims(rw, v, data, rank)) return Piece{*dims, std::vector<int64_t>(dims->size(), 0)};
  int32_t p = rw.producer(v);
  if (p < 0) return std::nullopt;
  const Node& n = rw.graph.nodes[p];
  std::vector<int64_t> picked;
  if (n.inputs.empty()) return std::nullopt;
  if (rw.isOp(p, "Unsqueeze")) {
    // Unsqueeze(Gather(Shape(data), scalar), axes [0]): one element.
    std::vector<int64_t> axes = n.has("axes") ? n.getInts("axes") : constInts(rw, n.hasInput(1) ? n.inputs[1] : kNoValue).value_or(std::vector<int64_t>{});
    if (axes != std::vector<int64_t>{0} && axes != std::vector<int64_t>{-1}) return std::nullopt;
    int32_t g = rw.producerOp(n.inputs[0], "Gather");
    if (g < 0) return std::nullopt;
    const Node& gn = rw.graph.nodes[g];
    const Tensor* idx = gn.inputs.size() == 2 ? rw.constant(gn.inputs[1]) : nullptr;
    auto dims = gn.inputs.empty() ? std::nullopt : shapeDims(rw, gn.inputs[0], data, rank);
    if (!idx || !idx->shape.empty() || gn.getInt("axis", 0) != 0 || !dims) return std::nullopt;
    auto i = constInts(rw, gn.inputs[1]);
    if (!i) return std::nullopt;
    int64_t k = (*i)[0] < 0 ? (*i)[0] + (int64_t)dims->size() : (*i)[0];
    if (k < 0 || k >= (int64_t)dims->size()) return std::nullopt;
    picked = {(*dims)[k]};
  } else if (rw.isOp(p, "Gather")) {
    const Tensor* idx = n.inputs.size() == 2 ? rw.constant(n.inputs[1]) : nullptr;
    auto dims = shapeDims(rw, n.inputs[0], data, rank);
    if (!idx || idx->shape.size() != 1 || n.getInt("axis", 0) != 0 || !dims) return std::nullopt;
    std::vector<int64_t> indices = constInts(rw, n.inputs[1]).value_or(std::vector<int64_t>{});
    for (int64_t i : indices) {
      int64_t k = i < 0 ? i + (int64_t)dims->size() : i;
      if (k < 0 || k >= (int64_t)dims->size()) return std::nullopt;
      picked.push_back((*dims)[k]);
    }
  } else if (rw.isOp(p, "Slice")) {
    auto dims = shapeDims(rw, n.inputs[0], data, rank);
    if (!dims || n.inputs.size() < 3 || n.has("starts")) return std::nullopt;
    auto starts = constInts(rw, n.inputs[1]), ends = constInts(rw, n.inputs[2]);
    auto axes = n.hasInput(3) ? constInts(rw, n.inputs[3]) : std::optional<std::vector<int64_t>>(std::vector<int64_t>{0});
    auto steps = n.hasInput(4) ? constInts(rw, n.inputs[4]) : std::optional<std::vector<int64_t>>(std::vector<int64_t>{1});
    if (!starts || !ends || !axes || !steps || starts->size() != 1 || ends->size() != 1 || *steps != std::vector<int64_t>{1} ||
        (*axes != std::vector<int64_t>{0} && *axes != std::vector<int64_t>{-1})) {
      return std::nullopt;
    }
    const int64_t len = (int64_t)dims->size();
    auto clampIndex = [len](int64_t i) { return std::clamp(i < 0 ? i + len : i, int64_t(0), len); };
    for (int64_t k = clampIndex((*starts)[0]); k < clampIndex((*ends)[0]); k++) picked.push_back((*dims)[k]);
  } else {
    return std::nullopt;
  }
  return Piece{picked, std::vector<int64_t>(picked.size(), 0)};
}

}  // namespace

int foldReshapeTargets(Graph& graph, PassContext&) {
  Rewriter rw(graph);
  int folded = 0;
  for (int32_t i = 0; i < (int32_t)graph.nodes.size(); i++) {
    if (!rw.isOp(i, "Reshape")) continue;
    const Node& r = graph.nodes[i];
    if (r.inputs.size() != 2 || r.getInt("allowzero", 0) != 0 || rw.constant(r.inputs[1])) continue;
    const ValueId data = r.inputs[0];
    const SymShape& ds = graph.values[data].shape;
    if (!ds.hasRank) continue;
    const int64_t rank = (int64_t)ds.rank();
    std::vector<ValueId> parts = {r.inputs[1]};
    int32_t concat = rw.producerOp(r.inputs[1], "Concat");
    if (concat >= 0 && graph.nodes[concat].getInt("axis", 0) == 0) parts = graph.nodes[concat].inputs;
    std::vector<int64_t> target;
    bool ok = true;
    for (ValueId part : parts) {
      auto piece = part == kNoValue ? std::nullopt : readPiece(rw, part, data, rank);
      if (!piece) {
        ok = false;
        break;
      }
      for (size_t e = 0; e < piece->dimIndex.size(); e++) {
        int64_t position = (int64_t)target.size();
        // A dim of data may only stand where it stands in data: then 0 ("keep") means the same.
        if (piece->dimIndex[e] >= 0 && piece->dimIndex[e] != position) ok = false;
        target.push_back(piece->dimIndex[e] >= 0 ? 0 : piece->values[e]);
      }
      if (!ok) break;
    }
    if (!ok || target.empty()) continue;
    Tensor t = Tensor::allocate(DType::Int64, {(int64_t)target.size()});
    std::copy(target.begin(), target.end(), t.ptr<int64_t>());
    ValueId c = rw.addConstant(graph.values[r.inputs[1]].name + "_folded", std::move(t));
    graph.nodes[i].inputs[1] = c;
    rw.claim(i);
    folded++;
  }
  return folded;
}

}  // namespace kiln
