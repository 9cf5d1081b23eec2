// MatMul epilogue fusion. Matches, on float32 tensors,
//   y = MatMul(A, B)                     any ranks, batched and broadcasting as ONNX allows
//   y = Add(y, bias)                     bias a constant whose elements run along y's last dim
//                                        only: [N], or [1,...,1,N] of rank <= y's
//   y = act(y)                           an activation, GELU included (pattern.h: matchActivation)
// with at least the bias or the activation present and every intermediate read only by the next
// step and not a graph output. The result is kiln.FusedMatMul(A, B, bias [N]?), which computes
// MatMul + bias broadcast over the last dim + activation: exactly what the Add did, because a bias
// of that shape (rank <= y's, its one non-1 dim equal to y's known last dim) cannot change y's shape. This is the
// Linear layer of every transformer (and MatMul + bias + GELU in their MLPs).
#include "core/error.h"
#include "graph/passes/pass.h"
#include "graph/passes/pattern.h"

namespace kiln {
namespace {

// The bias as a [N] tensor when b's elements run along the last dim of `y` only.
std::optional<Tensor> lastDimBias(const Tensor& b, const SymShape& y) {
  if (b.dtype != DType::Float32 || !y.hasRank || y.rank() == 0 || b.shape.empty() || b.shape.size() > y.rank()) {
    return std::nullopt;
  }
  const Dim& n = y.dims.back();
  if (!n.isKnown() || b.shape.back() != n.value) return std::nullopt;
  for (size_t d = 0; d + 1 < b.shape.size(); d++) {
    if (b.shape[d] != 1) return std::nullopt;
  }
  return reshaped(b, {n.value});
}

}  // namespace

int fuseMatMul(Graph& graph, PassContext&) {
  Rewriter rw(graph);
  int fused = 0;
  for (int32_t mi = 0; mi < (int32_t)graph.nodes.size(); mi++) {
    if (!rw.isOp(mi, "MatMul")) continue;
    const Node& mm = graph.nodes[mi];
    if (mm.inputs.size() != 2 || mm.outputs.size() != 1) continue;
    ValueId y = mm.outputs[0];
    if (!isFloat32(graph, y) || !isFloat32(graph, mm.inputs[0]) || !isFloat32(graph, mm.inputs[1])) continue;
    const SymShape& yShape = graph.values[y].shape;

    std::vector<int32_t> absorbed;
    ValueId bias = kNoValue;
    ValueId cur = y;
    int32_t add = rw.soleConsumerOp(cur, "Add");
    if (add >= 0) {
      auto other = rw.otherInput(add, cur);
      const Tensor* b = other ? rw.constant(*other) : nullptr;
      auto vector = b ? lastDimBias(*b, yShape) : std::nullopt;
      ValueId sum = graph.nodes[add].outputs[0];
      if (vector && graph.values[sum].shape.hasRank && graph.values[sum].shape.rank() == yShape.rank()) {
        bias = b->shape.size() == 1 ? *other : rw.addConstant(graph.values[*other].name + "_1d", *vector);
        absorbed.push_back(add);
        cur = sum;
      }
    }
    auto act = matchActivation(rw, cur);
    if (absorbed.empty() && !act) continue;

    std::map<std::string, Attribute> attrs;
    if (act) {
      addActivationAttrs(attrs, *act);
      absorbed.insert(absorbed.end(), act->nodes.begin(), act->nodes.end());
    }
    std::vector<ValueId> inputs = {mm.inputs[0], mm.inputs[1]};
    if (bias != kNoValue) inputs.push_back(bias);
    const std::string name = mm.name;
    int32_t anchor = absorbed.back();
    for (int32_t a : absorbed) {
      if (a != anchor) rw.remove(a);
    }
    rw.remove(mi);
    rw.becomeFused(anchor, "FusedMatMul", inputs, std::move(attrs), name);
    fused++;
  }
  return fused;
}

}  // namespace kiln
