// Conv epilogue fusion. Matches, on float32 tensors,
//   y = Conv(X, W, B?)   W a constant (the fused kernel packs it once, at engine build)
//   y = Add(y, b)   b a constant per-channel bias ([C], [C,1,1], [1,C,1,1]... aligned with dim 1)
//   y = Add(y, Z)   Z any tensor with exactly y's shape (the ResNet residual from another branch)
//   y = act(y)      an activation (pattern.h: matchActivation)
// each step optional but at least one present, every intermediate read only by the next step and
// not a graph output. The result is kiln.FusedConv(X, W, B', Z?) with the Conv's attributes plus the
// activation, computing exactly Conv + B' then + Z then act (graph/fused_ops.h), where B' = B + b.
// When only a bias Add follows, the Conv simply absorbs it as its own B and stays an ONNX Conv.
// The residual must match y's shape exactly (not merely broadcast) because the fused kernel adds
// it element for element, and the bias must be per output channel or the Add would broadcast
// differently than a bias does.
#include "core/error.h"
#include "graph/passes/pass.h"
#include "graph/passes/pattern.h"

namespace kiln {
namespace {

// Reads b as a per-output-channel bias for a Conv output of rank `rank` with `channels` channels.
std::optional<std::vector<double>> channelBias(const Tensor& b, size_t rank, int64_t channels) {
  if (b.dtype != DType::Float32 || b.shape.size() > rank || b.numel() != channels) return std::nullopt;
  // Right-align b's dims with the output's: the one aligned with dim 1 carries the channels, all
  // others are 1 (a scalar is a per-channel bias of equal values only when channels == 1).
  const size_t offset = rank - b.shape.size();
  for (size_t d = 0; d < b.shape.size(); d++) {
    size_t outDim = d + offset;
    if (outDim != 1 && b.shape[d] != 1) return std::nullopt;
    if (outDim == 1 && b.shape[d] != channels) return std::nullopt;
  }
  if (offset > 1 && channels != 1) return std::nullopt;  // b does not reach dim 1 at all
  return toDoubles(b);
}

}  // namespace

int fuseConv(Graph& graph, PassContext&) {
  Rewriter rw(graph);
  int fused = 0;
  for (int32_t ci = 0; ci < (int32_t)graph.nodes.size(); ci++) {
    if (!rw.isOp(ci, "Conv")) continue;
    const Node& conv = graph.nodes[ci];
    if (conv.inputs.size() < 2 || conv.inputs.size() > 3 || conv.outputs.size() != 1) continue;
    ValueId y = conv.outputs[0];
    if (!isFloat32(graph, y) || !isFloat32(graph, conv.inputs[0]) || !isFloat32(graph, conv.inputs[1])) continue;
    const SymShape& yShape = graph.values[y].shape;
    // Constant weights only: the fused kernel packs them once when the engine is built.
    const Tensor* w = rw.constant(conv.inputs[1]);
    if (!w || w->shape.size() < 3 || !yShape.hasRank || yShape.rank() != w->shape.size()) continue;
    const int64_t channels = w->shape[0];
    if (channels <= 0) continue;

    std::vector<int32_t> absorbed;
    std::vector<double> extraBias;
    ValueId z = kNoValue;
    std::optional<ActivationMatch> act;
    ValueId cur = y;

    // Bias Add.
    int32_t add = rw.soleConsumerOp(cur, "Add");
    if (add >= 0) {
      auto other = rw.otherInput(add, cur);
      const Tensor* b = other ? rw.constant(*other) : nullptr;
      auto bias = b ? channelBias(*b, yShape.rank(), channels) : std::nullopt;
      if (bias) {  // a per-channel bias of rank <= y's cannot change y's shape
        extraBias = *bias;
        absorbed.push_back(add);
        cur = graph.nodes[add].outputs[0];
        add = rw.soleConsumerOp(cur, "Add");
      }
    }
    // Residual Add.
    if (add >= 0) {
      auto other = rw.otherInput(add, cur);
      if (other && isFloat32(graph, *other) && sameShape(graph.values[*other].shape, yShape)) {
        z = *other;
        absorbed.push_back(add);
        cur = graph.nodes[add].outputs[0];
      }
    }
    act = matchActivation(rw, cur);
    if (absorbed.empty() && !act) continue;

    // The combined bias B + b.
    ValueId bias = conv.hasInput(2) ? conv.inputs[2] : kNoValue;
    if (!extraBias.empty()) {
      std::vector<double> total = extraBias;
      if (bias != kNoValue) {
        const Tensor* b0 = rw.constant(bias);
        if (!b0 || b0->dtype != DType::Float32 || b0->numel() != channels) continue;
        std::vector<double> base = toDoubles(*b0);
        for (int64_t c = 0; c < channels; c++) total[c] += base[c];
      }
      Tensor t = Tensor::allocate(DType::Float32, {channels});
      for (int64_t c = 0; c < channels; c++) t.ptr<float>()[c] = (float)total[c];
      bias = rw.addConstant(conv.name + "_bias", std::move(t));
    }

    std::vector<ValueId> inputs = {conv.inputs[0], conv.inputs[1], bias};
    const std::string name = conv.name;
    if (z == kNoValue && !act) {
      // Only a bias Add: the Conv takes the bias and writes the Add's output.
      Node& c = graph.nodes[ci];
      c.inputs = inputs;
      c.outputs[0] = cur;
      rw.claim(ci);
      for (int32_t n : absorbed) rw.remove(n);
      fused++;
      continue;
    }
    if (z != kNoValue) inputs.push_back(z);
    while (!inputs.empty() && inputs.back() == kNoValue) inputs.pop_back();
    std::map<std::string, Attribute> attrs = conv.attrs;
    if (act) {
      addActivationAttrs(attrs, *act);
      absorbed.insert(absorbed.end(), act->nodes.begin(), act->nodes.end());
    }
    // The fused node takes the slot of the last node it replaces, after every input it reads.
    int32_t anchor = absorbed.back();
    for (int32_t n : absorbed) {
      if (n != anchor) rw.remove(n);
    }
    rw.remove(ci);
    rw.becomeFused(anchor, "FusedConv", inputs, std::move(attrs), name);
    fused++;
  }
  return fused;
}

}  // namespace kiln
