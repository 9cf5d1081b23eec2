// Attention fusion. Matches scaled dot-product attention as transformer exports write it, on
// float32 tensors:
//   s = MatMul(Q, Kt)                Q [B,H,Sq,D]; Kt = Transpose(K, perm [0,1,3,2]) with K
//                                    [B,H,Sk,D], or Transpose(K', perm [0,2,3,1]) with K' [B,Sk,H,D]
//                                    straight off the head split
//   s = Div(s, c) | Mul(s, c)        optional, c a constant scalar: scale = 1/c or c (else 1)
//   s = Add(s, M)                    optional, M any tensor broadcasting to [B,H,Sq,Sk] (the padding
//                                    mask), unless M is the causal constant below
//   s = Where(C, s, f) | Add(s, C')  optional causal mask: C a constant bool [..,Sq,Sk] that is
//                                    exactly j <= i + (Sk - Sq) (leading dims 1), f a constant
//                                    <= -1e4; or C' a constant that is 0 there and <= -1e4 elsewhere
//   p = Softmax(s)                   over the last axis
//   O = MatMul(p, V)                 V [B,H,Sk,Dv]
// (mask and causal steps in either order, operands of Add/Mul in either order) and replaces it with
// kiln.Attention(Q, K, V, M?) {scale, causal}. It computes softmax(Q K^T * scale + M) V with
// positions j > i + (Sk - Sq) removed, which is what the graph computes: a fill of -1e4 or less
// after scaling makes exp() underflow to exactly 0 in float32 as well, and Sk >= Sq guarantees every
// row keeps at least one position. Every intermediate must be read only by the next step and stay
// rank 4, constants must be scalars (scale, fill) or the exact causal triangle, and anything else
// leaves the graph unchanged. For the [0,2,3,1] form the Transpose is rewritten to produce
// K [B,H,Sk,D] (perm [0,2,1,3]) for the fused op.
//
// Dims: batch and head dims of Q, K and V, the head size of Q and K, the key length of K and V and
// the mask's dims against the scores must not be provably different (known and unequal). With
// dynamic shapes inference often cannot prove them equal either (a reshape's fresh symbols, a mask
// sized by "sequence" against scores sized by a symbol of its own); those are accepted because
// kiln.Attention's schema checks every one of these relations on the concrete shapes of each run
// and fails with a ShapeMismatch naming the node. Where the original graph would have broadcast
// instead (K shared across the batch, a mask larger than the scores) the engine therefore reports
// an error rather than computing something else; no model we know of does that.
#include <cmath>

#include "core/error.h"
#include "graph/passes/pass.h"
#include "graph/passes/pattern.h"

namespace kiln {
namespace {

constexpr double kMaskedLimit = -1e4;

struct Chain {
  int32_t qk = -1;  // MatMul(Q, Kt)
  double scale = 1;
  ValueId mask = kNoValue;
  bool causal = false;
  std::vector<int32_t> nodes;  // scale / mask / causal nodes
};

struct Dims4 {
  Dim b, h, s, d;
};

// Not provably different: equal when both are known, otherwise left to kiln.Attention's run-time
// check (see above).
bool compatible(const Dim& a, const Dim& b) { return !(a.isKnown() && b.isKnown() && a.value != b.value); }

std::optional<Dims4> dims4(const Graph& g, ValueId v) {
  const SymShape& s = g.values[v].shape;
  if (!s.hasRank || s.rank() != 4) return std::nullopt;
  return Dims4{s.dims[0], s.dims[1], s.dims[2], s.dims[3]};
}

// Lower-triangular check over the last two dims of a constant whose leading dims are all 1.
// `allowed(i, j)` must hold exactly where j <= i + (sk - sq).
template <class Pred>
bool isCausalPattern(const Tensor& t, const SymShape& scores, Pred allowed) {
  if (t.shape.size() < 2 || t.shape.size() > 4 || !scores.hasRank || scores.rank() != 4) return false;
  for (size_t d = 0; d + 2 < t.shape.size(); d++) {
    if (t.shape[d] != 1) return false;
  }
  const Dim& sqDim = scores.dims[2];
  const Dim& skDim = scores.dims[3];
  const int64_t sq = t.shape[t.shape.size() - 2], sk = t.shape.back();
  if (!sqDim.isKnown() || !skDim.isKnown() || sqDim.value != sq || skDim.value != sk || sk < sq) return false;
  for (int64_t i = 0; i < sq; i++) {
    for (int64_t j = 0; j < sk; j++) {
      if (allowed(i * sk + j) != (j <= i + (sk - sq))) return false;
    }
  }
  return true;
}

bool isCausalAdditive(const Rewriter& rw, ValueId v, const SymShape& scores) {
  const Tensor* t = rw.constant(v);
  if (!t || t->dtype != DType::Float32) return false;
  const float* p = t->ptr<float>();
  // A position is open when its value is exactly 0 and closed when it is <= -1e4; anything else
  // is a real additive mask, not a causal one.
  for (int64_t i = 0; i < t->numel(); i++) {
    if (p[i] != 0.0f && !(p[i] <= kMaskedLimit)) return false;
  }
  return isCausalPattern(*t, scores, [p](int64_t i) { return p[i] == 0.0f; });
}

bool isCausalWhere(const Rewriter& rw, const Node& where, ValueId scoresIn, const SymShape& scores) {
  if (where.inputs.size() != 3 || where.inputs[1] != scoresIn) return false;
  const Tensor* cond = rw.constant(where.inputs[0]);
  auto fill = rw.scalar(where.inputs[2]);
  if (!cond || cond->dtype != DType::Bool || !fill || !(*fill <= kMaskedLimit)) return false;
  const uint8_t* c = cond->ptr<uint8_t>();
  return isCausalPattern(*cond, scores, [c](int64_t i) { return c[i] != 0; });
}

// M broadcasts onto the scores without enlarging them.
bool isMask(const Graph& g, ValueId m, const SymShape& scores) {
  if (!isFloat32(g, m)) return false;
  const SymShape& s = g.values[m].shape;
  if (!s.hasRank || s.rank() > 4) return false;
  for (size_t k = 0; k < s.rank(); k++) {
    const Dim& md = s.dims[s.rank() - 1 - k];
    const Dim& sd = scores.dims[3 - k];
    if (!(md.isKnown() && md.value == 1) && !compatible(md, sd)) return false;
  }
  return true;
}

// Walks back from v (read only by `reader`) to MatMul(Q, Kt) through the optional steps.
std::optional<Chain> walk(const Rewriter& rw, ValueId v, int32_t reader, const SymShape& scores, bool allowMask,
                          bool allowCausal, bool allowScale) {
  const Graph& g = rw.graph;
  const SymShape& vs = g.values[v].shape;
  if (rw.soleConsumer(v) != reader || !vs.hasRank || vs.rank() != 4) return std::nullopt;
  int32_t p = rw.producer(v);
  if (p < 0) return std::nullopt;
  const Node& n = g.nodes[p];
  if (rw.isOp(p, "MatMul")) {
    Chain c;
    c.qk = p;
    return c;
  }
  if (n.inputs.size() < 2) return std::nullopt;
  auto extend = [&](std::optional<Chain> c) {
    if (c) c->nodes.push_back(p);
    return c;
  };
  if (allowScale && (rw.isOp(p, "Div") || rw.isOp(p, "Mul")) && n.inputs.size() == 2) {
    for (int k = 0; k < 2; k++) {
      if (k == 1 && rw.isOp(p, "Div")) break;  // Div(c, s) is not a scaling of s
      auto c = rw.scalar(n.inputs[1 - k]);
      if (!c) continue;
      double scale = rw.isOp(p, "Div") ? 1.0 / *c : *c;
      if (!std::isfinite(scale)) return std::nullopt;
      auto chain = extend(walk(rw, n.inputs[k], p, scores, false, false, false));
      if (chain) chain->scale = scale;
      return chain;
    }
    return std::nullopt;
  }
  if (rw.isOp(p, "Add") && n.inputs.size() == 2) {
    for (int k = 0; k < 2; k++) {
      ValueId a = n.inputs[k], other = n.inputs[1 - k];
      if (a == other) return std::nullopt;
      if (allowCausal && isCausalAdditive(rw, other, scores)) {
        auto chain = extend(walk(rw, a, p, scores, allowMask, false, true));
        if (chain) {
          chain->causal = true;
          return chain;
        }
      }
      if (allowMask && isMask(g, other, scores)) {
        auto chain = extend(walk(rw, a, p, scores, false, allowCausal, true));
        if (chain) {
          chain->mask = other;
          return chain;
        }
      }
    }
    return std::nullopt;
  }
  if (allowCausal && rw.isOp(p, "Where") && n.inputs.size() == 3 && isCausalWhere(rw, n, n.inputs[1], scores)) {
    auto chain = extend(walk(rw, n.inputs[1], p, scores, allowMask, false, true));
    if (chain) chain->causal = true;
    return chain;
  }
  return std::nullopt;
}

// The softmax normalizes over the last axis of a rank-4 tensor. Before opset 13 the axis splits
// the tensor into 2-D [outer, inner]; with axis 3 of 4 that is the same as the last axis.
bool softmaxOverLastAxis(const Rewriter& rw, const Node& sm) {
  int64_t opset = rw.graph.opsetFor("");
  int64_t axis = sm.getInt("axis", opset >= 13 ? -1 : 1);
  return axis == -1 || axis == 3;
}

}  // namespace

int fuseAttention(Graph& graph, PassContext&) {
  Rewriter rw(graph);
  int fused = 0;
  for (int32_t si = 0; si < (int32_t)graph.nodes.size(); si++) {
    if (!rw.isOp(si, "Softmax")) continue;
    const Node& sm = graph.nodes[si];
    if (sm.inputs.size() != 1 || sm.outputs.size() != 1 || !softmaxOverLastAxis(rw, sm)) continue;
    ValueId scoresOut = sm.inputs[0], probs = sm.outputs[0];
    int32_t pv = rw.soleConsumerOp(probs, "MatMul");
    if (pv < 0 || graph.nodes[pv].inputs.size() != 2 || graph.nodes[pv].inputs[0] != probs) continue;
    const SymShape& scores = graph.values[scoresOut].shape;
    if (!scores.hasRank || scores.rank() != 4 || !isFloat32(graph, scoresOut)) continue;
    auto chain = walk(rw, scoresOut, si, scores, true, true, true);
    if (!chain) continue;

    // MatMul(Q, Kt) with Kt a transpose of K.
    const Node& qk = graph.nodes[chain->qk];
    if (qk.inputs.size() != 2) continue;
    ValueId q = qk.inputs[0], kt = qk.inputs[1], v = graph.nodes[pv].inputs[1];
    int32_t tr = rw.producerOp(kt, "Transpose");
    if (tr < 0 || rw.soleConsumer(kt) != chain->qk || graph.nodes[tr].inputs.size() != 1) continue;
    std::vector<int64_t> perm = graph.nodes[tr].getInts("perm");
    const bool headSplit = perm == std::vector<int64_t>{0, 2, 3, 1};
    if (perm != std::vector<int64_t>{0, 1, 3, 2} && !headSplit) continue;
    ValueId kIn = graph.nodes[tr].inputs[0];
    auto qd = dims4(graph, q);
    auto kraw = dims4(graph, kIn);
    auto vd = dims4(graph, v);
    auto od = dims4(graph, graph.nodes[pv].outputs[0]);
    if (!qd || !kraw || !vd || !od) continue;
    Dims4 kd = headSplit ? Dims4{kraw->b, kraw->s, kraw->h, kraw->d} : *kraw;  // [B,Sk,H,D] -> [B,H,Sk,D]
    bool shapesAgree = compatible(qd->b, kd.b) && compatible(qd->b, vd->b) && compatible(qd->h, kd.h) &&
                       compatible(qd->h, vd->h) && compatible(qd->d, kd.d) && compatible(kd.s, vd->s) &&
                       compatible(od->b, qd->b) && compatible(od->h, qd->h) && compatible(od->s, qd->s) &&
                       compatible(od->d, vd->d) && compatible(scores.dims[2], qd->s) && compatible(scores.dims[3], kd.s);
    if (!shapesAgree || !isFloat32(graph, q) || !isFloat32(graph, kIn) || !isFloat32(graph, v)) continue;

    const std::string name = qk.name;
    ValueId k = kIn;
    if (headSplit) {
      // Keep the transpose but make it produce K in [B,H,Sk,D].
      SymShape bhsd;
      bhsd.hasRank = true;
      bhsd.dims = {kd.b, kd.h, kd.s, kd.d};
      k = rw.addValue(graph.values[kt].name + "_bhsd", DType::Float32, bhsd);
      Node& t = graph.nodes[tr];
      t.attrs["perm"] = intsAttr({0, 2, 1, 3});
      t.outputs[0] = k;
      graph.values[k].producer = tr;
      rw.claim(tr);
    } else {
      rw.remove(tr);
    }
    std::vector<ValueId> inputs = {q, k, v};
    if (chain->mask != kNoValue) inputs.push_back(chain->mask);
    for (int32_t n : chain->nodes) rw.remove(n);
    rw.remove(chain->qk);
    rw.remove(si);
    std::map<std::string, Attribute> attrs;
    attrs["scale"] = floatAttr((float)chain->scale);
    attrs["causal"] = intAttr(chain->causal ? 1 : 0);
    rw.becomeFused(pv, "Attention", inputs, std::move(attrs), name);
    fused++;
  }
  return fused;
}

}  // namespace kiln
