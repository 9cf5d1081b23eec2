#include "backends/cuda/cuda_lowering.h"

#include <cstring>
#include <map>

#include "backends/cuda/cuda_fp16.h"
#include "core/error.h"
#include "graph/fused_ops.h"
#include "graph/passes/pattern.h"
#include "graph/shape_inference.h"

namespace kiln::cuda {
namespace {

bool isHeadTranspose(const Node& n) {
  return !n.dead && n.domain.empty() && n.opType == "Transpose" && n.getInts("perm") == std::vector<int64_t>{0, 2, 1, 3};
}

int fuseAttentionLayouts(Graph& g) {
  int rewrites = 0;
  std::vector<std::vector<int32_t>> consumers = g.consumers();
  for (size_t index = 0; index < g.nodes.size(); ++index) {
    Node& node = g.nodes[index];
    if (node.dead || node.domain != kKilnDomain || node.opType != "Attention") continue;
    std::vector<int64_t> layout(4, 0);
    bool changed = false;
    for (size_t i = 0; i < 3 && i < node.inputs.size(); ++i) {
      ValueId v = node.inputs[i];
      if (v == kNoValue || g.values[v].producer < 0 || g.isGraphOutput(v) || consumers[v].size() != 1) continue;
      Node& t = g.nodes[g.values[v].producer];
      if (!isHeadTranspose(t)) continue;
      node.inputs[i] = t.inputs[0];
      t.dead = true;
      layout[i] = 1;
      changed = true;
    }
    ValueId out = node.outputs.empty() ? kNoValue : node.outputs[0];
    if (out != kNoValue && !g.isGraphOutput(out) && consumers[out].size() == 1) {
      Node& t = g.nodes[consumers[out][0]];
      if (isHeadTranspose(t) && t.inputs[0] == out) {
        node.outputs[0] = t.outputs[0];
        g.values[t.outputs[0]].producer = static_cast<int32_t>(index);
        t.dead = true;
        layout[3] = 1;
        changed = true;
      }
    }
    if (!changed) continue;
    node.opType = "CudaAttention";
    node.attrs["layout"] = intsAttr(layout);
    ++rewrites;
  }
  return rewrites;
}

// Packs the Q, K and V projections feeding one CudaAttention into a single GEMM: three
// FusedMatMul(X, W_i [C,N], b_i) -> Reshape [B,S,H,D] chains on the same X become
// FusedMatMul(X, [W_q W_k W_v] [C,3N], [b_q b_k b_v]) -> [B,S,3N], read in place by the attention
// (attr qkv_heads = H; Q, K and V are column blocks of one row). One wide GEMM instead of three
// narrow ones: at batch 1 (128 tokens) each projection is a few microseconds of mostly launch and
// tail, so BERT-base saves 24 of its 72 GEMMs; at large batches the wider N fills the GPU better.
int packAttentionProjections(Graph& g) {
  int rewrites = 0;
  std::vector<std::vector<int32_t>> consumers = g.consumers();
  auto soleUse = [&](ValueId v) { return v != kNoValue && !g.isGraphOutput(v) && consumers[v].size() == 1; };
  for (Node& attn : g.nodes) {
    if (attn.dead || attn.domain != kKilnDomain || attn.opType != "CudaAttention" || attn.has("qkv_heads")) continue;
    const std::vector<int64_t> layout = attn.getInts("layout", {0, 0, 0, 0});
    if (layout.size() != 4 || !layout[0] || !layout[1] || !layout[2] || attn.inputs.size() < 3) continue;
    int32_t reshapes[3], matmuls[3];
    bool ok = true;
    for (int i = 0; i < 3 && ok; ++i) {
      const ValueId v = attn.inputs[i];
      ok = soleUse(v) && g.values[v].producer >= 0;
      if (!ok) break;
      reshapes[i] = g.values[v].producer;
      const Node& r = g.nodes[reshapes[i]];
      ok = !r.dead && r.domain.empty() && r.opType == "Reshape" && soleUse(r.inputs[0]) && g.values[r.inputs[0]].producer >= 0;
      if (!ok) break;
      matmuls[i] = g.values[r.inputs[0]].producer;
      const Node& m = g.nodes[matmuls[i]];
      ok = !m.dead && m.domain == kKilnDomain && m.opType == "FusedMatMul" && m.inputs.size() == 3 &&
           m.inputs[2] != kNoValue && g.values[m.inputs[1]].constant && g.values[m.inputs[2]].constant &&
           parseActivation(m.getString("activation", "")) == Activation::None;
    }
    if (!ok) continue;
    const Node& mq = g.nodes[matmuls[0]];
    const SymShape& x = g.values[mq.inputs[0]].shape;
    const SymShape& heads = g.values[attn.inputs[0]].shape;  // [B,S,H,D]
    if (!x.hasRank || x.rank() != 3 || !heads.hasRank || heads.rank() != 4 || !heads.dims[2].isKnown() ||
        !heads.dims[3].isKnown())
      continue;
    const int64_t h = heads.dims[2].value, d = heads.dims[3].value;
    const Tensor* w[3];
    const Tensor* b[3];
    for (int i = 0; i < 3 && ok; ++i) {
      const Node& m = g.nodes[matmuls[i]];
      const SymShape& hs = g.values[attn.inputs[i]].shape;
      w[i] = g.values[m.inputs[1]].constant.get();
      b[i] = g.values[m.inputs[2]].constant.get();
      ok = m.inputs[0] == mq.inputs[0] && w[i]->dtype == DType::Float32 && b[i]->dtype == DType::Float32 &&
           w[i]->shape.size() == 2 && w[i]->shape[1] == h * d && b[i]->shape == Shape{h * d} &&
           w[i]->shape[0] == w[0]->shape[0] && hs.hasRank && hs.rank() == 4 && hs.dims[2] == heads.dims[2] &&
           hs.dims[3] == heads.dims[3] && m.attrs.size() == mq.attrs.size();
    }
    if (!ok) continue;
    const int64_t c = w[0]->shape[0], n = h * d;
    Tensor wqkv = Tensor::allocate(DType::Float32, {c, 3 * n});
    Tensor bqkv = Tensor::allocate(DType::Float32, {3 * n});
    for (int i = 0; i < 3; ++i) {
      for (int64_t row = 0; row < c; ++row)
        std::memcpy(wqkv.ptr<float>() + row * 3 * n + i * n, w[i]->ptr<float>() + row * n, n * sizeof(float));
      std::memcpy(bqkv.ptr<float>() + i * n, b[i]->ptr<float>(), n * sizeof(float));
    }
    // The Q projection becomes the packed one (it precedes the attention in node order).
    Node& packed = g.nodes[matmuls[0]];
    const ValueId qkv = packed.outputs[0];
    packed.inputs[1] = g.addConstant(g.values[packed.inputs[1]].name + "/qkv", std::move(wqkv));
    packed.inputs[2] = g.addConstant(g.values[packed.inputs[2]].name + "/qkv", std::move(bqkv));
    for (int i = 0; i < 3; ++i) {
      g.nodes[reshapes[i]].dead = true;
      if (i > 0) g.nodes[matmuls[i]].dead = true;
      attn.inputs[i] = qkv;
    }
    attn.attrs["qkv_heads"] = intAttr(h);
    ++rewrites;
  }
  return rewrites;
}

int fuseAddLayerNorm(Graph& g) {
  int rewrites = 0;
  std::vector<std::vector<int32_t>> consumers = g.consumers();
  for (Node& ln : g.nodes) {
    if (ln.dead || ln.opType != "LayerNormalization" || (ln.domain != kKilnDomain && !ln.domain.empty())) continue;
    if (ln.outputs.size() > 1) {
      bool extra = false;
      for (size_t j = 1; j < ln.outputs.size(); ++j) extra = extra || ln.outputs[j] != kNoValue;
      if (extra) continue;
    }
    ValueId sum = ln.inputs[0];
    if (sum == kNoValue || g.values[sum].producer < 0 || g.isGraphOutput(sum) || consumers[sum].size() != 1) continue;
    Node& add = g.nodes[g.values[sum].producer];
    if (add.dead || !add.domain.empty() || add.opType != "Add" || add.inputs.size() != 2) continue;
    const SymShape& a = g.values[add.inputs[0]].shape;
    const SymShape& b = g.values[add.inputs[1]].shape;
    // Provably equal shapes only (no broadcasting inside the fused kernel).
    if (!a.hasRank || !b.hasRank || !(a.dims == b.dims)) continue;
    Node fused;
    fused.name = ln.name;
    fused.domain = kKilnDomain;
    fused.opType = "CudaAddLayerNorm";
    fused.inputs = {add.inputs[0], add.inputs[1], ln.inputs[1], ln.inputs.size() > 2 ? ln.inputs[2] : kNoValue};
    fused.outputs = {ln.outputs[0]};
    fused.attrs["axis"] = ln.attrs.count("axis") ? ln.attrs.at("axis") : intAttr(-1);
    fused.attrs["epsilon"] = floatAttr(ln.getFloat("epsilon", 1e-5f));
    add.dead = true;
    ln = fused;
    ++rewrites;
  }
  return rewrites;
}

bool isConvLike(const Node& n) {
  if (n.dead) return false;
  if (n.domain.empty() && (n.opType == "Conv" || n.opType == "MaxPool" || n.opType == "AveragePool" ||
                           n.opType == "GlobalAveragePool"))
    return true;
  return n.domain == kKilnDomain && n.opType == "FusedConv";
}

// Inputs that carry the activation layout: X (0) and, for FusedConv, the residual Z (3).
bool isActivationInput(const Node& n, size_t i) {
  return i == 0 || (n.opType == "FusedConv" && i == 3);
}

// Converts the convolutional part of an fp16 graph to NHWC, the layout cuDNN's tensor-core kernels
// run natively: all-or-nothing over the region of Conv/FusedConv/Max-/Average-/GlobalAveragePool nodes
// whose activations flow only between each other, with one Transpose at each entry.
// GlobalAveragePool's [N,C,1,1] output has the same bytes in both layouts, so it is the exit.
int convertConvsToNhwc(Graph& g) {
  std::vector<std::vector<int32_t>> consumers = g.consumers();
  std::vector<char> inRegion(g.nodes.size(), 0);
  bool any = false;
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    const Node& node = g.nodes[n];
    if (!isConvLike(node)) continue;
    ValueId x = node.inputs.empty() ? kNoValue : node.inputs[0];
    if (x == kNoValue || g.values[x].shape.rank() != 4) return 0;
    if (node.opType == "MaxPool" && node.outputs.size() > 1 && node.outputs[1] != kNoValue) return 0;
    if (node.opType == "Conv" || node.opType == "FusedConv") {
      if (!node.hasInput(1) || !g.values[node.inputs[1]].constant) return 0;
    }
    inRegion[n] = 1;
    any = true;
  }
  if (!any) return 0;
  // Every activation produced inside (except the pooled exit) must be read only inside, as X or Z.
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    if (!inRegion[n] || g.nodes[n].opType == "GlobalAveragePool") continue;
    ValueId out = g.nodes[n].outputs[0];
    if (g.isGraphOutput(out)) return 0;
    for (int32_t c : consumers[out]) {
      if (!inRegion[c]) return 0;
      const Node& user = g.nodes[c];
      for (size_t i = 0; i < user.inputs.size(); ++i) {
        if (user.inputs[i] == out && !isActivationInput(user, i)) return 0;
      }
    }
  }
  std::map<ValueId, ValueId> entries;  // NCHW value -> its NHWC transpose
  std::map<ValueId, ValueId> weights;  // OIHW constant -> OHWI constant
  int rewrites = 0;
  const size_t numNodes = g.nodes.size();
  for (size_t n = 0; n < numNodes; ++n) {
    if (!inRegion[n]) continue;
    for (size_t i = 0; i < g.nodes[n].inputs.size(); ++i) {
      ValueId v = g.nodes[n].inputs[i];
      if (v == kNoValue || !isActivationInput(g.nodes[n], i)) continue;
      int32_t producer = g.values[v].producer;
      if (producer >= 0 && inRegion[producer] && g.nodes[producer].opType != "GlobalAveragePool" &&
          g.nodes[producer].opType != "CudaGlobalAvgPoolNHWC")
        continue;
      auto it = entries.find(v);
      if (it == entries.end()) {
        ValueId nhwc = g.addValue(g.values[v].name + "/nhwc", g.values[v].dtype);
        Node t;
        t.name = g.values[v].name + "/to_nhwc";
        t.opType = "Transpose";
        t.attrs["perm"] = intsAttr({0, 2, 3, 1});
        t.inputs = {v};
        t.outputs = {nhwc};
        g.addNode(t);
        it = entries.emplace(v, nhwc).first;
      }
      g.nodes[n].inputs[i] = it->second;
    }
    Node& node = g.nodes[n];
    if (node.opType == "Conv" || node.opType == "FusedConv") {
      ValueId w = node.inputs[1];
      auto it = weights.find(w);
      if (it == weights.end()) {
        const Tensor& src = *g.values[w].constant;
        const Shape& s = src.shape;  // [K, C/g, R, S]
        Tensor dst = Tensor::allocate(src.dtype, {s[0], s[2], s[3], s[1]});
        const size_t e = dtypeSize(src.dtype);
        const auto* from = static_cast<const uint8_t*>(src.data);
        auto* to = static_cast<uint8_t*>(dst.data);
        for (int64_t k = 0; k < s[0]; ++k)
          for (int64_t c = 0; c < s[1]; ++c)
            for (int64_t r = 0; r < s[2]; ++r)
              for (int64_t q = 0; q < s[3]; ++q)
                std::memcpy(to + (((k * s[2] + r) * s[3] + q) * s[1] + c) * e,
                            from + (((k * s[1] + c) * s[2] + r) * s[3] + q) * e, e);
        it = weights.emplace(w, g.addConstant(g.values[w].name + "/ohwi", std::move(dst))).first;
      }
      node.inputs[1] = it->second;
      node.opType = "CudaConvNHWC";
    } else if (node.opType == "MaxPool") {
      node.opType = "CudaMaxPoolNHWC";
    } else if (node.opType == "AveragePool") {
      node.opType = "CudaAveragePoolNHWC";
    } else {
      node.opType = "CudaGlobalAvgPoolNHWC";
    }
    node.domain = kKilnDomain;
    ++rewrites;
  }
  return rewrites;
}

// The model's float32 input cast to half and then transposed into the NHWC region becomes one
// kiln.CudaCastToNhwc pass: ResNet-50's [256,3,224,224] input took 0.13 ms to cast and 0.17 ms to
// transpose on the H100, where one pass reads 154 MB and writes 77 MB.
int fuseInputCastTranspose(Graph& g) {
  int rewrites = 0;
  std::vector<std::vector<int32_t>> consumers = g.consumers();
  for (Node& t : g.nodes) {
    if (t.dead || !t.domain.empty() || t.opType != "Transpose" || t.getInts("perm") != std::vector<int64_t>{0, 2, 3, 1})
      continue;
    const ValueId half = t.inputs[0];
    if (half == kNoValue || g.values[half].producer < 0 || g.isGraphOutput(half) || consumers[half].size() != 1) continue;
    Node& cast = g.nodes[g.values[half].producer];
    if (cast.dead || !cast.domain.empty() || cast.opType != "Cast" || g.values[cast.inputs[0]].dtype != DType::Float32 ||
        g.values[half].dtype != DType::Float16 || g.values[cast.inputs[0]].shape.rank() != 4)
      continue;
    t.domain = kKilnDomain;
    t.opType = "CudaCastToNhwc";
    t.attrs.clear();
    t.inputs = {cast.inputs[0]};
    cast.dead = true;
    ++rewrites;
  }
  return rewrites;
}

}  // namespace

void lowerToFp16Nhwc(Graph& g) {
  lowerGraphToFp16(g);
  if (convertConvsToNhwc(g) > 0) {
    fuseInputCastTranspose(g);
    g.compact();
    inferShapes(g);
  }
}

void lowerGraphForCuda(Graph& g, Precision precision, std::vector<std::string>& warnings) {
  (void)warnings;
  // Int8: the fp16 + NHWC part runs in quantizeGraph (int8_lowering.cc), after the Q/DQ pairs of
  // the model are taken out.
  g.opsets[kKilnDomain] = std::max<int64_t>(g.opsetFor(kKilnDomain), 1);
  int rewrites = fuseAttentionLayouts(g);
  if (rewrites > 0) {
    g.compact();
    inferShapes(g);  // the packing reads the attention inputs' [B,S,H,D] shapes
    rewrites += packAttentionProjections(g);
  }
  rewrites += fuseAddLayerNorm(g);
  if (rewrites > 0) {
    g.compact();
    inferShapes(g);
  }
  if (precision == Precision::Fp16) lowerToFp16Nhwc(g);
}

}  // namespace kiln::cuda
