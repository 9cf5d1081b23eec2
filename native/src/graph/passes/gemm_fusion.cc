// Gemm epilogue fusion. Matches, on float32 tensors,
//   y = Gemm(A, B, C?)                   (alpha, beta, transA, transB)
//   y = Add(y, b)                        only when the Gemm has no C: b a constant that broadcasts
//                                        to y's [M, N] without changing it
//   y = act(y)                           an activation (pattern.h: matchActivation)
// with every intermediate read only by the next step and not a graph output. A Gemm without C
// computes alpha*A*B, so adding b is exactly Gemm with C = b and beta = 1 (Gemm's C broadcasts
// unidirectionally to [M, N], the same rule as the Add when the Add's result keeps y's shape).
// With an activation the result is kiln.FusedGemm (Gemm, then the activation); with only the bias
// it stays an ONNX Gemm that takes C.
#include "core/error.h"
#include "graph/passes/pass.h"
#include "graph/passes/pattern.h"

namespace kiln {
namespace {

// b broadcasts onto `y` (unidirectionally) and is a constant float32 tensor.
bool broadcastsOnto(const Tensor& b, const SymShape& y) {
  if (b.dtype != DType::Float32 || !y.hasRank || b.shape.size() > y.rank()) return false;
  const size_t offset = y.rank() - b.shape.size();
  for (size_t d = 0; d < b.shape.size(); d++) {
    const Dim& yd = y.dims[d + offset];
    if (b.shape[d] != 1 && !(yd.isKnown() && yd.value == b.shape[d])) return false;
  }
  return true;
}

}  // namespace

int fuseGemm(Graph& graph, PassContext&) {
  Rewriter rw(graph);
  int fused = 0;
  for (int32_t gi = 0; gi < (int32_t)graph.nodes.size(); gi++) {
    if (!rw.isOp(gi, "Gemm")) continue;
    const Node& gemm = graph.nodes[gi];
    if (gemm.inputs.size() < 2 || gemm.inputs.size() > 3 || gemm.outputs.size() != 1) continue;
    ValueId y = gemm.outputs[0];
    if (!isFloat32(graph, y) || !isFloat32(graph, gemm.inputs[0]) || !isFloat32(graph, gemm.inputs[1])) continue;
    const SymShape& yShape = graph.values[y].shape;
    if (!yShape.hasRank || yShape.rank() != 2) continue;

    std::vector<int32_t> absorbed;
    ValueId c = gemm.hasInput(2) ? gemm.inputs[2] : kNoValue;
    bool setBeta = false;
    ValueId cur = y;
    if (c == kNoValue) {
      int32_t add = rw.soleConsumerOp(cur, "Add");
      if (add >= 0) {
        auto other = rw.otherInput(add, cur);
        const Tensor* b = other ? rw.constant(*other) : nullptr;
        ValueId sum = graph.nodes[add].outputs[0];
        if (b && broadcastsOnto(*b, yShape)) {
          c = *other;
          setBeta = true;
          absorbed.push_back(add);
          cur = sum;
        }
      }
    }
    auto act = matchActivation(rw, cur);
    if (absorbed.empty() && !act) continue;

    std::map<std::string, Attribute> attrs = gemm.attrs;
    attrs.erase("broadcast");  // Gemm-6's flag: newer Gemm always broadcasts C unidirectionally
    if (setBeta) attrs["beta"] = floatAttr(1.0f);
    std::vector<ValueId> inputs = {gemm.inputs[0], gemm.inputs[1]};
    if (c != kNoValue) inputs.push_back(c);
    const std::string name = gemm.name;
    if (!act) {
      Node& n = graph.nodes[gi];
      n.inputs = inputs;
      n.attrs = std::move(attrs);
      n.outputs[0] = cur;
      rw.claim(gi);
      for (int32_t a : absorbed) rw.remove(a);
      fused++;
      continue;
    }
    addActivationAttrs(attrs, *act);
    absorbed.insert(absorbed.end(), act->nodes.begin(), act->nodes.end());
    int32_t anchor = absorbed.back();
    for (int32_t a : absorbed) {
      if (a != anchor) rw.remove(a);
    }
    rw.remove(gi);
    rw.becomeFused(anchor, "FusedGemm", inputs, std::move(attrs), name);
    fused++;
  }
  return fused;
}

}  // namespace kiln
