// The ONNX Attention operator (opset 23, 24) on the CPU, float32 and float16 (computed in float).
// Schema: ops/nn_attention.cc. Follows the ONNX reference: scores = Q K^T * scale, softcap, then
// the bias (attn_mask, causal mask aligned to the end of the KV cache, nonpad_kv_seqlen padding),
// softmax (a row with every key masked attends to nothing and yields zeros), times V.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "backends/cpu/ops/elementwise_util.h"

namespace kiln::cpu {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// A tensor read as float whatever its storage (float32, float16), with 4-D [b, h, s, d] indexing
// over either the 4-D layout or the 3-D [b, s, h*d] one.
struct HeadView {
  std::vector<float> data;
  int64_t heads = 0, seq = 0, dim = 0;
  bool threeD = false;

  float at(int64_t b, int64_t h, int64_t s, int64_t d) const {
    const int64_t i = threeD ? ((b * seq + s) * heads + h) * dim + d : ((b * heads + h) * seq + s) * dim + d;
    return data[(size_t)i];
  }
};

std::vector<float> toFloats(const Tensor& t) {
  std::vector<float> out((size_t)t.numel());
  if (t.dtype == DType::Float32) {
    std::copy(t.ptr<float>(), t.ptr<float>() + t.numel(), out.begin());
  } else {
    const uint16_t* h = t.ptr<uint16_t>();
    for (int64_t i = 0; i < t.numel(); i++) out[(size_t)i] = halfToFloat(h[i]);
  }
  return out;
}

void storeFloats(Tensor& t, const std::vector<float>& values) {
  if (t.dtype == DType::Float32) {
    std::copy(values.begin(), values.end(), t.ptr<float>());
  } else {
    uint16_t* h = t.ptr<uint16_t>();
    for (size_t i = 0; i < values.size(); i++) h[i] = floatToHalf(values[i]);
  }
}

class OnnxAttentionKernel final : public Kernel {
 public:
  explicit OnnxAttentionKernel(const KernelCreateInfo& info)
      : info_(info),
        qHeadsAttr_(info.node.getInt("q_num_heads", 0)),
        kvHeadsAttr_(info.node.getInt("kv_num_heads", 0)),
        causal_(info.node.getInt("is_causal", 0) != 0),
        mode_(info.node.getInt("qk_matmul_output_mode", 0)),
        hasScale_(info.node.has("scale")),
        scale_(info.node.getFloat("scale", 0.f)),
        softcap_(info.node.getFloat("softcap", 0.f)) {
    for (size_t i = 0; i < 3; i++) {
      const DType t = inputType(info, i);
      if (t != DType::Undefined) info_.require(typeBit(DType::Float32) | typeBit(DType::Float16), t);
    }
    if (mode_ < 0 || mode_ > 3) info_.invalid("qk_matmul_output_mode must be 0..3, got " + std::to_string(mode_));
  }

  void run(KernelContext& ctx) const override {
    const Tensor& qT = requireInput(ctx, info_, 0);
    const Tensor& kT = requireInput(ctx, info_, 1);
    const Tensor& vT = requireInput(ctx, info_, 2);
    if (kT.dtype != qT.dtype || vT.dtype != qT.dtype) info_.invalid("Q, K and V must share one type");
    const size_t rank = qT.shape.size();
    if ((rank != 3 && rank != 4) || kT.shape.size() != rank || vT.shape.size() != rank) {
      info_.shape("Q, K and V must all have rank 3 or all rank 4, got " + shapeToString(qT.shape) + ", " +
                  shapeToString(kT.shape) + ", " + shapeToString(vT.shape));
    }
    const bool threeD = rank == 3;
    const int64_t B = qT.shape[0];
    HeadView q, k, v;
    q.threeD = k.threeD = v.threeD = threeD;
    if (threeD) {
      if (qHeadsAttr_ <= 0 || kvHeadsAttr_ <= 0) info_.invalid("3-D inputs need q_num_heads and kv_num_heads");
      q.heads = qHeadsAttr_;
      k.heads = v.heads = kvHeadsAttr_;
      q.seq = qT.shape[1];
      k.seq = kT.shape[1];
      v.seq = vT.shape[1];
      if (qT.shape[2] % q.heads || kT.shape[2] % k.heads || vT.shape[2] % v.heads) {
        info_.shape("hidden sizes " + shapeToString(qT.shape) + ", " + shapeToString(kT.shape) + ", " +
                    shapeToString(vT.shape) + " are not multiples of the head counts");
      }
      q.dim = qT.shape[2] / q.heads;
      k.dim = kT.shape[2] / k.heads;
      v.dim = vT.shape[2] / v.heads;
    } else {
      q.heads = qT.shape[1], q.seq = qT.shape[2], q.dim = qT.shape[3];
      k.heads = kT.shape[1], k.seq = kT.shape[2], k.dim = kT.shape[3];
      v.heads = vT.shape[1], v.seq = vT.shape[2], v.dim = vT.shape[3];
    }
    if (kT.shape[0] != B || vT.shape[0] != B) info_.shape("Q, K and V disagree on the batch size");
    if (k.dim != q.dim) info_.shape("K's head size " + std::to_string(k.dim) + " differs from Q's " + std::to_string(q.dim));
    if (k.heads != v.heads || k.seq != v.seq) info_.shape("K and V disagree on heads or sequence length");
    if (k.heads <= 0 || q.heads % k.heads != 0) {
      info_.shape(std::to_string(q.heads) + " query heads cannot share " + std::to_string(k.heads) + " key/value heads");
    }
    q.data = toFloats(qT);
    k.data = toFloats(kT);
    v.data = toFloats(vT);

    // The KV cache: present = concat(past, new) along the sequence, always 4-D.
    const Tensor* pastK = optionalInput(ctx, 4);
    const Tensor* pastV = optionalInput(ctx, 5);
    if ((pastK == nullptr) != (pastV == nullptr)) info_.invalid("past_key and past_value come together");
    const int64_t past = pastK ? pastK->shape[2] : 0;
    if (pastK) {
      const Shape wantK{B, k.heads, past, k.dim}, wantV{B, v.heads, past, v.dim};
      if (pastK->shape != wantK || pastV->shape != Shape{B, v.heads, pastV->shape[2], v.dim} || pastV->shape[2] != past) {
        info_.shape("past_key " + shapeToString(pastK->shape) + " / past_value " + shapeToString(pastV->shape) +
                    " do not match " + shapeToString(wantK) + " / " + shapeToString(wantV));
      }
      if (pastK->dtype != qT.dtype || pastV->dtype != qT.dtype) info_.invalid("past_key/past_value must match Q's type");
    }
    const int64_t total = past + k.seq;
    HeadView presentK{std::vector<float>((size_t)(B * k.heads * total * k.dim)), k.heads, total, k.dim, false};
    HeadView presentV{std::vector<float>((size_t)(B * v.heads * total * v.dim)), v.heads, total, v.dim, false};
    {
      const std::vector<float> pk = pastK ? toFloats(*pastK) : std::vector<float>();
      const std::vector<float> pv = pastV ? toFloats(*pastV) : std::vector<float>();
      for (int64_t b = 0; b < B; b++) {
        for (int64_t h = 0; h < k.heads; h++) {
          for (int64_t s = 0; s < total; s++) {
            float* dk = presentK.data.data() + ((b * k.heads + h) * total + s) * k.dim;
            float* dv = presentV.data.data() + ((b * v.heads + h) * total + s) * v.dim;
            for (int64_t d = 0; d < k.dim; d++) dk[d] = s < past ? pk[(size_t)(((b * k.heads + h) * past + s) * k.dim + d)] : k.at(b, h, s - past, d);
            for (int64_t d = 0; d < v.dim; d++) dv[d] = s < past ? pv[(size_t)(((b * v.heads + h) * past + s) * v.dim + d)] : v.at(b, h, s - past, d);
          }
        }
      }
    }

    // The bias [B, Hq, Sq, total], broadcast from the mask (padded with -inf past its last dim).
    const Tensor* mask = optionalInput(ctx, 3);
    std::vector<float> maskValues;
    Shape maskShape;
    if (mask) {
      if (mask->dtype != DType::Bool && mask->dtype != qT.dtype) {
        info_.invalid("attn_mask must be bool or " + std::string(dtypeName(qT.dtype)) + ", got " + dtypeName(mask->dtype));
      }
      if (mask->shape.empty() || mask->shape.size() > 4) info_.shape("attn_mask must have rank 1..4, got " + shapeToString(mask->shape));
      maskShape = mask->shape;
      while (maskShape.size() < 4) maskShape.insert(maskShape.begin(), 1);
      const Shape full{B, q.heads, q.seq, total};
      for (size_t d = 0; d < 3; d++) {
        if (maskShape[d] != 1 && maskShape[d] != full[d]) {
          info_.shape("attn_mask " + shapeToString(mask->shape) + " does not broadcast to " + shapeToString(full));
        }
      }
      if (maskShape[3] > total) info_.shape("attn_mask " + shapeToString(mask->shape) + " is longer than the " + std::to_string(total) + " keys");
      if (mask->dtype == DType::Bool) {
        const uint8_t* m = mask->ptr<uint8_t>();
        maskValues.resize((size_t)mask->numel());
        for (int64_t i = 0; i < mask->numel(); i++) maskValues[(size_t)i] = m[i] ? 0.f : kNegInf;
      } else {
        maskValues = toFloats(*mask);
      }
    }
    const Tensor* nonpad = optionalInput(ctx, 6);
    std::vector<int64_t> validKeys((size_t)B, total);
    if (nonpad) {
      if (nonpad->shape != Shape{B}) info_.shape("nonpad_kv_seqlen must have shape [" + std::to_string(B) + "]");
      const std::vector<int64_t> n = nonpad->toInt64Vector();
      for (int64_t b = 0; b < B; b++) {
        if (n[(size_t)b] < 0 || n[(size_t)b] > total) info_.shape("nonpad_kv_seqlen[" + std::to_string(b) + "] is outside [0, " + std::to_string(total) + "]");
        validKeys[(size_t)b] = n[(size_t)b];
      }
    }

    const float scale = hasScale_ ? scale_ : 1.f / std::sqrt((float)q.dim);
    const int64_t group = q.heads / k.heads;
    std::vector<float> y((size_t)(B * q.heads * q.seq * v.dim));
    Tensor* qkOut = optionalOutput(ctx, 3);
    std::vector<float> qk(qkOut ? (size_t)(B * q.heads * q.seq * total) : 0);
    poolOf(ctx).parallelFor(B * q.heads, 1, [&](int64_t begin, int64_t end) {
      std::vector<float> scores((size_t)total), bias((size_t)total);
      for (int64_t bh = begin; bh < end; bh++) {
        const int64_t b = bh / q.heads, h = bh % q.heads, kvh = h / group;
        // Causal: query i attends keys j <= i + offset, the offset being the keys before this
        // block (the cache, or nonpad_kv_seqlen - q_len for an external cache).
        const int64_t offset = pastK || !nonpad ? past : validKeys[(size_t)b] - q.seq;
        for (int64_t i = 0; i < q.seq; i++) {
          for (int64_t j = 0; j < total; j++) {
            float s = 0;
            const float* kr = presentK.data.data() + ((b * k.heads + kvh) * total + j) * k.dim;
            for (int64_t d = 0; d < q.dim; d++) s += q.at(b, h, i, d) * kr[d];
            s *= scale;
            if (softcap_ > 0) s = softcap_ * std::tanh(s / softcap_);
            scores[(size_t)j] = s;
            float add = 0;
            if (mask) {
              if (j < maskShape[3]) {
                const int64_t mi = (((maskShape[0] == 1 ? 0 : b) * maskShape[1] + (maskShape[1] == 1 ? 0 : h)) * maskShape[2] +
                                    (maskShape[2] == 1 ? 0 : i)) * maskShape[3] + j;
                add += maskValues[(size_t)mi];
              } else {
                add = kNegInf;
              }
            }
            if (causal_ && j > i + offset) add = kNegInf;
            if (nonpad && j >= validKeys[(size_t)b]) add = kNegInf;
            bias[(size_t)j] = add;
          }
          float* qkRow = qkOut ? qk.data() + ((b * q.heads + h) * q.seq + i) * total : nullptr;
          if (qkRow && mode_ <= 1) std::copy(scores.begin(), scores.end(), qkRow);
          float maxScore = kNegInf;
          for (int64_t j = 0; j < total; j++) {
            scores[(size_t)j] += bias[(size_t)j];
            maxScore = std::max(maxScore, scores[(size_t)j]);
          }
          if (qkRow && mode_ == 2) std::copy(scores.begin(), scores.end(), qkRow);
          if (maxScore == kNegInf) {
            std::fill(scores.begin(), scores.end(), 0.f);  // every key masked: no attention at all
          } else {
            float sum = 0;
            for (float& s : scores) {
              s = std::exp(s - maxScore);
              sum += s;
            }
            for (float& s : scores) s /= sum;
          }
          if (qkRow && mode_ == 3) std::copy(scores.begin(), scores.end(), qkRow);
          // Y in 4-D order [b, h, i, :] here; 3-D inputs get [b, i, h*dv] below.
          float* out = y.data() + ((b * q.heads + h) * q.seq + i) * v.dim;
          std::fill(out, out + v.dim, 0.f);
          for (int64_t j = 0; j < total; j++) {
            const float p = scores[(size_t)j];
            if (p == 0) continue;
            const float* vr = presentV.data.data() + ((b * v.heads + kvh) * total + j) * v.dim;
            for (int64_t d = 0; d < v.dim; d++) out[d] += p * vr[d];
          }
        }
      }
    });

    if (threeD) {
      std::vector<float> y3(y.size());
      for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < q.heads; h++)
          for (int64_t i = 0; i < q.seq; i++)
            std::copy_n(y.data() + ((b * q.heads + h) * q.seq + i) * v.dim, v.dim,
                        y3.data() + ((b * q.seq + i) * q.heads + h) * v.dim);
      y.swap(y3);
    }
    const Shape yShape = threeD ? Shape{B, q.seq, q.heads * v.dim} : Shape{B, q.heads, q.seq, v.dim};
    storeFloats(requireOutput(ctx, info_, 0, yShape), y);
    if (Tensor* t = optionalOutput(ctx, 1)) storeFloats(checkShape(*t, {B, k.heads, total, k.dim}), presentK.data);
    if (Tensor* t = optionalOutput(ctx, 2)) storeFloats(checkShape(*t, {B, v.heads, total, v.dim}), presentV.data);
    if (qkOut) storeFloats(checkShape(*qkOut, {B, q.heads, q.seq, total}), qk);
  }

  std::string name() const override { return "attention.onnx_reference_order"; }

 private:
  static const Tensor* optionalInput(const KernelContext& ctx, size_t i) {
    return i < ctx.inputs.size() ? ctx.inputs[i] : nullptr;
  }
  static Tensor* optionalOutput(const KernelContext& ctx, size_t i) {
    return i < ctx.outputs.size() ? ctx.outputs[i] : nullptr;
  }
  Tensor& checkShape(Tensor& t, const Shape& want) const {
    if (t.shape != want) {
      fail(ErrorCode::Internal, info_.where() + ": output allocated as " + shapeToString(t.shape) + " but the kernel computes " + shapeToString(want));
    }
    return t;
  }

  OpInfo info_;
  int64_t qHeadsAttr_, kvHeadsAttr_;
  bool causal_;
  int64_t mode_;
  bool hasScale_;
  float scale_, softcap_;
};

std::unique_ptr<Kernel> makeOnnxAttention(const KernelCreateInfo& info) {
  return std::make_unique<OnnxAttentionKernel>(info);
}

}  // namespace

KILN_REGISTER_KERNEL(OnnxAttention, (KernelDef{"cpu", "", "Attention", 23, makeOnnxAttention}));

}  // namespace kiln::cpu
