// RotaryEmbedding-23 on the CPU (float32, float16 computed in float). Schema: ops/nn_rotary.cc.
// For each (batch, position, head) the first rotary_embedding_dim features are rotated in pairs —
// (x[i], x[i + half]) or, interleaved, (x[2i], x[2i + 1]) — by the cached cos/sin of that position;
// the remaining features pass through.
#include <memory>
#include <string>
#include <vector>

#include "backends/cpu/ops/elementwise_util.h"

namespace kiln::cpu {
namespace {

float load(const Tensor& t, int64_t i) {
  return t.dtype == DType::Float32 ? t.ptr<float>()[i] : halfToFloat(t.ptr<uint16_t>()[i]);
}
void store(Tensor& t, int64_t i, float v) {
  if (t.dtype == DType::Float32) t.ptr<float>()[i] = v;
  else t.ptr<uint16_t>()[i] = floatToHalf(v);
}

class RotaryEmbeddingKernel final : public Kernel {
 public:
  explicit RotaryEmbeddingKernel(const KernelCreateInfo& info)
      : info_(info),
        interleaved_(info.node.getInt("interleaved", 0) != 0),
        numHeads_(info.node.getInt("num_heads", 0)),
        rotaryDim_(info.node.getInt("rotary_embedding_dim", 0)) {
    const DType t = inputType(info, 0);
    if (t != DType::Undefined) info_.require(typeBit(DType::Float32) | typeBit(DType::Float16), t);
  }

  void run(KernelContext& ctx) const override {
    const Tensor& x = requireInput(ctx, info_, 0);
    const Tensor& cosCache = requireInput(ctx, info_, 1);
    const Tensor& sinCache = requireInput(ctx, info_, 2);
    const Tensor* positions = ctx.inputs.size() > 3 ? ctx.inputs[3] : nullptr;
    if (cosCache.dtype != x.dtype || sinCache.dtype != x.dtype) info_.invalid("cos_cache and sin_cache must have X's type");
    const bool fourD = x.shape.size() == 4;
    if (!fourD && x.shape.size() != 3) info_.shape("X must have rank 3 or 4, got " + shapeToString(x.shape));
    const int64_t B = x.shape[0];
    const int64_t S = fourD ? x.shape[2] : x.shape[1];
    const int64_t H = fourD ? x.shape[1] : numHeads_;
    if (H <= 0 || (!fourD && x.shape[2] % H != 0)) info_.shape("X " + shapeToString(x.shape) + " does not split into num_heads heads");
    const int64_t D = fourD ? x.shape[3] : x.shape[2] / H;
    const int64_t rot = rotaryDim_ > 0 ? rotaryDim_ : D;
    if (rot > D || rot % 2 != 0) info_.shape("rotary_embedding_dim " + std::to_string(rot) + " must be even and at most the head size " + std::to_string(D));
    const int64_t half = rot / 2;
    if (cosCache.shape != sinCache.shape || cosCache.shape.empty() || cosCache.shape.back() != half) {
      info_.shape("cos_cache " + shapeToString(cosCache.shape) + " and sin_cache " + shapeToString(sinCache.shape) +
                  " must match and end in rotary_embedding_dim / 2 = " + std::to_string(half));
    }
    std::vector<int64_t> pos;
    if (positions) {
      if (positions->shape != Shape{B, S}) info_.shape("position_ids must have shape [" + std::to_string(B) + "," + std::to_string(S) + "]");
      if (cosCache.shape.size() != 2) info_.shape("with position_ids the caches must be [max_position, dim/2], got " + shapeToString(cosCache.shape));
      pos = positions->toInt64Vector();
      for (int64_t p : pos) {
        if (p < 0 || p >= cosCache.shape[0]) info_.shape("position id " + std::to_string(p) + " is outside the cache's " + std::to_string(cosCache.shape[0]) + " positions");
      }
    } else if (cosCache.shape != Shape{B, S, half}) {
      info_.shape("without position_ids the caches must be [batch, sequence, dim/2] = [" + std::to_string(B) + "," +
                  std::to_string(S) + "," + std::to_string(half) + "], got " + shapeToString(cosCache.shape));
    }
    Tensor& y = requireOutput(ctx, info_, 0, x.shape);
    poolOf(ctx).parallelFor(B * S, 1, [&](int64_t begin, int64_t end) {
      for (int64_t bs = begin; bs < end; bs++) {
        const int64_t b = bs / S, s = bs % S;
        const int64_t row = positions ? pos[(size_t)bs] * half : bs * half;
        for (int64_t h = 0; h < H; h++) {
          const int64_t base = fourD ? ((b * H + h) * S + s) * D : ((b * S + s) * H + h) * D;
          for (int64_t i = 0; i < half; i++) {
            const float c = load(cosCache, row + i), sn = load(sinCache, row + i);
            const int64_t i1 = interleaved_ ? 2 * i : i, i2 = interleaved_ ? 2 * i + 1 : i + half;
            const float x1 = load(x, base + i1), x2 = load(x, base + i2);
            store(y, base + i1, c * x1 - sn * x2);
            store(y, base + i2, sn * x1 + c * x2);
          }
          for (int64_t d = rot; d < D; d++) store(y, base + d, load(x, base + d));
        }
      }
    });
  }

  std::string name() const override { return "rotary_embedding"; }

 private:
  OpInfo info_;
  bool interleaved_;
  int64_t numHeads_, rotaryDim_;
};

std::unique_ptr<Kernel> makeRotary(const KernelCreateInfo& info) { return std::make_unique<RotaryEmbeddingKernel>(info); }

}  // namespace

KILN_REGISTER_KERNEL(RotaryEmbedding, (KernelDef{"cpu", "", "RotaryEmbedding", 23, makeRotary}));

}  // namespace kiln::cpu
