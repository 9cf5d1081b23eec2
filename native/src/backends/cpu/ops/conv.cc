// CPU kernels of Conv and kiln.FusedConv (bias, residual Z, activation fused into the GEMM
// epilogue). Per image and group the convolution is Y_g[Mg, pixels] = W_g[Mg, Cg*k] x col[Cg*k, pixels]
// with the weights packed once at creation. Tactics, chosen per run from the concrete shapes:
//  - pointwise: 1x1 kernel, stride 1, no padding: col is the input itself, no im2col at all;
//  - depthwise: one input and one output channel per group (1-D/2-D): conv_depthwise.cc;
//  - im2col: 1-D/2-D im2col by whole output-row segments, in L2-sized column chunks spread over
//    threads (or, for few chunks, one whole im2col and a threaded GEMM); the SGEMM packs its B
//    panels from the chunk while it is in L2;
//  - im2col N-D: the same with the general any-rank im2col.
// Schemas: ops/nn_conv.cc (Conv), ops/fused.cc (FusedConv).
#include <algorithm>
#include <memory>

#include "backends/cpu/ops/conv_depthwise.h"
#include "backends/cpu/ops/conv_im2col.h"
#include "backends/cpu/ops/gemm_common.h"

namespace kiln::cpu {
namespace {

using namespace nn;

enum class Tactic { Pointwise, Depthwise, Im2col2d, Im2colNd };

const char* tacticName(Tactic t) {
  switch (t) {
    case Tactic::Pointwise: return "pointwise_sgemm";
    case Tactic::Depthwise: return "depthwise_direct";
    case Tactic::Im2col2d: return "im2col_sgemm";
    case Tactic::Im2colNd: return "im2col_nd_sgemm";
  }
  return "?";
}

// Target bytes of one im2col chunk: it and the packed weights' current slice share L2.
constexpr int64_t kChunkBytes = 192 * 1024;
// Weights of one group above this are not L2-resident across chunks; chunks then span at least
// kMinColsBigWeights output pixels.
constexpr int64_t kWeightL2Bytes = 256 * 1024;
constexpr int64_t kMinColsBigWeights = 128;

// Everything a run needs, derived from the concrete input shapes.
struct ConvPlan {
  int64_t N = 0, C = 0, M = 0, G = 1, Cg = 0, Mg = 0, Kg = 0;
  ConvGeometry geo;
  Shape yShape;
  Tactic tactic = Tactic::Im2col2d;
  int slots = 1;           // concurrent workers with their own scratch
  int64_t chunkCols = 0;   // output pixels per im2col chunk (chunked mode)
  bool chunked = false;    // tasks = (image, group, chunk), single-threaded GEMMs
  int64_t slotFloats = 0;  // scratch floats per slot
};

class ConvKernel final : public Kernel {
 public:
  ConvKernel(const KernelCreateInfo& info, bool fused) : node_(info.node), fused_(fused) {
    const DType t = info.inputTypes.size() > 0 ? info.inputTypes[0] : DType::Undefined;
    requireComputeFloat(node_, t, "input X");
    if (info.inputTypes.size() < 2 || info.inputTypes[1] != t) {
      failAt(node_, ErrorCode::DTypeMismatch, "inputs X and W must have the same type");
    }
    group_ = node_.getInt("group", 1);
    if (group_ < 1) failAt(node_, ErrorCode::InvalidModel, "group must be >= 1");
    if (fused_) activation_ = readActivation(node_);
    const Tensor* w = info.constantInputs.size() > 1 ? info.constantInputs[1] : nullptr;
    if (w && w->shape.size() >= 3 && w->shape[0] % group_ == 0) {
      weightShape_ = w->shape;
      weights_.resize(size_t(w->numel()));
      loadFloats(w->data, w->dtype, weights_.data(), w->numel());
      const int64_t Mg = w->shape[0] / group_, Kg = w->numel() / std::max<int64_t>(1, w->shape[0]);
      // Depthwise filters are used as they are; everything else goes through packed GEMM panels.
      if (Kg > 0 && !(Mg == 1 && w->shape[1] == 1 && w->shape.size() <= 4)) {
        for (int64_t g = 0; g < group_; g++) {
          packed_.push_back(PackedMatrix::pack(PackedMatrix::Side::A, weights_.data() + g * Mg * Kg, Mg, Kg, Kg, 1));
        }
        // The packed panels are the only copy the GEMM reads: keep one.
        weights_.clear();
        weights_.shrink_to_fit();
      }
    }
    const Tensor* b = info.constantInputs.size() > 2 ? info.constantInputs[2] : nullptr;
    if (b && isComputeFloat(b->dtype)) {
      bias_.resize(size_t(b->numel()));
      loadFloats(b->data, b->dtype, bias_.data(), b->numel());
    }
    // The tactic for the build report, when the shapes are already known.
    if (info.inputShapes.size() > 1 && info.inputShapes[0].isConcrete() && info.inputShapes[1].isConcrete()) {
      tacticHint_ = tacticName(plan(info.inputShapes[0].concrete(), info.inputShapes[1].concrete(), &ThreadPool::global()).tactic);
    }
  }

  size_t workspaceBytes(const KernelContext& ctx) const override {
    const Tensor* x = inputShapeOf(ctx, 0);
    const Tensor* w = inputShapeOf(ctx, 1);
    if (!x || !w) return 0;
    ConvPlan p = plan(x->shape, w->shape, computePool(ctx));
    return size_t(p.slots * p.slotFloats) * sizeof(float) + 64 * size_t(p.slots);
  }

  void run(KernelContext& ctx) const override {
    const Tensor& x = requiredInput(ctx, 0, "X");
    const Tensor& w = requiredInput(ctx, 1, "W");
    if (x.dtype != w.dtype) failAt(node_, ErrorCode::DTypeMismatch, "inputs X and W must have the same type");
    ThreadPool* pool = computePool(ctx);
    const ConvPlan p = plan(x.shape, w.shape, pool);
    Tensor& y = requiredOutput(ctx, 0, x.dtype, p.yShape);
    if (y.numel() == 0) return;
    if (ctx.workspaceSize < size_t(p.slots * p.slotFloats) * sizeof(float)) {
      failAt(node_, ErrorCode::Internal, "workspace too small for the conv plan");
    }

    // Bias and residual (FusedConv's Z) are epilogue inputs.
    const Tensor* b = optionalInput(ctx, 2);
    FloatView bView;
    const float* bias = nullptr;
    if (b) {
      if (b->numel() != p.M) {
        failAt(node_, ErrorCode::ShapeMismatch, "bias B " + shapeToString(b->shape) + " must have " +
                                                      std::to_string(p.M) + " values (the output channels of W " +
                                                      shapeToString(w.shape) + ")");
      }
      if (b->dtype != x.dtype) failAt(node_, ErrorCode::DTypeMismatch, "bias B type differs from X");
      if (!bias_.empty() && int64_t(bias_.size()) == p.M) {
        bias = bias_.data();
      } else {
        bView = FloatView(*b);
        bias = bView.data();
      }
    }
    const Tensor* z = fused_ ? optionalInput(ctx, 3) : nullptr;
    FloatView zView;
    if (z) {
      if (z->shape != p.yShape) {
        failAt(node_, ErrorCode::ShapeMismatch, "residual Z " + shapeToString(z->shape) + " must have the output shape " +
                                                      shapeToString(p.yShape));
      }
      if (z->dtype != x.dtype) failAt(node_, ErrorCode::DTypeMismatch, "residual Z type differs from X");
      zView = FloatView(*z);
    }
    const bool usePacked = !packed_.empty() && w.shape == weightShape_;
    const bool useWeights = !weights_.empty() && w.shape == weightShape_;
    FloatView wView;
    if (!useWeights && !usePacked) wView = FloatView(w);
    const float* wData = useWeights ? weights_.data() : wView.data();
    FloatView xView(x);
    FloatSink sink(y);
    Epilogue ep{bias, z ? zView.data() : nullptr, activation_};

    float* ws = static_cast<float*>(ctx.workspace);
    switch (p.tactic) {
      case Tactic::Depthwise:
        runDepthwise(p, xView.data(), wData, ep, sink.data(), ws, pool);
        break;
      case Tactic::Pointwise:
      case Tactic::Im2col2d:
      case Tactic::Im2colNd:
        runGemm(p, xView.data(), wData, usePacked, ep, sink.data(), ws, pool);
        break;
    }
    sink.commit();
  }

  std::string name() const override {
    return std::string(fused_ ? "fused_conv." : "conv.") + (tacticHint_.empty() ? "" : tacticHint_ + ".") + sgemmTactic() +
           (packed_.empty() ? "" : ".prepacked");
  }

 private:
  struct Epilogue {
    const float* bias;
    const float* residual;
    ActivationSpec act;
  };

  ConvPlan plan(const Shape& x, const Shape& w, ThreadPool* pool) const {
    ConvPlan p;
    if (x.size() < 3) failAt(node_, ErrorCode::ShapeMismatch, "input X " + shapeToString(x) + " must be at least 3-D [N, C, spatial...]");
    if (w.size() != x.size()) {
      failAt(node_, ErrorCode::ShapeMismatch, "weight W " + shapeToString(w) + " must have the rank of X " + shapeToString(x));
    }
    p.N = x[0];
    p.C = x[1];
    p.M = w[0];
    p.G = group_;
    if (p.C % p.G != 0 || p.M % p.G != 0 || w[1] * p.G != p.C) {
      failAt(node_, ErrorCode::ShapeMismatch, "input X " + shapeToString(x) + " has " + std::to_string(p.C) +
                                                    " channels but W " + shapeToString(w) + " with group " +
                                                    std::to_string(p.G) + " expects " + std::to_string(w[1] * p.G));
    }
    p.Cg = p.C / p.G;
    p.Mg = p.M / p.G;
    ConvGeometry& g = p.geo;
    g.rank = x.size() - 2;
    const std::vector<int64_t> kernel(w.begin() + 2, w.end());
    WindowParams wp = readWindowParams(node_, g.rank, kernel);
    p.yShape = {p.N, p.M};
    for (size_t d = 0; d < g.rank; d++) {
      WindowDim r = forwardWindowDim(node_, wp, d, x[d + 2]);
      checkedProduct(node_, g.outPixels, r.out, "the output");
      g.in.push_back(x[d + 2]);
      g.out.push_back(r.out);
      g.padBegin.push_back(r.padBegin);
      g.inPixels *= x[d + 2];
      g.outPixels *= r.out;
      g.kernelSize *= kernel[d];
      p.yShape.push_back(r.out);
    }
    g.kernel = wp.kernel;
    g.strides = wp.strides;
    g.dilations = wp.dilations;
    p.Kg = p.Cg * g.kernelSize;
    const int threads = pool ? pool->size() : 1;

    bool pointwise = g.kernelSize == 1;
    for (size_t d = 0; d < g.rank; d++) pointwise &= g.strides[d] == 1 && g.padBegin[d] == 0 && g.out[d] == g.in[d];
    if (pointwise) {
      p.tactic = Tactic::Pointwise;
      return p;
    }
    if (p.Cg == 1 && p.Mg == 1 && g.rank <= 2) {
      p.tactic = Tactic::Depthwise;
      p.slots = threads;
      const Depthwise2d d = depthwise2d(g);
      checkedProduct(node_, checkedProduct(node_, d.ph, d.pw, "the padded plane") + d.OH * d.OW, kDepthwiseBlock,
                     "the depthwise scratch");
      p.slotFloats = (depthwiseScratchFloats(g) + 15) / 16 * 16;
      return p;
    }
    p.tactic = g.rank <= 2 ? Tactic::Im2col2d : Tactic::Im2colNd;
    // Chunks of output pixels (whole NR panels) whose im2col fits the L2 budget. Every chunk
    // streams all of W_g once, so when W_g itself is too big for L2 a chunk must be wide enough to
    // amortise reading it from L3.
    p.chunkCols = std::max<int64_t>(kGemmNR, kChunkBytes / int64_t(sizeof(float)) / std::max<int64_t>(1, p.Kg) /
                                                 kGemmNR * kGemmNR);
    if (p.Mg * p.Kg * int64_t(sizeof(float)) > kWeightL2Bytes) p.chunkCols = std::max(p.chunkCols, kMinColsBigWeights);
    const int64_t chunks = (g.outPixels + p.chunkCols - 1) / p.chunkCols;
    p.chunked = p.N * p.G * chunks >= 2 * threads;
    const int64_t cols = p.chunked ? std::min(p.chunkCols, g.outPixels) : g.outPixels;
    p.slots = p.chunked ? threads : 1;
    p.slotFloats = (checkedProduct(node_, p.Kg, cols, "the im2col buffer") + 15) / 16 * 16;  // 64-byte aligned slots
    return p;
  }

  // One GEMM: Y[n, g*Mg.., pixels p0..p1) = W_g x col, with the epilogue.
  void gemmBlock(const ConvPlan& p, int64_t n, int64_t g, int64_t p0, int64_t p1, GemmOperand colOperand,
                 const float* wData, bool usePacked, const Epilogue& ep, float* y, ThreadPool* pool) const {
    GemmArgs a;
    a.M = p.Mg;
    a.N = p1 - p0;
    a.K = p.Kg;
    a.A = usePacked ? GemmOperand::prepacked(packed_[size_t(g)].get()) : GemmOperand::rowMajor(wData + g * p.Mg * p.Kg, p.Kg);
    a.B = colOperand;
    const int64_t outOffset = (n * p.M + g * p.Mg) * p.geo.outPixels + p0;
    a.C = y + outOffset;
    a.ldc = p.geo.outPixels;
    a.epilogue.rowBias = ep.bias ? ep.bias + g * p.Mg : nullptr;
    if (ep.residual) {
      a.epilogue.residual = ep.residual + outOffset;
      a.epilogue.residualRowStride = p.geo.outPixels;
    }
    a.epilogue.activation = ep.act;
    sgemm(a, pool);
  }

  void runGemm(const ConvPlan& p, const float* x, const float* wData, bool usePacked, const Epilogue& ep, float* y,
               float* ws, ThreadPool* pool) const {
    const ConvGeometry& geo = p.geo;
    auto imageGroup = [&](int64_t n, int64_t g) { return x + (n * p.C + g * p.Cg) * geo.inPixels; };
    if (p.tactic == Tactic::Pointwise) {
      for (int64_t n = 0; n < p.N; n++) {
        for (int64_t g = 0; g < p.G; g++) {
          gemmBlock(p, n, g, 0, geo.outPixels, GemmOperand::rowMajor(imageGroup(n, g), geo.inPixels), wData, usePacked, ep,
                    y, pool);
        }
      }
      return;
    }
    // The im2col of (n, g, pixels [p0, p1)) into dst with leading dimension ld.
    auto im2col = [&](int64_t n, int64_t g, int64_t p0, int64_t p1, float* dst, int64_t ld) {
      if (p.tactic == Tactic::Im2col2d) im2colRowMajor2d(imageGroup(n, g), p.Cg, geo, p0, p1, dst, ld);
      else im2colRowMajor(imageGroup(n, g), p.Cg, geo, p0, p1, dst, ld);
    };
    if (p.chunked) {
      const int64_t chunks = (geo.outPixels + p.chunkCols - 1) / p.chunkCols;
      parallelForSlots(pool, p.N * p.G * chunks, p.slots, [&](int64_t task, int slot) {
        const int64_t chunk = task % chunks, ng = task / chunks;
        const int64_t n = ng / p.G, g = ng % p.G;
        const int64_t p0 = chunk * p.chunkCols, p1 = std::min(geo.outPixels, p0 + p.chunkCols);
        float* col = ws + slot * p.slotFloats;
        im2col(n, g, p0, p1, col, p1 - p0);
        gemmBlock(p, n, g, p0, p1, GemmOperand::rowMajor(col, p1 - p0), wData, usePacked, ep, y, nullptr);
      });
      return;
    }
    // Few chunks: the whole im2col once (column ranges split across threads), then a threaded GEMM.
    for (int64_t n = 0; n < p.N; n++) {
      for (int64_t g = 0; g < p.G; g++) {
        pool->parallelFor(geo.outPixels, 64, [&](int64_t q0, int64_t q1) { im2col(n, g, q0, q1, ws + q0, geo.outPixels); });
        gemmBlock(p, n, g, 0, geo.outPixels, GemmOperand::rowMajor(ws, geo.outPixels), wData, usePacked, ep, y, pool);
      }
    }
  }

  void runDepthwise(const ConvPlan& p, const float* x, const float* wData, const Epilogue& ep, float* y, float* ws,
                    ThreadPool* pool) const {
    const ConvGeometry& geo = p.geo;
    const int64_t blocks = (p.C + kDepthwiseBlock - 1) / kDepthwiseBlock;
    parallelForSlots(pool, p.N * blocks, p.slots, [&](int64_t task, int slot) {
      const int64_t n = task / blocks, c = (task % blocks) * kDepthwiseBlock;
      const int64_t plane = n * p.C + c;
      DepthwiseBlock b;
      b.x = x + plane * geo.inPixels;
      b.w = wData + c * geo.kernelSize;
      b.bias = ep.bias ? ep.bias + c : nullptr;
      b.residual = ep.residual ? ep.residual + plane * geo.outPixels : nullptr;
      b.y = y + plane * geo.outPixels;
      b.channels = int(std::min<int64_t>(kDepthwiseBlock, p.C - c));
      depthwiseConvBlock(geo, b, ep.act, ws + slot * p.slotFloats);
    });
  }

  Node node_;  // a copy: the kernel may outlive the graph it was built from
  bool fused_;
  int64_t group_ = 1;
  ActivationSpec activation_;
  Shape weightShape_;
  std::vector<float> weights_;  // constant W as float32 (depthwise only; GEMM tactics keep packed_)
  std::vector<float> bias_;     // constant B as float32
  std::vector<std::shared_ptr<PackedMatrix>> packed_;  // per group
  std::string tacticHint_;
};

std::unique_ptr<Kernel> createConv(const KernelCreateInfo& info) { return std::make_unique<ConvKernel>(info, false); }
std::unique_ptr<Kernel> createFusedConv(const KernelCreateInfo& info) { return std::make_unique<ConvKernel>(info, true); }

}  // namespace

KILN_REGISTER_KERNEL(Conv, (KernelDef{"cpu", "", "Conv", 1, createConv}));
KILN_REGISTER_KERNEL(FusedConv, (KernelDef{"cpu", "kiln", "FusedConv", 1, createFusedConv}));

}  // namespace kiln::cpu
