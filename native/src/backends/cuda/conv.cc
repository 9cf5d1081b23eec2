// Conv and kiln.FusedConv (bias, residual Z, activation) on cuDNN, NCHW, float32 or float16
// (float16 uses tensor cores with float32 accumulation; float32 stays on FMA math so results match
// the CPU reference). With a bias and ReLU (or no activation on the implicit-precomp algorithm)
// the whole epilogue runs inside cudnnConvolutionBiasActivationForward; otherwise the convolution
// is followed by one elementwise epilogue pass. The algorithm is chosen per input shape by timing
// cuDNN's candidates (cudnnFindConvolutionForwardAlgorithm) the first time a shape is seen, and
// cached in the kernel for every context. fp16 NHWC convolutions over few channels (an RGB stem)
// have more candidates, timed with the rest: input and weights zero-padded to 8 channels, and, for
// stride 2 over at most 4 channels, the space-to-depth rewrite (space_to_depth.h) into a stride-1
// convolution over 16 channels. Also MaxPool / AveragePool (2-D) on cuDNN pooling.
#include <cudnn.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "backends/cuda/cuda_common.h"
#include "backends/cuda/cuda_libraries.h"
#include "backends/cuda/cuda_ops.h"
#include "backends/cuda/gemm.h"
#include "backends/cuda/implicit_gemm_conv.h"
#include "backends/cuda/space_to_depth.h"
#include "backends/cuda/timing_cache.h"
#include "backends/cuda/tuning_kernels.h"
#include "ops/nn_geometry.h"

namespace kiln::cuda {
namespace {

constexpr size_t kMaxConvWorkspace = 256u << 20;
constexpr size_t kPointwiseGemmWorkspace = 32u << 20;

#define KILN_DNN_CHECK(expr)                                                                                  \
  do {                                                                                                        \
    cudnnStatus_t kiln_st = (expr);                                                                           \
    if (kiln_st != CUDNN_STATUS_SUCCESS)                                                                      \
      fail(ErrorCode::Internal, std::string("cuDNN error ") + cudnnGetErrorString(kiln_st) + " in " #expr);   \
  } while (0)

cudnnDataType_t dnnType(DType t) { return t == DType::Float16 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT; }

struct ConvDescs {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, bias = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  cudnnActivationDescriptor_t act = nullptr;
  ConvDescs() {
    cudnnCreateTensorDescriptor(&x);
    cudnnCreateTensorDescriptor(&y);
    cudnnCreateTensorDescriptor(&bias);
    cudnnCreateFilterDescriptor(&w);
    cudnnCreateConvolutionDescriptor(&conv);
    cudnnCreateActivationDescriptor(&act);
  }
  ~ConvDescs() {
    cudnnDestroyActivationDescriptor(act);
    cudnnDestroyConvolutionDescriptor(conv);
    cudnnDestroyFilterDescriptor(w);
    cudnnDestroyTensorDescriptor(bias);
    cudnnDestroyTensorDescriptor(y);
    cudnnDestroyTensorDescriptor(x);
  }
};

// How the input and weights are rewritten before the convolution proper.
enum class Prep {
  None,
  Pad8,  // widened to 8 channels (see padsChannels_)
  S2d,   // space-to-depth: a stride-1 convolution over 16 channels (see s2d_)
};

struct AlgoChoice {
  cudnnConvolutionFwdAlgo_t algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
  size_t workspace = 0;  // cuDNN's
  float ms = 0;          // including the rewrite of input and weights, for a padded or s2d choice
  // Input and weights widened to 8 channels first (see padsChannels_), or rewritten space-to-depth
  // (see s2d_): padBytes of scratch ahead of cuDNN's workspace.
  Prep prep = Prep::None;
  size_t padBytes = 0;
  int implicitTile = -1;  // >= 0: Kiln's implicit-GEMM kernel with this tile instead of cuDNN's algo
};

size_t align256(size_t n) { return (n + 255) / 256 * 256; }

// cudnnConvolutionBiasActivationForward on (default) or conv + Kiln's epilogue kernel
// (KILN_CUDNN_FUSED=0), for comparing the two on a GPU.
bool useFusedCall() {
  static const bool fused = [] {
    const char* v = std::getenv("KILN_CUDNN_FUSED");
    return v == nullptr || std::string(v) != "0";
  }();
  return fused;
}

class ConvKernel final : public CudaKernel {
 public:
  ConvKernel(const KernelCreateInfo& info, bool fused, bool nhwc = false) : CudaKernel(info), fused_(fused), nhwc_(nhwc) {
    if (!isFloatType(inputTypes_.at(0))) unsupported(std::string("type ") + dtypeName(inputTypes_[0]) + " (float32/float16 only)");
    if (fused_) act_ = readActivationAttrs(node_);
    group_ = node_.getInt("group", 1);
    tf32_ = node_.getInt("kiln_tf32", 0) != 0;
    // 1x1, stride 1, no padding, one group: a plain GEMM over the pixels (NHWC only).
    auto all = [&](const char* attr, int64_t v) {
      for (int64_t x : node_.getInts(attr)) {
        if (x != v) return false;
      }
      return true;
    };
    const SymShape& w = info.inputShapes.size() > 1 ? info.inputShapes[1] : SymShape{};
    pointwise_ = nhwc && group_ == 1 && w.isConcrete() && w.rank() == 4 && w.dims[1].value == 1 && w.dims[2].value == 1 &&
                 all("strides", 1) && all("pads", 0) && all("dilations", 1) && node_.getString("auto_pad", "NOTSET") != "SAME_LOWER";
    // cuDNN's float16 tensor-core kernels want channels in vectors of 8; an RGB stem (3 channels)
    // otherwise gets slow generic kernels (3.1 of ResNet-50's 9.6 ms at batch 256 on the H100).
    // Such a convolution is also timed with input and weights zero-padded to 8 channels.
    padsChannels_ = nhwc && !pointwise_ && group_ == 1 && inputTypes_[0] == DType::Float16 && w.isConcrete() &&
                    w.rank() == 4 && w.dims[3].value < 8;
    // Stride 2 over at most 4 channels (the ResNet stem: 7x7 over RGB) is also timed rewritten
    // space-to-depth, as NVIDIA's MLPerf ResNet does: each 2x2 block of input pixels becomes one
    // pixel of 16 channels and the weights [K,R,S,C] become [K,ceil(R/2),ceil(S/2),16], so the
    // convolution is a stride-1 one of a quarter of the positions over 16 channels, whose K is
    // 16 * ceil(R/2) * ceil(S/2) (256 for 7x7) instead of 8 * R * S (392) padded, and without the
    // padded input's reads of each pixel ~12 times. KILN_CUDA_CONV_S2D=off leaves it out (not
    // timed), =always takes it where it applies (default: timed against the other candidates).
    if (padsChannels_ && w.dims[3].value <= 4 && !envIs("KILN_CUDA_CONV_S2D", "off")) {
      const WindowParams p = readWindowParams(node_, 2, {w.dims[1].value, w.dims[2].value});
      s2d_ = p.strides == std::vector<int64_t>{2, 2} && p.dilations == std::vector<int64_t>{1, 1};
    }
    // Kiln's implicit GEMM (implicit_gemm_conv.cu) is timed too where its epilogue covers the
    // activation and its tiles the channels (whole 8-channel groups, or padded to 8 as above), when
    // KILN_CUDA_CONV_IMPLICIT=timed|always asks for it. Not by default: on the H100 it won the
    // build-time timing (zero-filled scratch, after a warm-up) against cudnnFind's times for most
    // ResNet-50 layers yet ran slower in the engine (b32 1.16 -> 1.86 ms, b256 7.77 -> 8.48 ms).
    const bool implicitWanted = envIs("KILN_CUDA_CONV_IMPLICIT", "timed") || envIs("KILN_CUDA_CONV_IMPLICIT", "always");
    implicitGemm_ = implicitWanted && nhwc && !pointwise_ && group_ == 1 && inputTypes_[0] == DType::Float16 && w.isConcrete() &&
                    w.rank() == 4 && w.dims[0].value % 8 == 0 && (w.dims[3].value % 8 == 0 || padsChannels_) &&
                    (act_.kind == Activation::None || act_.kind == Activation::Relu);
    // The space-to-depth stem is a different matter: 16 channels, a 4x4 stride-1 window, K = 256 in
    // four whole 64-element steps, 64 outputs: a shape the implicit GEMM tiles cover exactly and
    // cuDNN's kernels do not (0.80 ms for ResNet-50's stem at batch 256 on the H100, 130 TFLOP/s).
    // So it is timed there by default; KILN_CUDA_CONV_IMPLICIT=off leaves it to cuDNN.
    implicitForS2d_ = s2d_ && !envIs("KILN_CUDA_CONV_IMPLICIT", "off") &&
                      w.dims[0].value % 8 == 0 && (act_.kind == Activation::None || act_.kind == Activation::Relu);
  }
  ~ConvKernel() override {
    if (findHandle_) destroyCudnnHandle(findHandle_);
  }

  size_t workspaceBytes(const KernelContext& ctx) const override {
    if (pointwise_ && nhwc_) {
      tuneGemm(pointwisePlan(ctx), kPointwiseGemmWorkspace);
      return kPointwiseGemmWorkspace;
    }
    const size_t prep = std::max(prepBytes(ctx, padsChannels_ ? Prep::Pad8 : Prep::None),
                                 prepBytes(ctx, s2d_ ? Prep::S2d : Prep::None));
    const AlgoChoice c = choose(ctx, kMaxConvWorkspace + prep);
    return c.workspace + c.padBytes;
  }

  // A 1x1 stride-1 convolution in NHWC is a GEMM: [N*H*W, C] x [K, C]^T, with the bias, residual
  // (as C) and activation in cuBLASLt's epilogue.
  GemmCall pointwisePlan(const KernelContext& ctx) const {
    const Tensor& x = *ctx.inputs[0];
    const Tensor& y = *ctx.outputs[0];
    const bool hasBias = ctx.inputs.size() > 2 && ctx.inputs[2] != nullptr;
    const bool hasZ = fused_ && ctx.inputs.size() > 3 && ctx.inputs[3] != nullptr;
    GemmCall g;
    g.type = x.dtype;
    g.m = x.shape[0] * x.shape[1] * x.shape[2];
    g.k = x.shape[3];
    g.n = y.shape[3];
    g.transB = true;
    g.a = in(ctx, 0);
    g.b = in(ctx, 1);
    g.d = y.data;
    g.bias = hasBias ? in(ctx, 2) : nullptr;
    g.c = hasZ ? in(ctx, 3) : nullptr;
    g.hasC = hasZ;
    g.beta = 1.f;
    g.act = act_;
    g.tf32 = tf32_;
    return g;
  }

  void run(KernelContext& ctx) const override {
    const Tensor& x = *ctx.inputs[0];
    Tensor& y = *ctx.outputs[0];
    if (y.numel() == 0) return;
    // The 1x1 GEMM path first: it needs no cuDNN algorithm (looking one up here, during a CUDA
    // graph capture of a shape never timed before, would create a cuDNN handle inside the capture).
    if (pointwise_ && nhwc_) {
      runGemm(pointwisePlan(ctx), exec(ctx).cublasLt, exec(ctx).stream, ctx.workspace, ctx.workspaceSize);
      return;
    }
    AlgoChoice choice = choose(ctx, ctx.workspaceSize);
    const void* xData = in(ctx, 0);
    const void* wData = in(ctx, 1);
    void* workspace = ctx.workspace;
    if (choice.prep == Prep::Pad8) {
      const Tensor& w = *ctx.inputs[1];
      const int64_t c = x.shape[3];
      uint8_t* scratch = static_cast<uint8_t*>(ctx.workspace);
      launchPadChannelsTo8(xData, scratch, x.numel() / c, c, exec(ctx).stream);
      xData = scratch;
      scratch += align256(size_t(x.numel() / c) * 16);
      launchPadChannelsTo8(wData, scratch, w.numel() / c, c, exec(ctx).stream);
      wData = scratch;
      workspace = static_cast<uint8_t*>(ctx.workspace) + choice.padBytes;
    } else if (choice.prep == Prep::S2d) {
      // x' then W' in the scratch, both rewritten by one launch (the weights are a few KiB).
      S2dShapes s = s2dShapes(ctx);
      uint8_t* scratch = static_cast<uint8_t*>(ctx.workspace);
      s.x.src = xData;
      s.x.dst = scratch;
      s.w.src = wData;
      s.w.dst = scratch + align256(size_t(s.x.pixels()) * 32);
      launchSpaceToDepth16(s.x, &s.w, exec(ctx).stream);
      xData = s.x.dst;
      wData = s.w.dst;
      workspace = scratch + choice.padBytes;
    }
    const bool hasBias = ctx.inputs.size() > 2 && ctx.inputs[2] != nullptr;
    const bool hasZ = fused_ && ctx.inputs.size() > 3 && ctx.inputs[3] != nullptr;
    if (choice.implicitTile >= 0) {
      launchHalfConvImplicitGemm(choice.implicitTile, xData, wData, hasBias ? in(ctx, 2) : nullptr,
                                 hasZ ? in(ctx, 3) : nullptr, act_.kind == Activation::Relu, y.data,
                                 implicitGeometry(ctx, choice.prep), y.shape[3], exec(ctx).stream);
      return;
    }
    ConvDescs d;
    describe(ctx, d, choice.prep);
    cudnnHandle_t h = static_cast<cudnnHandle_t>(exec(ctx).cudnn);
    const bool fusedCall = useFusedCall() && hasBias && (act_.kind == Activation::Relu ||
                                       (act_.kind == Activation::None &&
                                        choice.algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM));
    const float one = 1.f, zero = 0.f;
    if (fusedCall) {
      const int64_t c = nhwc_ ? y.shape[3] : y.shape[1];
      // The bias descriptor has the rank of the convolution's descriptors: 5 for a 3-D convolution.
      const int rank = nhwc_ ? 4 : static_cast<int>(std::max<size_t>(y.shape.size(), 4));
      int dims[5] = {1, static_cast<int>(c), 1, 1, 1}, strides[5] = {static_cast<int>(c), 1, 1, 1, 1};
      KILN_DNN_CHECK(cudnnSetTensorNdDescriptor(d.bias, dnnType(y.dtype), rank, dims, strides));
      KILN_DNN_CHECK(cudnnSetActivationDescriptor(
          d.act, act_.kind == Activation::Relu ? CUDNN_ACTIVATION_RELU : CUDNN_ACTIVATION_IDENTITY, CUDNN_NOT_PROPAGATE_NAN, 0.0));
      const float alpha2 = hasZ ? 1.f : 0.f;
      const void* z = hasZ ? in(ctx, 3) : y.data;
      KILN_DNN_CHECK(cudnnConvolutionBiasActivationForward(h, &one, d.x, xData, d.w, wData, d.conv, choice.algo, workspace,
                                                           choice.workspace, &alpha2, d.y, z, d.bias, in(ctx, 2), d.act,
                                                           d.y, y.data));
      return;
    }
    KILN_DNN_CHECK(cudnnConvolutionForward(h, &one, d.x, xData, d.w, wData, d.conv, choice.algo, workspace, choice.workspace,
                                           &zero, d.y, y.data));
    int64_t inner = 1;
    for (size_t i = 2; i < y.shape.size() && !nhwc_; ++i) inner *= y.shape[i];
    launchEpilogue(y.data, hasBias ? in(ctx, 2) : nullptr, hasZ ? in(ctx, 3) : nullptr, y.dtype, y.numel(),
                   nhwc_ ? y.shape[3] : y.shape[1], inner, act_, exec(ctx).stream);
    (void)x;
  }

  // Which paths the timing picked over the shapes seen: cuDNN's and/or Kiln's implicit GEMM, and
  // whether on input and weights padded to 8 channels (_pad8) or rewritten space-to-depth (_s2d).
  std::string name() const override {
    if (pointwise_ && nhwc_) return "cuda.conv_nhwc.1x1_cublaslt";
    const std::string lib = fused_ ? "cudnn_fused" : "cudnn";
    const std::string paths = implicitUsed_ ? (cudnnUsed_ ? "implicit_gemm+" + lib : "implicit_gemm") : lib;
    return std::string(nhwc_ ? "cuda.conv_nhwc." : "cuda.conv.") + paths + (paddedUsed_ ? "_pad8" : "") +
           (s2dUsed_ ? "_s2d" : "");
  }

 private:
  // Scratch for the padded input and weights.
  size_t padBytes(const KernelContext& ctx) const {
    const int64_t c = ctx.inputs[0]->shape[3];
    return align256(size_t(ctx.inputs[0]->numel() / c) * 16) + align256(size_t(ctx.inputs[1]->numel() / c) * 16);
  }

  // The space-to-depth rewrite of this convolution (s2d_): x [N,H,W,C] -> x' [N,H',W',16] with
  //   x'[n,i,j,(dy*2+dx)*C+c] = xpad[n, 2i+dy, 2j+dx, c]   (xpad: x shifted by padTop/padLeft, zeros outside)
  // and W [K,R,S,C] -> W' [K,R',S',16], R' = ceil(R/2), S' = ceil(S/2), by the same map without pads:
  //   W'[k,a,b,(dy*2+dx)*C+c] = W[k, 2a+dy, 2b+dx, c]   (zero where 2a+dy >= R or 2b+dx >= S).
  // Writing r = 2a+dy, s = 2b+dx in y[n,oy,ox,k] = sum_{r,s,c} W[k,r,s,c] xpad[n, 2oy+r, 2ox+s, c]
  // gives xpad[n, 2(oy+a)+dy, 2(ox+b)+dx, c] = x'[n, oy+a, ox+b, (dy*2+dx)*C+c], so
  //   y[n,oy,ox,k] = sum_{a,b,ch} W'[k,a,b,ch] x'[n, oy+a, ox+b, ch],
  // a stride-1, pad-0 convolution; the taps r >= R (odd R) have zero weights. H' = OH + R' - 1 rows
  // make its output exactly OH rows (no crop): at most ceil((H + padTop + padBottom) / 2), so x'
  // covers every padded row a real tap reads, and the bottom/right pads need no parameter (rows
  // past the input read as zeros). Likewise W'.
  struct S2dShapes {
    SpaceToDepthJob x, w;  // src/dst left null
  };
  S2dShapes s2dShapes(const KernelContext& ctx) const {
    const Shape& xs = ctx.inputs[0]->shape;
    const Shape& ws = ctx.inputs[1]->shape;
    const Shape& ys = ctx.outputs[0]->shape;
    const Im2ColGeometry g = nhwcWindowGeometry(node_, xs, ys, {ws[1], ws[2]});
    S2dShapes s;
    s.w.n = ws[0];
    s.w.h = int(ws[1]), s.w.w = int(ws[2]), s.w.c = int(ws[3]);
    s.w.outH = int((ws[1] + 1) / 2), s.w.outW = int((ws[2] + 1) / 2);
    s.x.n = xs[0];
    s.x.h = int(xs[1]), s.x.w = int(xs[2]), s.x.c = int(xs[3]);
    s.x.padTop = g.padH, s.x.padLeft = g.padW;
    s.x.outH = int(ys[1]) + s.w.outH - 1, s.x.outW = int(ys[2]) + s.w.outW - 1;
    return s;
  }

  // Scratch for the rewritten input and weights (16-byte pixels for Pad8, 32-byte for S2d).
  size_t prepBytes(const KernelContext& ctx, Prep prep) const {
    if (prep == Prep::Pad8) return padBytes(ctx);
    if (prep == Prep::None) return 0;
    const S2dShapes s = s2dShapes(ctx);
    return align256(size_t(s.x.pixels()) * 32) + align256(size_t(s.w.pixels()) * 32);
  }

  // The implicit GEMM's view of this convolution (weights [K, R*S*C] as OHWI rows).
  Im2ColGeometry implicitGeometry(const KernelContext& ctx, Prep prep) const {
    const Shape& w = ctx.inputs[1]->shape;
    Im2ColGeometry g = nhwcWindowGeometry(node_, ctx.inputs[0]->shape, ctx.outputs[0]->shape, {w[1], w[2]});
    if (prep == Prep::Pad8) g.c = 8;
    if (prep == Prep::S2d) {
      const S2dShapes s = s2dShapes(ctx);
      g.h = s.x.outH, g.w = s.x.outW, g.c = 16;
      g.r = s.w.outH, g.s = s.w.outW;
      g.strideH = g.strideW = 1, g.padH = g.padW = 0, g.dilH = g.dilW = 1;
    }
    g.kPad = int64_t(g.r) * g.s * g.c;
    return g;
  }

  // prep: the input and weights as widened to 8 channels or rewritten space-to-depth (NHWC only).
  void describe(const KernelContext& ctx, ConvDescs& d, Prep prep = Prep::None) const {
    const Tensor& x = *ctx.inputs[0];
    const Tensor& w = *ctx.inputs[1];
    const Tensor& y = *ctx.outputs[0];
    const cudnnDataType_t dt = dnnType(x.dtype);
    if (nhwc_) {
      // X [N,H,W,C], W [K,R,S,C/g], Y [N,H',W',K]: cuDNN takes logical NCHW dims plus the format.
      std::vector<int64_t> kernel = {w.shape[1], w.shape[2]};
      WindowParams p = readWindowParams(node_, 2, kernel);
      int pads[2], strides[2], dil[2];
      for (size_t i = 0; i < 2; ++i) {
        WindowDim wd = forwardWindowDim(node_, p, i, x.shape[1 + i]);
        if (wd.padBegin != wd.padEnd) unsupported("asymmetric padding");
        pads[i] = static_cast<int>(wd.padBegin);
        strides[i] = static_cast<int>(p.strides[i]);
        dil[i] = static_cast<int>(p.dilations[i]);
      }
      // Input [N,h,wd,c] and filter [K,r,s,wc] as cuDNN sees them (wc = c / group).
      int c = prep == Prep::Pad8 ? 8 : int(x.shape[3]), wc = prep == Prep::Pad8 ? 8 : int(w.shape[3]), h = int(x.shape[1]),
          wd = int(x.shape[2]), r = int(w.shape[1]), s = int(w.shape[2]);
      if (prep == Prep::S2d) {
        const S2dShapes s2 = s2dShapes(ctx);
        c = wc = 16, h = s2.x.outH, wd = s2.x.outW, r = s2.w.outH, s = s2.w.outW;
        pads[0] = pads[1] = 0, strides[0] = strides[1] = 1, dil[0] = dil[1] = 1;
      }
      KILN_DNN_CHECK(cudnnSetTensor4dDescriptor(d.x, CUDNN_TENSOR_NHWC, dt, int(x.shape[0]), c, h, wd));
      KILN_DNN_CHECK(cudnnSetTensor4dDescriptor(d.y, CUDNN_TENSOR_NHWC, dt, int(y.shape[0]), int(y.shape[3]), int(y.shape[1]), int(y.shape[2])));
      KILN_DNN_CHECK(cudnnSetFilter4dDescriptor(d.w, dt, CUDNN_TENSOR_NHWC, int(w.shape[0]), wc, r, s));
      KILN_DNN_CHECK(cudnnSetConvolution2dDescriptor(d.conv, pads[0], pads[1], strides[0], strides[1], dil[0], dil[1],
                                                     CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
      KILN_DNN_CHECK(cudnnSetConvolutionGroupCount(d.conv, static_cast<int>(group_)));
      KILN_DNN_CHECK(cudnnSetConvolutionMathType(d.conv, mathType(x.dtype)));
      return;
    }
    const size_t spatial = x.shape.size() - 2;
    if (spatial < 1 || spatial > 3) unsupported("Conv with " + std::to_string(spatial) + " spatial dims");
    std::vector<int64_t> kernel(w.shape.begin() + 2, w.shape.end());
    WindowParams p = readWindowParams(node_, spatial, kernel);
    // cuDNN wants at least 2 spatial dims: a 1-D conv is a 2-D conv of height 1.
    const size_t nd = std::max<size_t>(spatial, 2);
    std::vector<int> pads(nd, 0), strides(nd, 1), dil(nd, 1);
    for (size_t i = 0; i < spatial; ++i) {
      WindowDim wd = forwardWindowDim(node_, p, i, x.shape[2 + i]);
      if (wd.padBegin != wd.padEnd) unsupported("asymmetric padding");
      const size_t at = nd - spatial + i;
      pads[at] = static_cast<int>(wd.padBegin);
      strides[at] = static_cast<int>(p.strides[i]);
      dil[at] = static_cast<int>(p.dilations[i]);
    }
    auto dims4 = [&](const Shape& s) {
      std::vector<int> out;
      out.push_back(static_cast<int>(s[0]));
      out.push_back(static_cast<int>(s[1]));
      if (spatial < nd) out.push_back(1);
      for (size_t i = 2; i < s.size(); ++i) out.push_back(static_cast<int>(s[i]));
      return out;
    };
    auto packed = [](const std::vector<int>& dims) {
      std::vector<int> st(dims.size(), 1);
      for (int i = static_cast<int>(dims.size()) - 2; i >= 0; --i) st[i] = st[i + 1] * dims[i + 1];
      return st;
    };
    std::vector<int> xd = dims4(x.shape), yd = dims4(y.shape), wd = dims4(w.shape);
    KILN_DNN_CHECK(cudnnSetTensorNdDescriptor(d.x, dt, static_cast<int>(xd.size()), xd.data(), packed(xd).data()));
    KILN_DNN_CHECK(cudnnSetTensorNdDescriptor(d.y, dt, static_cast<int>(yd.size()), yd.data(), packed(yd).data()));
    KILN_DNN_CHECK(cudnnSetFilterNdDescriptor(d.w, dt, CUDNN_TENSOR_NCHW, static_cast<int>(wd.size()), wd.data()));
    KILN_DNN_CHECK(cudnnSetConvolutionNdDescriptor(d.conv, static_cast<int>(nd), pads.data(), strides.data(), dil.data(),
                                                   CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    KILN_DNN_CHECK(cudnnSetConvolutionGroupCount(d.conv, static_cast<int>(group_)));
    KILN_DNN_CHECK(cudnnSetConvolutionMathType(d.conv, mathType(x.dtype)));
  }

  // The fastest measured algorithm whose workspace fits `limit`. Candidates are timed once per
  // layer signature and shape (timing_cache.h) and kept fastest first.
  AlgoChoice choose(const KernelContext& ctx, size_t limit) const {
    const std::vector<AlgoChoice>& candidates = measured(ctx);
    // KILN_CUDA_CONV_PAD=always|never overrides the timing for padded candidates (and leaves the
    // space-to-depth ones out: it picks one of the two channel-padding paths),
    // KILN_CUDA_CONV_S2D=always for space-to-depth (over PAD) and KILN_CUDA_CONV_IMPLICIT=always for
    // the implicit GEMM (tests, A/B runs).
    const bool padAlways = padsChannels_ && envIs("KILN_CUDA_CONV_PAD", "always"), padNever = envIs("KILN_CUDA_CONV_PAD", "never");
    const bool s2dAlways = envIs("KILN_CUDA_CONV_S2D", "always") &&
                           std::any_of(candidates.begin(), candidates.end(), [](const AlgoChoice& c) { return c.prep == Prep::S2d; });
    const bool implicitAlways = envIs("KILN_CUDA_CONV_IMPLICIT", "always") &&
                                std::any_of(candidates.begin(), candidates.end(), [&](const AlgoChoice& c) {
                                  return c.implicitTile >= 0 && (c.prep == Prep::S2d || !s2dAlways);
                                });
    const bool implicitNever = envIs("KILN_CUDA_CONV_IMPLICIT", "never");
    for (const AlgoChoice& c : candidates) {
      const bool s2d = c.prep == Prep::S2d, padded = c.prep == Prep::Pad8;
      if (s2d ? !s2dAlways && (padAlways || padNever) : s2dAlways) continue;
      if (!s2d && ((padAlways && !padded) || (padNever && padded))) continue;
      if ((implicitAlways && c.implicitTile < 0) || (implicitNever && c.implicitTile >= 0)) continue;
      if (c.workspace + c.padBytes <= limit) {
        if (padded) paddedUsed_ = true;
        if (s2d) s2dUsed_ = true;
        (c.implicitTile >= 0 ? implicitUsed_ : cudnnUsed_) = true;
        return c;
      }
    }
    fail(ErrorCode::UnsupportedOp, "node '" + node_.name + "': no cuDNN convolution algorithm fits " +
                                       std::to_string(limit) + " bytes of workspace");
  }

  const std::vector<AlgoChoice>& measured(const KernelContext& ctx) const {
    const Tensor& x = *ctx.inputs[0];
    // "conv_nhwc2": entries carry the implicit-GEMM tile (older caches never timed it).
    std::string key = std::string(nhwc_ ? "conv_nhwc2|" : "conv|") + deviceKey() + "|" + dtypeName(x.dtype) + shapeToString(x.shape) +
                      shapeToString(ctx.inputs[1]->shape) + shapeToString(ctx.outputs[0]->shape) + "|g" +
                      std::to_string(group_) + (tf32_ ? "|tf32" : "") + (implicitGemm_ ? "|implicit" : "") +
                      (s2d_ ? (implicitForS2d_ ? "|s2d+implicit" : "|s2d") : "");
    for (const char* attr : {"pads", "strides", "dilations"}) {
      for (int64_t v : node_.getInts(attr)) key += "," + std::to_string(v);
      key += ";";
    }
    key += node_.getString("auto_pad", "NOTSET");
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = choices_.find(key);
    if (it != choices_.end()) return it->second;
    std::vector<AlgoChoice> list;
    if (std::optional<std::string> cached = timingCacheGet(key)) {
      size_t at = 0;
      while (at < cached->size()) {
        size_t end = cached->find(';', at);
        if (end == std::string::npos) end = cached->size();
        AlgoChoice c;
        unsigned long long mem = 0;
        int algo = 0, padded = 0, tile = -1, s2d = 0;
        if (std::sscanf(cached->substr(at, end - at).c_str(), "%d,%llu,%f,%d,%d,%d", &algo, &mem, &c.ms, &padded, &tile,
                        &s2d) >= 3 &&
            (padded == 0 || padsChannels_) && (s2d == 0 || (s2d_ && padded == 0)) &&
            (tile < 0 || ((implicitGemm_ || (implicitForS2d_ && s2d != 0)) && tile < kImplicitGemmTiles))) {
          c.algo = static_cast<cudnnConvolutionFwdAlgo_t>(algo);
          c.workspace = mem;
          c.prep = s2d != 0 ? Prep::S2d : padded != 0 ? Prep::Pad8 : Prep::None;
          c.implicitTile = tile;
          c.padBytes = prepBytes(ctx, c.prep);
          list.push_back(c);
        }
        at = end + 1;
      }
    }
    if (list.empty()) {
      if (!findHandle_) findHandle_ = createCudnnHandle(nullptr);
      cudnnHandle_t h = static_cast<cudnnHandle_t>(findHandle_);
      std::string value;
      std::vector<Prep> preps = {Prep::None};
      if (padsChannels_) preps.push_back(Prep::Pad8);
      if (s2d_) preps.push_back(Prep::S2d);
      for (Prep prep : preps) {
        ConvDescs d;
        describe(ctx, d, prep);
        cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
        int found = 0;
        // Timed: cuDNN runs every candidate on scratch buffers it allocates itself, fastest first.
        const cudnnStatus_t status =
            cudnnFindConvolutionForwardAlgorithm(h, d.x, d.w, d.conv, d.y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &found, perf);
        if (status != CUDNN_STATUS_SUCCESS) {
          if (prep != Prep::None) continue;  // the unpadded candidates stand
          fail(ErrorCode::Internal, std::string("cuDNN error ") + cudnnGetErrorString(status) +
                                        " in cudnnFindConvolutionForwardAlgorithm for " + key);
        }
        const float prepMs = timePrep(ctx, prep);
        for (int i = 0; i < found; ++i) {
          if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > kMaxConvWorkspace) continue;
          AlgoChoice c{perf[i].algo, perf[i].memory, perf[i].time + prepMs};
          c.prep = prep;
          c.padBytes = prepBytes(ctx, prep);
          list.push_back(c);
        }
      }
      retimeCudnn(ctx, h, list);
      if (implicitGemm_) timeImplicitGemm(ctx, list, padsChannels_ ? Prep::Pad8 : Prep::None);
      if (implicitGemm_ || implicitForS2d_) {
        if (s2d_) timeImplicitGemm(ctx, list, Prep::S2d);
      }
      KILN_CHECK(!list.empty(), UnsupportedOp, "node '" + node_.name + "': cuDNN found no convolution algorithm for " + key);
      sortFastestFirst(list);
      for (const AlgoChoice& c : list) {
        value += std::to_string(int(c.algo)) + "," + std::to_string(c.workspace) + "," + std::to_string(c.ms) + "," +
                 std::to_string(c.prep == Prep::Pad8 ? 1 : 0) + "," + std::to_string(c.implicitTile) + "," +
                 std::to_string(c.prep == Prep::S2d ? 1 : 0) +
                 ";";
      }
      timingCachePut(key, value);
    }
    // Cached lists are stored fastest first; sorted again all the same, so that an engine loaded
    // from a cache written in another order picks what the build timed fastest (the padded and
    // unpadded and space-to-depth candidates are timed in groups).
    sortFastestFirst(list);
    return choices_.emplace(key, std::move(list)).first->second;
  }

  static void sortFastestFirst(std::vector<AlgoChoice>& list) {
    std::stable_sort(list.begin(), list.end(), [](const AlgoChoice& a, const AlgoChoice& b) { return a.ms < b.ms; });
  }

  // cudnnFindConvolutionForwardAlgorithm times each algorithm once: for kernels of tens of
  // microseconds its order changed from build to build (ResNet-50 b1 and b32 engines of one commit
  // ran 0.35 or 0.56 ms, and 1.14 or 1.47 ms, by which 3x3 algorithms it happened to rank first).
  // Each cuDNN candidate is timed again here as the engine runs it: the best of three timings of
  // three runs after a warm-up, on pseudo-random data in buffers of the engine's shapes.
  void retimeCudnn(const KernelContext& ctx, cudnnHandle_t h, std::vector<AlgoChoice>& list) const {
    const Tensor& xt = *ctx.inputs[0];
    const Tensor& wt = *ctx.inputs[1];
    const Tensor& yt = *ctx.outputs[0];
    if (xt.dtype != DType::Float16 && xt.dtype != DType::Float32) return;
    const size_t e = dtypeSize(xt.dtype);
    cudaStream_t stream;
    KILN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    cudaEvent_t start, stop;
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
    cudnnSetStream(h, stream);
    for (Prep prep : {Prep::None, Prep::Pad8, Prep::S2d}) {
      size_t workspace = 0;
      bool any = false;
      for (const AlgoChoice& c : list) {
        if (c.implicitTile < 0 && c.prep == prep) any = true, workspace = std::max(workspace, c.workspace);
      }
      if (!any) continue;
      int64_t xCount = xt.numel(), wCount = wt.numel();
      if (prep == Prep::Pad8) xCount = xCount / xt.shape.back() * 8, wCount = wCount / wt.shape.back() * 8;
      if (prep == Prep::S2d) {
        const S2dShapes s2 = s2dShapes(ctx);
        xCount = s2.x.pixels() * 16, wCount = s2.w.pixels() * 16;
      }
      ConvDescs d;
      describe(ctx, d, prep);
      std::shared_ptr<void> x = deviceAlloc(size_t(xCount) * e), w = deviceAlloc(size_t(wCount) * e),
                            y = deviceAlloc(size_t(yt.numel()) * e), ws = deviceAlloc(std::max<size_t>(workspace, 1));
      fillTuningPattern(x.get(), xt.dtype, xCount, 31, stream);
      fillTuningPattern(w.get(), xt.dtype, wCount, 32, stream);
      const float prepMs = timePrep(ctx, prep);
      const float one = 1.f, zero = 0.f;
      for (AlgoChoice& c : list) {
        if (c.implicitTile >= 0 || c.prep != prep) continue;
        auto launch = [&] {
          return cudnnConvolutionForward(h, &one, d.x, x.get(), d.w, w.get(), d.conv, c.algo, ws.get(), c.workspace, &zero,
                                         d.y, y.get());
        };
        if (launch() != CUDNN_STATUS_SUCCESS) continue;  // keeps cudnnFind's time
        float best = 1e30f;
        for (int rep = 0; rep < 3; ++rep) {
          cudaEventRecord(start, stream);
          for (int r = 0; r < 3; ++r) launch();
          cudaEventRecord(stop, stream);
          cudaEventSynchronize(stop);
          float ms = 0;
          cudaEventElapsedTime(&ms, start, stop);
          best = std::min(best, ms / 3);
        }
        c.ms = best + prepMs;
      }
    }
    cudnnSetStream(h, nullptr);
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    cudaStreamSynchronize(stream);
    cudaStreamDestroy(stream);
    cudaGetLastError();
  }

  // Adds Kiln's implicit GEMM, one candidate per tile, timed on scratch buffers (3 runs after a
  // warm-up; a padded or space-to-depth candidate's time includes the rewrite).
  void timeImplicitGemm(const KernelContext& ctx, std::vector<AlgoChoice>& list, Prep prep) const {
    const Im2ColGeometry g = implicitGeometry(ctx, prep);
    const int64_t kOut = ctx.outputs[0]->shape[3], m = g.n * g.oh * g.ow;
    if (!implicitGemmConvSupported(g, kOut, DType::Float16)) return;
    const bool hasBias = ctx.inputs.size() > 2 && ctx.inputs[2] != nullptr;
    const bool hasZ = ctx.inputs.size() > 3 && ctx.inputs[3] != nullptr;
    const size_t xBytes = size_t(g.n * g.h * g.w * g.c) * 2, wBytes = size_t(kOut * g.kPad) * 2, yBytes = size_t(m * kOut) * 2;
    std::shared_ptr<void> x = deviceAlloc(xBytes), w = deviceAlloc(wBytes), bias = deviceAlloc(size_t(kOut) * 2),
                          z = deviceAlloc(yBytes), y = deviceAlloc(yBytes);
    const float prepMs = timePrep(ctx, prep);
    cudaStream_t stream;
    KILN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    // Data like a model's, not zeros: tensor cores on zeros draw less power and clock higher, which
    // made this kernel look faster at build time than it ran in engines.
    uint32_t seed = 11;
    for (const auto& [buffer, bytes] : {std::pair{&x, xBytes}, {&w, wBytes}, {&bias, size_t(kOut) * 2}, {&z, yBytes}})
      fillTuningPattern(buffer->get(), DType::Float16, int64_t(bytes / 2), seed++, stream);
    cudaEvent_t start, stop;
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
    const int forced = forcedImplicitGemmTile();
    for (int tile = 0; tile < kImplicitGemmTiles; ++tile) {
      if (forced >= 0 && tile != forced) continue;
      auto launch = [&] {
        launchHalfConvImplicitGemm(tile, x.get(), w.get(), hasBias ? bias.get() : nullptr, hasZ ? z.get() : nullptr,
                                   act_.kind == Activation::Relu, y.get(), g, kOut, stream);
      };
      try {
        launch();
        cudaEventRecord(start, stream);
        for (int r = 0; r < 3; ++r) launch();
        cudaEventRecord(stop, stream);
      } catch (const KilnError&) {
        cudaGetLastError();  // a tile that cannot launch here is not a candidate
        continue;
      }
      if (cudaEventSynchronize(stop) != cudaSuccess) continue;
      float ms = 0;
      cudaEventElapsedTime(&ms, start, stop);
      AlgoChoice c;
      c.implicitTile = tile;
      c.ms = ms / 3 + prepMs;
      c.prep = prep;
      c.padBytes = prepBytes(ctx, prep);
      list.push_back(c);
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    cudaStreamDestroy(stream);
  }

  // What rewriting the input and weights (widened to 8 channels, or space-to-depth) costs per run,
  // as run() launches it (median of 3, scratch buffers).
  float timePrep(const KernelContext& ctx, Prep prep) const {
    if (prep == Prep::None) return 0.f;
    const int64_t c = ctx.inputs[0]->shape[3];
    const size_t xBytes = size_t(ctx.inputs[0]->numel()) * 2, wBytes = size_t(ctx.inputs[1]->numel()) * 2;
    const size_t xOut = prep == Prep::Pad8 ? align256(xBytes / 2 / c * 16) : align256(size_t(s2dShapes(ctx).x.pixels()) * 32);
    std::shared_ptr<void> x = deviceAlloc(xBytes), w = deviceAlloc(wBytes), y = deviceAlloc(prepBytes(ctx, prep));
    KILN_CUDA_CHECK(cudaMemset(x.get(), 0, xBytes));
    KILN_CUDA_CHECK(cudaMemset(w.get(), 0, wBytes));
    uint8_t* xDst = static_cast<uint8_t*>(y.get());
    uint8_t* wDst = xDst + xOut;
    S2dShapes s;
    if (prep == Prep::S2d) {
      s = s2dShapes(ctx);
      s.x.src = x.get(), s.x.dst = xDst, s.w.src = w.get(), s.w.dst = wDst;
    }
    cudaStream_t stream;
    KILN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    cudaEvent_t start, stop;
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
    std::vector<float> times;
    for (int r = 0; r < 4; ++r) {
      cudaEventRecord(start, stream);
      if (prep == Prep::Pad8) {
        launchPadChannelsTo8(x.get(), xDst, int64_t(xBytes / 2) / c, c, stream);
        launchPadChannelsTo8(w.get(), wDst, int64_t(wBytes / 2) / c, c, stream);
      } else {
        launchSpaceToDepth16(s.x, &s.w, stream);
      }
      cudaEventRecord(stop, stream);
      cudaEventSynchronize(stop);
      float ms = 0;
      cudaEventElapsedTime(&ms, start, stop);
      if (r > 0) times.push_back(ms);  // the first is a warm-up
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    cudaStreamDestroy(stream);
    std::sort(times.begin(), times.end());
    return times[1];
  }

  // fp16: tensor cores; fp32: FMA (results match the CPU reference) unless the build allows TF32.
  cudnnMathType_t mathType(DType t) const {
    if (t == DType::Float16) return CUDNN_TENSOR_OP_MATH;
    return tf32_ ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
  }

  bool fused_, nhwc_, pointwise_ = false, tf32_ = false, padsChannels_ = false, implicitGemm_ = false, s2d_ = false,
       implicitForS2d_ = false;
  mutable bool paddedUsed_ = false, s2dUsed_ = false, implicitUsed_ = false, cudnnUsed_ = false;
  int64_t group_ = 1;
  ActivationParams act_;
  mutable std::mutex mutex_;
  mutable std::map<std::string, std::vector<AlgoChoice>> choices_;
  mutable void* findHandle_ = nullptr;
};

class PoolKernel final : public CudaKernel {
 public:
  PoolKernel(const KernelCreateInfo& info, bool max, bool nhwc = false) : CudaKernel(info), max_(max), nhwc_(nhwc) {
    if (!isFloatType(inputTypes_.at(0))) unsupported(std::string("type ") + dtypeName(inputTypes_[0]));
    if (info.node.outputs.size() > 1 && info.node.outputs[1] != kNoValue) unsupported("MaxPool indices output");
    // Checked here too when the shapes are known, so that a pooling cuDNN cannot express becomes a
    // host layer instead of failing at the first run.
    const SymShape& xs = info.inputShapes.at(0);
    if (xs.hasRank && xs.rank() != 4) unsupported("pooling other than 2-D");
    if (xs.isConcrete() && !info.outputShapes.empty() && info.outputShapes[0].isConcrete())
      windows(xs.concrete(), info.outputShapes[0].concrete());
    // fp16 NHWC max pooling over whole 8-channel vectors runs on Kiln's kernel (launchMaxPoolHalf8)
    // unless KILN_CUDA_POOL=cudnn; it falls back to cuDNN for tensors past its 32-bit indexing.
    vectorized_ = max_ && nhwc_ && inputTypes_[0] == DType::Float16 && xs.hasRank && xs.rank() == 4 &&
                  xs.dims[3].isKnown() && xs.dims[3].value % 8 == 0 && !envIs("KILN_CUDA_POOL", "cudnn");
  }
  struct Windows {
    int win[2], pad[2], stride[2];
  };
  // cuDNN's 2-D pooling window for these shapes, or UnsupportedOp.
  Windows windows(const Shape& x, const Shape& y) const {
    if (x.size() != 4) unsupported("pooling other than 2-D");
    std::vector<int64_t> kernel = node_.getInts("kernel_shape");
    if (kernel.size() != 2) unsupported("pooling other than 2-D");
    WindowParams p = readWindowParams(node_, 2, kernel);
    Windows w;
    const size_t sp = nhwc_ ? 1 : 2;  // first spatial dim
    for (size_t i = 0; i < 2; ++i) {
      WindowDim wd = forwardWindowDim(node_, p, i, x[sp + i]);
      if (p.dilations[i] != 1) unsupported("dilated pooling");
      w.win[i] = static_cast<int>(p.kernel[i]);
      w.stride[i] = static_cast<int>(p.strides[i]);
      w.pad[i] = static_cast<int>(wd.padBegin);
      // cuDNN floors; the ONNX output (ceil_mode, asymmetric pads) must be what that gives.
      if ((x[sp + i] + 2 * wd.padBegin - p.kernel[i]) / p.strides[i] + 1 != y[sp + i])
        unsupported("pooling windows cuDNN cannot express (ceil_mode or asymmetric pads)");
    }
    return w;
  }
  void run(KernelContext& ctx) const override {
    const Tensor& x = *ctx.inputs[0];
    const Tensor& y = *ctx.outputs[0];
    const Windows w = windows(x.shape, y.shape);
    if (vectorized_) {
      const std::vector<int64_t> kernel = node_.getInts("kernel_shape");
      if (launchMaxPoolHalf8(in(ctx, 0), y.data, nhwcWindowGeometry(node_, x.shape, y.shape, kernel), exec(ctx).stream))
        return;
    }
    const int* win = w.win;
    const int* pad = w.pad;
    const int* stride = w.stride;
    cudnnPoolingMode_t mode = max_ ? CUDNN_POOLING_MAX
                                   : (node_.getInt("count_include_pad", 0) ? CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING
                                                                           : CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING);
    cudnnPoolingDescriptor_t pd;
    cudnnTensorDescriptor_t xd, yd;
    cudnnCreatePoolingDescriptor(&pd);
    cudnnCreateTensorDescriptor(&xd);
    cudnnCreateTensorDescriptor(&yd);
    auto cleanup = [&] {
      cudnnDestroyTensorDescriptor(yd);
      cudnnDestroyTensorDescriptor(xd);
      cudnnDestroyPoolingDescriptor(pd);
    };
    try {
      KILN_DNN_CHECK(cudnnSetPooling2dDescriptor(pd, mode, CUDNN_NOT_PROPAGATE_NAN, win[0], win[1], pad[0], pad[1], stride[0], stride[1]));
      const cudnnDataType_t dt = dnnType(x.dtype);
      if (nhwc_) {
        KILN_DNN_CHECK(cudnnSetTensor4dDescriptor(xd, CUDNN_TENSOR_NHWC, dt, int(x.shape[0]), int(x.shape[3]), int(x.shape[1]), int(x.shape[2])));
        KILN_DNN_CHECK(cudnnSetTensor4dDescriptor(yd, CUDNN_TENSOR_NHWC, dt, int(y.shape[0]), int(y.shape[3]), int(y.shape[1]), int(y.shape[2])));
      } else {
        KILN_DNN_CHECK(cudnnSetTensor4dDescriptor(xd, CUDNN_TENSOR_NCHW, dt, int(x.shape[0]), int(x.shape[1]), int(x.shape[2]), int(x.shape[3])));
        KILN_DNN_CHECK(cudnnSetTensor4dDescriptor(yd, CUDNN_TENSOR_NCHW, dt, int(y.shape[0]), int(y.shape[1]), int(y.shape[2]), int(y.shape[3])));
      }
      const float one = 1.f, zero = 0.f;
      KILN_DNN_CHECK(cudnnPoolingForward(static_cast<cudnnHandle_t>(exec(ctx).cudnn), pd, &one, xd, in(ctx, 0), &zero, yd, y.data));
    } catch (...) {
      cleanup();
      throw;
    }
    cleanup();
  }
  std::string name() const override {
    return std::string(max_ ? "cuda.maxpool" : "cuda.avgpool") + (nhwc_ ? "_nhwc" : "") +
           (vectorized_ ? ".vec8" : ".cudnn");
  }

 private:
  bool max_, nhwc_;
  bool vectorized_ = false;
};

std::unique_ptr<Kernel> makeConv(const KernelCreateInfo& i) { return std::make_unique<ConvKernel>(i, false); }
std::unique_ptr<Kernel> makeFusedConv(const KernelCreateInfo& i) { return std::make_unique<ConvKernel>(i, true); }
std::unique_ptr<Kernel> makeMaxPool(const KernelCreateInfo& i) { return std::make_unique<PoolKernel>(i, true); }
std::unique_ptr<Kernel> makeAvgPool(const KernelCreateInfo& i) { return std::make_unique<PoolKernel>(i, false); }
std::unique_ptr<Kernel> makeConvNhwc(const KernelCreateInfo& i) { return std::make_unique<ConvKernel>(i, true, true); }
std::unique_ptr<Kernel> makeMaxPoolNhwc(const KernelCreateInfo& i) { return std::make_unique<PoolKernel>(i, true, true); }
std::unique_ptr<Kernel> makeAvgPoolNhwc(const KernelCreateInfo& i) { return std::make_unique<PoolKernel>(i, false, true); }

}  // namespace

KILN_REGISTER_KERNEL(CudaConv, (KernelDef{"cuda", "", "Conv", 1, makeConv}));
KILN_REGISTER_KERNEL(CudaFusedConv, (KernelDef{"cuda", "kiln", "FusedConv", 1, makeFusedConv}));
KILN_REGISTER_KERNEL(CudaMaxPool, (KernelDef{"cuda", "", "MaxPool", 1, makeMaxPool}));
KILN_REGISTER_KERNEL(CudaAveragePool, (KernelDef{"cuda", "", "AveragePool", 1, makeAvgPool}));
KILN_REGISTER_KERNEL(CudaConvNHWC, (KernelDef{"cuda", "kiln", "CudaConvNHWC", 1, makeConvNhwc}));
KILN_REGISTER_KERNEL(CudaMaxPoolNHWC, (KernelDef{"cuda", "kiln", "CudaMaxPoolNHWC", 1, makeMaxPoolNhwc}));
KILN_REGISTER_KERNEL(CudaAveragePoolNHWC, (KernelDef{"cuda", "kiln", "CudaAveragePoolNHWC", 1, makeAvgPoolNhwc}));

}  // namespace kiln::cuda
