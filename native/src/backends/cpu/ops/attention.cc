// CPU kernel of kiln.Attention: Y = softmax(Q K^T * scale + mask) V per (batch, head), computed
// flash-attention style so no more than one [query block x key block] tile of scores exists per
// thread: for each block of keys, S = scale * Q_blk K_blk^T (SGEMM), mask and causal cut added,
// an online softmax (running row max and sum, earlier output rescaled when the max grows), and
// O += P V_blk (SGEMM). Tasks are (batch, head, query block), spread over the pool with per-slot
// workspace. Rows whose keys are all masked out produce zeros. Schema: ops/fused.cc.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>

#include "backends/cpu/ops/attention_kernels.h"
#include "backends/cpu/ops/gemm_common.h"

namespace kiln::cpu {
namespace {

using namespace nn;

constexpr int64_t kQueryBlock = 64;
constexpr int64_t kKeyBlock = 256;

struct AttentionShape {
  int64_t B = 0, H = 0, Sq = 0, Sk = 0, D = 0, Dv = 0;
  int64_t qBlock = 0, kBlock = 0;
  int64_t maskStride[4] = {0, 0, 0, 0};  // element strides over [B, H, Sq, Sk], 0 where broadcast

  int64_t slotFloats() const { return qBlock * kBlock + qBlock * Dv + 2 * qBlock; }
};

class AttentionKernel final : public Kernel {
 public:
  explicit AttentionKernel(const KernelCreateInfo& info) : node_(info.node) {
    requireComputeFloat(node_, info.inputTypes.size() > 0 ? info.inputTypes[0] : DType::Undefined, "input Q");
    hasScale_ = node_.has("scale");
    scale_ = node_.getFloat("scale", 1.f);
    causal_ = node_.getInt("causal", 0) != 0;
  }

  size_t workspaceBytes(const KernelContext& ctx) const override {
    const Tensor* q = inputShapeOf(ctx, 0);
    const Tensor* k = inputShapeOf(ctx, 1);
    const Tensor* v = inputShapeOf(ctx, 2);
    if (!q || !k || !v) return 0;
    AttentionShape s = resolve(*q, *k, *v, inputShapeOf(ctx, 3));
    return size_t(computePool(ctx)->size() * s.slotFloats()) * sizeof(float);
  }

  void run(KernelContext& ctx) const override {
    const Tensor& q = requiredInput(ctx, 0, "Q");
    const Tensor& k = requiredInput(ctx, 1, "K");
    const Tensor& v = requiredInput(ctx, 2, "V");
    const Tensor* mask = optionalInput(ctx, 3);
    const AttentionShape s = resolve(q, k, v, mask);
    Tensor& y = requiredOutput(ctx, 0, q.dtype, {s.B, s.H, s.Sq, s.Dv});
    if (y.numel() == 0) return;
    ThreadPool* pool = computePool(ctx);
    const int slots = pool->size();
    if (ctx.workspaceSize < size_t(slots * s.slotFloats()) * sizeof(float)) {
      failAt(node_, ErrorCode::Internal, "workspace too small for attention");
    }
    FloatView qv(q), kv(k), vv(v), mv;
    if (mask) mv = FloatView(*mask);
    FloatSink sink(y);
    const float scale = hasScale_ ? scale_ : 1.f / std::sqrt(float(std::max<int64_t>(1, s.D)));
    const int64_t qBlocks = (s.Sq + s.qBlock - 1) / s.qBlock;
    float* ws = static_cast<float*>(ctx.workspace);
    parallelForSlots(pool, s.B * s.H * qBlocks, slots, [&](int64_t task, int slot) {
      const int64_t bh = task / qBlocks, qb = task % qBlocks;
      block(s, bh, qb * s.qBlock, std::min(s.Sq, (qb + 1) * s.qBlock), scale, qv.data(), kv.data(), vv.data(),
            mask ? mv.data() : nullptr, sink.data(), ws + slot * s.slotFloats());
    });
    sink.commit();
  }

  std::string name() const override { return std::string("attention.flash_sgemm.") + sgemmTactic(); }

 private:
  AttentionShape resolve(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* mask) const {
    if (q.shape.size() != 4 || k.shape.size() != 4 || v.shape.size() != 4) {
      failAt(node_, ErrorCode::ShapeMismatch, "Q " + shapeToString(q.shape) + ", K " + shapeToString(k.shape) + " and V " +
                                                  shapeToString(v.shape) + " must be 4-D [batch, heads, seq, head_dim]");
    }
    if (k.dtype != q.dtype || v.dtype != q.dtype || (mask && mask->dtype != q.dtype)) {
      failAt(node_, ErrorCode::DTypeMismatch, "Q, K, V and mask must have the same type");
    }
    AttentionShape s;
    s.B = q.shape[0], s.H = q.shape[1], s.Sq = q.shape[2], s.D = q.shape[3];
    s.Sk = k.shape[2], s.Dv = v.shape[3];
    if (k.shape[0] != s.B || k.shape[1] != s.H || k.shape[3] != s.D || v.shape[0] != s.B || v.shape[1] != s.H ||
        v.shape[2] != s.Sk) {
      failAt(node_, ErrorCode::ShapeMismatch, "K " + shapeToString(k.shape) + " and V " + shapeToString(v.shape) +
                                                  " do not match Q " + shapeToString(q.shape));
    }
    if (mask) {
      const Shape target = {s.B, s.H, s.Sq, s.Sk};
      if (mask->shape.size() > 4) failAt(node_, ErrorCode::ShapeMismatch, "mask " + shapeToString(mask->shape) + " has more than 4 dims");
      int64_t stride = 1;
      for (size_t i = 0; i < mask->shape.size(); i++) {
        const size_t md = mask->shape.size() - 1 - i, d = 3 - i;
        const int64_t m = mask->shape[md];
        if (m != 1 && m != target[d]) {
          failAt(node_, ErrorCode::ShapeMismatch, "mask " + shapeToString(mask->shape) + " does not broadcast to " +
                                                      shapeToString(target));
        }
        s.maskStride[d] = m == 1 ? 0 : stride;
        stride *= m;
      }
    }
    s.qBlock = std::min(kQueryBlock, std::max<int64_t>(1, s.Sq));
    s.kBlock = std::min(kKeyBlock, std::max<int64_t>(1, s.Sk));
    return s;
  }

  // Output rows [q0, q1) of head bh.
  void block(const AttentionShape& s, int64_t bh, int64_t q0, int64_t q1, float scale, const float* Q, const float* K,
             const float* V, const float* mask, float* Y, float* scratch) const {
    const AttentionRowKernels& rk = attentionRowKernels();
    const int64_t rows = q1 - q0;
    float* S = scratch;
    float* O = S + s.qBlock * s.kBlock;
    float* m = O + s.qBlock * s.Dv;
    float* l = m + s.qBlock;
    const float ninf = -std::numeric_limits<float>::infinity();
    std::fill(m, m + rows, ninf);
    std::fill(l, l + rows, 0.f);
    const int64_t b = bh / s.H, h = bh % s.H;
    const float* qh = Q + (bh * s.Sq + q0) * s.D;
    const float* kh = K + bh * s.Sk * s.D;
    const float* vh = V + bh * s.Sk * s.Dv;
    // Keys a causal row i may see: j <= i + (Sk - Sq). No row of this block sees past kEnd.
    const int64_t shift = s.Sk - s.Sq;
    const int64_t kEnd = causal_ ? std::clamp<int64_t>(q1 - 1 + shift + 1, 0, s.Sk) : s.Sk;
    bool first = true;
    for (int64_t k0 = 0; k0 < kEnd; k0 += s.kBlock) {
      const int64_t kb = std::min(s.kBlock, kEnd - k0);
      GemmArgs g;
      g.M = rows, g.N = kb, g.K = s.D;
      g.alpha = scale;
      g.A = GemmOperand::rowMajor(qh, s.D);
      g.B = GemmOperand::colMajor(kh + k0 * s.D, s.D);  // K_blk^T
      g.C = S;
      g.ldc = kb;
      sgemm(g, nullptr);
      for (int64_t r = 0; r < rows; r++) {
        float* row = S + r * kb;
        const int64_t qi = q0 + r;
        if (mask) {
          const float* mrow = mask + b * s.maskStride[0] + h * s.maskStride[1] + qi * s.maskStride[2] + k0 * s.maskStride[3];
          if (s.maskStride[3] == 1) {
            for (int64_t j = 0; j < kb; j++) row[j] += mrow[j];
          } else {
            for (int64_t j = 0; j < kb; j++) row[j] += mrow[j * s.maskStride[3]];
          }
        }
        if (causal_) {
          const int64_t allowed = qi + shift - k0 + 1;  // columns [0, allowed) of this block are visible
          for (int64_t j = std::max<int64_t>(0, allowed); j < kb; j++) row[j] = ninf;
        }
        // Online softmax update of row r.
        const float mx = std::max(m[r], rk.rowMax(row, kb));
        if (mx == ninf) {
          // Everything so far is masked: this block contributes nothing.
          std::fill(row, row + kb, 0.f);
          if (first) std::fill(O + r * s.Dv, O + (r + 1) * s.Dv, 0.f);
          continue;
        }
        const float rescale = m[r] == ninf ? 0.f : std::exp(m[r] - mx);
        l[r] = l[r] * rescale + rk.expShiftSum(row, kb, mx);
        if (!first && rescale != 1.f) rk.scale(O + r * s.Dv, s.Dv, rescale);
        m[r] = mx;
      }
      GemmArgs pv;
      pv.M = rows, pv.N = s.Dv, pv.K = kb;
      pv.A = GemmOperand::rowMajor(S, kb);
      pv.B = GemmOperand::rowMajor(vh + k0 * s.Dv, s.Dv);
      pv.beta = first ? 0.f : 1.f;
      pv.C = O;
      pv.ldc = s.Dv;
      sgemm(pv, nullptr);
      first = false;
    }
    float* yh = Y + (bh * s.Sq + q0) * s.Dv;
    for (int64_t r = 0; r < rows; r++) {
      float* yr = yh + r * s.Dv;
      if (first || l[r] == 0.f) {
        std::fill(yr, yr + s.Dv, 0.f);  // no visible key at all
        continue;
      }
      const float inv = 1.f / l[r];
      for (int64_t j = 0; j < s.Dv; j++) yr[j] = O[r * s.Dv + j] * inv;
    }
  }

  Node node_;  // a copy: the kernel may outlive the graph it was built from
  bool hasScale_ = false;
  float scale_ = 1.f;
  bool causal_ = false;
};

std::unique_ptr<Kernel> createAttention(const KernelCreateInfo& info) { return std::make_unique<AttentionKernel>(info); }

}  // namespace

KILN_REGISTER_KERNEL(Attention, (KernelDef{"cpu", "kiln", "Attention", 1, createAttention}));

}  // namespace kiln::cpu
