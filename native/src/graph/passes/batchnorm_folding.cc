// BatchNormalization folding. Matches an inference-mode BatchNormalization (training_mode 0, only
// its Y output used, spatial 1 where the attribute exists) with constant scale, bias, mean and var,
// whose input is the only use of the output of
//   Conv(X, W const, B const?)                          channel = dim 0 of W
//   Gemm(A, B const, C const?) (2-D output)             channel = column of the output
//   MatMul(A [M,K], B const [K,N]) (2-D output)         channel = column of the output
// BatchNorm is the per-channel affine map y = s*(x - mean) + beta with s = scale/sqrt(var + eps),
// and all three producers are linear in their weights per output channel, so scaling the weights
// of channel c by s[c] and replacing the bias b by s*(b - mean) + beta gives the same result. The
// Conv/Gemm then writes the BatchNorm's output directly; a MatMul becomes MatMul + Add(new bias)
// in the BatchNorm's place (the MatMul fusion then makes it a FusedMatMul). The folded weights
// are new constants (the originals may be shared with other nodes); arithmetic is in double.
#include <cmath>

#include "core/error.h"
#include "graph/passes/pass.h"
#include "graph/passes/pattern.h"

namespace kiln {
namespace {

struct BnParams {
  std::vector<double> scale;  // s = gamma / sqrt(var + eps)
  std::vector<double> shift;  // beta - mean * s, i.e. what the bias becomes when it was 0
};

// The BatchNorm's per-channel affine map, when it is foldable and has `channels` channels.
std::optional<BnParams> readBatchNorm(const Rewriter& rw, const Node& bn, int64_t channels) {
  if (bn.inputs.size() != 5 || bn.outputs.empty() || bn.outputs[0] == kNoValue) return std::nullopt;
  for (size_t k = 1; k < bn.outputs.size(); k++) {
    // Running mean/var outputs exist in training mode only; any reader means we cannot remove it.
    ValueId v = bn.outputs[k];
    if (v != kNoValue && (!rw.consumers(v).empty() || rw.graph.isGraphOutput(v))) return std::nullopt;
  }
  if (bn.getInt("training_mode", 0) != 0 || bn.getInt("spatial", 1) != 1) return std::nullopt;
  const Tensor* gamma = rw.constant(bn.inputs[1]);
  const Tensor* beta = rw.constant(bn.inputs[2]);
  const Tensor* mean = rw.constant(bn.inputs[3]);
  const Tensor* var = rw.constant(bn.inputs[4]);
  for (const Tensor* t : {gamma, beta, mean, var}) {
    if (!t || t->dtype != DType::Float32 || t->shape != Shape{channels}) return std::nullopt;
  }
  double eps = bn.getFloat("epsilon", 1e-5f);
  std::vector<double> g = toDoubles(*gamma), b = toDoubles(*beta), m = toDoubles(*mean), v = toDoubles(*var);
  BnParams p;
  for (int64_t c = 0; c < channels; c++) {
    double denom = v[c] + eps;
    if (!(denom > 0) || !std::isfinite(denom)) return std::nullopt;  // the model itself is broken here
    double s = g[c] / std::sqrt(denom);
    p.scale.push_back(s);
    p.shift.push_back(b[c] - m[c] * s);
  }
  return p;
}

// Weights with "row" r of W (W viewed as [rows, inner]) or "column" scaled by scale[channel].
Tensor scaleWeights(const Tensor& w, const std::vector<double>& scale, bool channelIsRow) {
  Tensor out = w.clone();
  const int64_t channels = (int64_t)scale.size();
  const int64_t total = w.numel();
  float* p = out.ptr<float>();
  if (channelIsRow) {
    const int64_t inner = total / channels;
    for (int64_t c = 0; c < channels; c++) {
      for (int64_t i = 0; i < inner; i++) p[c * inner + i] = (float)(p[c * inner + i] * scale[c]);
    }
  } else {
    const int64_t rows = total / channels;
    for (int64_t r = 0; r < rows; r++) {
      for (int64_t c = 0; c < channels; c++) p[r * channels + c] = (float)(p[r * channels + c] * scale[c]);
    }
  }
  return out;
}

// s * (bias * biasScale - mean) + beta, as a [channels] float tensor; bias may be absent (zero).
Tensor foldedBias(const std::vector<double>* bias, double biasScale, const BnParams& bn) {
  const int64_t channels = (int64_t)bn.scale.size();
  Tensor out = Tensor::allocate(DType::Float32, {channels});
  for (int64_t c = 0; c < channels; c++) {
    double b = bias ? (*bias)[c] * biasScale : 0.0;
    out.ptr<float>()[c] = (float)(b * bn.scale[c] + bn.shift[c]);
  }
  return out;
}

// A constant bias that is the same per channel in every row: [C], [1,C], or a scalar. Returns it
// expanded to C values.
std::optional<std::vector<double>> perChannel(const Tensor& t, int64_t channels) {
  if (t.dtype != DType::Float32) return std::nullopt;
  std::vector<double> v = toDoubles(t);
  if (t.numel() == 1) return std::vector<double>((size_t)channels, v[0]);
  if (t.shape == Shape{channels} || t.shape == Shape{1, channels}) return v;
  return std::nullopt;
}

bool foldIntoConv(Rewriter& rw, int32_t convIdx, int32_t bnIdx) {
  Graph& g = rw.graph;
  const Node& conv = g.nodes[convIdx];
  if (conv.outputs.size() != 1 || conv.inputs.size() < 2) return false;
  const Tensor* w = rw.constant(conv.inputs[1]);
  if (!w || w->dtype != DType::Float32 || w->shape.size() < 3 || w->shape[0] <= 0) return false;
  const int64_t channels = w->shape[0];
  const Tensor* b = conv.hasInput(2) ? rw.constant(conv.inputs[2]) : nullptr;
  if (conv.hasInput(2) && (!b || b->dtype != DType::Float32 || b->shape != Shape{channels})) return false;
  auto bn = readBatchNorm(rw, g.nodes[bnIdx], channels);
  if (!bn) return false;
  std::vector<double> bias;
  if (b) bias = toDoubles(*b);
  ValueId newW = rw.addConstant(conv.name + "_bn_weight", scaleWeights(*w, bn->scale, true));
  ValueId newB = rw.addConstant(conv.name + "_bn_bias", foldedBias(b ? &bias : nullptr, 1.0, *bn));
  Node& c = g.nodes[convIdx];
  c.inputs.resize(3);
  c.inputs[1] = newW;
  c.inputs[2] = newB;
  c.outputs[0] = g.nodes[bnIdx].outputs[0];
  rw.claim(convIdx);
  rw.remove(bnIdx);
  return true;
}

bool foldIntoGemm(Rewriter& rw, int32_t gemmIdx, int32_t bnIdx) {
  Graph& g = rw.graph;
  const Node& gemm = g.nodes[gemmIdx];
  if (gemm.outputs.size() != 1 || gemm.inputs.size() < 2 || gemm.has("broadcast")) return false;
  const Tensor* w = rw.constant(gemm.inputs[1]);
  if (!w || w->dtype != DType::Float32 || w->shape.size() != 2) return false;
  const bool transB = gemm.getInt("transB", 0) != 0;
  const int64_t channels = transB ? w->shape[0] : w->shape[1];
  if (channels <= 0) return false;
  std::optional<std::vector<double>> c;
  if (gemm.hasInput(2)) {
    const Tensor* ct = rw.constant(gemm.inputs[2]);
    if (!ct || !(c = perChannel(*ct, channels))) return false;
  }
  auto bn = readBatchNorm(rw, g.nodes[bnIdx], channels);
  if (!bn) return false;
  // Y = alpha*A*B + beta*C: scaling B's output columns scales alpha*A*B; beta folds into the bias.
  const double beta = gemm.getFloat("beta", 1.0f);
  ValueId newW = rw.addConstant(gemm.name + "_bn_weight", scaleWeights(*w, bn->scale, transB));
  ValueId newC = rw.addConstant(gemm.name + "_bn_bias", foldedBias(c ? &*c : nullptr, beta, *bn));
  Node& n = g.nodes[gemmIdx];
  n.inputs.resize(3);
  n.inputs[1] = newW;
  n.inputs[2] = newC;
  n.attrs["beta"] = floatAttr(1.0f);
  n.outputs[0] = g.nodes[bnIdx].outputs[0];
  rw.claim(gemmIdx);
  rw.remove(bnIdx);
  return true;
}

bool foldIntoMatMul(Rewriter& rw, int32_t mmIdx, int32_t bnIdx) {
  Graph& g = rw.graph;
  const Node& mm = g.nodes[mmIdx];
  if (mm.outputs.size() != 1 || mm.inputs.size() != 2) return false;
  const Tensor* w = rw.constant(mm.inputs[1]);
  const SymShape& a = g.values[mm.inputs[0]].shape;
  // BatchNorm's channel is dim 1, which is the MatMul's column dim only for a 2-D result.
  if (!w || w->dtype != DType::Float32 || w->shape.size() != 2 || !a.hasRank || a.rank() != 2) return false;
  const int64_t channels = w->shape[1];
  if (channels <= 0) return false;
  auto bn = readBatchNorm(rw, g.nodes[bnIdx], channels);
  if (!bn) return false;
  ValueId newW = rw.addConstant(mm.name + "_bn_weight", scaleWeights(*w, bn->scale, false));
  ValueId newB = rw.addConstant(mm.name + "_bn_bias", foldedBias(nullptr, 1.0, *bn));
  g.nodes[mmIdx].inputs[1] = newW;
  rw.claim(mmIdx);
  // The BatchNorm node becomes the bias Add, keeping its output and position.
  Node& add = g.nodes[bnIdx];
  add.opType = "Add";
  add.domain = "";
  add.inputs = {g.nodes[mmIdx].outputs[0], newB};
  add.outputs.resize(1);
  add.attrs.clear();
  rw.claim(bnIdx);
  return true;
}

}  // namespace

int foldBatchNorms(Graph& graph, PassContext&) {
  Rewriter rw(graph);
  int folded = 0;
  for (int32_t i = 0; i < (int32_t)graph.nodes.size(); i++) {
    if (!rw.isOp(i, "BatchNormalization") || graph.nodes[i].inputs.empty()) continue;
    ValueId x = graph.nodes[i].inputs[0];
    if (!isFloat32(graph, x) || rw.soleConsumer(x) != i) continue;
    int32_t p = rw.producer(x);
    if (p < 0) continue;
    bool done = false;
    if (rw.isOp(p, "Conv")) {
      done = foldIntoConv(rw, p, i);
    } else if (rw.isOp(p, "Gemm")) {
      done = foldIntoGemm(rw, p, i);
    } else if (rw.isOp(p, "MatMul")) {
      done = foldIntoMatMul(rw, p, i);
    }
    if (done) folded++;
  }
  return folded;
}

}  // namespace kiln
