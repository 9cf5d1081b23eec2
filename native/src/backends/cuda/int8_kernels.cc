// The INT8 layers the INT8 lowering (int8_lowering.cc) produces, with their schemas:
//
// kiln.CudaQuantize        X float16/float32 -> int8, attr scale: q = clamp(round(x / scale), +-127).
// kiln.CudaDequantize      X int8 -> float (attr to: 10 float16, 1 float32), attr scale.
// kiln.CudaQuantizeSpaceToDepth  X float16 [N,H,W,C] (C <= 4), or float32 [N,C,H,W] with attr
//                          nchw 1 (the model's input, read in place of its kiln.CudaCastToNhwc)
//                          -> int8 [N,H',W',16]: the input of a
//                          stride-2 convolution (attrs kernel_shape [R,S] and pads [top, left,
//                          bottom, right] are that convolution's) rewritten space-to-depth
//                          (space_to_depth.h) and quantized as kiln.CudaQuantize does (attr scale),
//                          H' = OH + ceil(R/2) - 1 for the convolution's OH (W' likewise): the input
//                          of its stride-1, pad-0 INT8 twin over 16 channels (int8_lowering.cc).
//                          Attr taps T > 1 packs each pixel's row of T taps: [N,H',W'-T+1,16T],
//                          y[n,i,j,16t+c] = x'[n,i,j+t,c] (the input of an R' x 1 twin).
// kiln.CudaConvInt8NHWC    X int8 [N,H,W,C], W int8 [K, Kpad] (rows: the OHWI filter flattened
//                          (r, s, c), zero-padded to Kpad), Alpha float32 [K], Bias float32 [K],
//                          Z int8 [N,H',W',K]? -> Y int8 [N,H',W',K] =
//                          q(act(alpha[k] * sum(x * w) + bias[k] + beta * z)). Attrs kernel_shape,
//                          strides, pads, dilations, beta, relu. Alpha already folds the input,
//                          per-channel weight and output scales; Bias is divided by the output scale.
//                          With a fused 1x1 shortcut (a ResNet downsample; inputs 5 X2 int8
//                          [N,H2,W2,C2] and 6 Ratio float32 [K], attr shortcut_stride, no Z): W's rows
//                          end with the shortcut's C2 bytes, and Y = q(act(alpha[k] * (rint(ratio[k] *
//                          sum(x * w)) + sum(x2 * w2)) + bias[k])), alpha and bias the shortcut's
//                          scale (ratio takes the main product into it) and both biases.
// kiln.CudaMaxPoolInt8NHWC MaxPool (2-D) on int8 [N,H,W,C], the scale unchanged.
//
// The convolution is a GEMM over the output pixels, chosen by timing per geometry among:
// - Kiln's implicit GEMM (implicit_gemm_conv.cu): patches gathered straight from X into shared memory, int8
//   tensor-core products, the per-channel scale, bias, residual and ReLU applied to the int32
//   accumulators in registers, int8 out; no workspace. Needs C % 16 == 0 and K % 8 == 0. On the H100
//   its tiles include Hopper wgmma kernels (wgmma_conv.cu) besides the mma.sync ones.
// - cuBLASLt's integer tensor-core GEMMs (IMMA): a 1x1 stride-1 convolution reads X directly as the
//   [N*H*W, C] matrix, others first gather their patches (im2col, int8) into the workspace; the
//   epilogue is fused into cuBLASLt's with int8 output where it offers that (alpha as a device
//   vector), or runs as one requantizing pass over int32 accumulators.
// KILN_CUDA_INT8_CONV=implicit|cublaslt restricts the choice to one of the two (tests, A/B runs).
#include <cublasLt.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "backends/cuda/cuda_common.h"
#include "backends/cuda/cuda_libraries.h"
#include "backends/cuda/implicit_gemm_conv.h"
#include "backends/cuda/int8_ops.h"
#include "backends/cuda/space_to_depth.h"
#include "backends/cuda/timing_cache.h"
#include "backends/cuda/tuning_kernels.h"
#include "graph/fused_ops.h"
#include "ops/nn_geometry.h"
#include "ops/schema.h"

namespace kiln::cuda {
namespace {

constexpr size_t kLtWorkspace = 8u << 20;

#define KILN_LT8_CHECK(expr)                                                                                  \
  do {                                                                                                        \
    cublasStatus_t kiln_st = (expr);                                                                          \
    if (kiln_st != CUBLAS_STATUS_SUCCESS)                                                                     \
      fail(ErrorCode::Internal, std::string("cuBLASLt error ") + std::to_string(int(kiln_st)) + " in " #expr); \
  } while (0)

size_t align256(size_t n) { return (n + 255) / 256 * 256; }

// ---- schemas ---------------------------------------------------------------------------------

void inferQuantize(InferContext& ctx) { ctx.setOutput(0, DType::Int8, ctx.inputShapes[0]); }
void inferDequantize(InferContext& ctx) {
  ctx.setOutput(0, ctx.node.getInt("to", 10) == 1 ? DType::Float32 : DType::Float16, ctx.inputShapes[0]);
}

// H' (or W') of kiln.CudaQuantizeSpaceToDepth for an input extent: the stride-2 convolution's
// output extent plus ceil(kernel / 2) - 1 (space_to_depth.h).
int64_t spaceToDepthExtent(int64_t in, int64_t kernel, int64_t padBegin, int64_t padEnd) {
  return (in + padBegin + padEnd - kernel) / 2 + 1 + (kernel + 1) / 2 - 1;
}

void inferQuantizeSpaceToDepth(InferContext& ctx) {
  const bool nchw = ctx.node.getInt("nchw", 0) != 0;
  if (ctx.inputTypes[0] != (nchw ? DType::Float32 : DType::Float16))
    ctx.error(nchw ? "X must be float32 (nchw 1)" : "X must be float16");
  const SymShape& in = ctx.inputShapes[0];
  if (!in.hasRank || in.rank() != 4) ctx.error(nchw ? "expects X [N,C,H,W]" : "expects X [N,H,W,C]");
  SymShape x = in;  // as [N,H,W,C]
  if (nchw) x.dims = {in.dims[0], in.dims[2], in.dims[3], in.dims[1]};
  const std::vector<int64_t> kernel = ctx.node.getInts("kernel_shape");
  const std::vector<int64_t> pads = ctx.node.getInts("pads", {0, 0, 0, 0});
  if (kernel.size() != 2 || pads.size() != 4 || kernel[0] < 1 || kernel[1] < 1)
    ctx.error("expects kernel_shape [R,S] and pads [top, left, bottom, right]");
  if (x.dims[3].isKnown() && (x.dims[3].value < 1 || x.dims[3].value > 4)) ctx.error("takes 1 to 4 channels");
  const int64_t taps = ctx.node.getInt("taps", 1);
  if (taps < 1 || taps > 8) ctx.error("taps must be 1 to 8");
  SymShape out;
  out.hasRank = true;
  out.dims = {x.dims[0], Dim{}, Dim{}, Dim::known(16 * taps)};
  for (size_t i = 0; i < 2; ++i) {
    const Dim& in = x.dims[1 + i];
    if (!in.isKnown()) {
      out.dims[1 + i] = ctx.freshDim();
      continue;
    }
    if (in.value + pads[i] + pads[i + 2] < kernel[i]) ctx.error("the padded input is smaller than the kernel");
    const int64_t extent = spaceToDepthExtent(in.value, kernel[i], pads[i], pads[i + 2]) - (i == 1 ? taps - 1 : 0);
    if (extent < 1) ctx.error("the space-to-depth input is narrower than its taps");
    out.dims[1 + i] = Dim::known(extent);
  }
  ctx.setOutput(0, DType::Int8, out);
}

SymShape windowOut(InferContext& ctx, const std::vector<int64_t>& kernel, const Dim& channels) {
  const SymShape& x = ctx.inputShapes[0];
  if (!x.hasRank || x.rank() != 4) ctx.error("expects X [N,H,W,C]");
  SymShape out;
  out.hasRank = true;
  out.dims = {x.dims[0], Dim{}, Dim{}, channels};
  WindowParams p = readWindowParams(ctx.node, 2, kernel);
  for (size_t i = 0; i < 2; ++i) {
    const Dim& in = x.dims[1 + i];
    out.dims[1 + i] = in.isKnown() ? Dim::known(forwardWindowDim(ctx.node, p, i, in.value).out) : ctx.freshDim();
  }
  return out;
}

void inferConvInt8(InferContext& ctx) {
  if (ctx.inputTypes[0] != DType::Int8 || ctx.inputTypes[1] != DType::Int8) ctx.error("X and W must be int8");
  if (ctx.inputTypes.size() > 5 && ctx.inputTypes[5] != DType::Int8) ctx.error("the shortcut's X2 must be int8");
  const SymShape& w = ctx.inputShapes[1];
  if (!w.hasRank || w.rank() != 2 || !w.isConcrete()) ctx.error("expects a constant W [K, Kpad]");
  ctx.setOutput(0, DType::Int8, windowOut(ctx, ctx.node.getInts("kernel_shape"), Dim::known(w.concrete()[0])));
}

void inferMaxPoolInt8(InferContext& ctx) {
  const SymShape& x = ctx.inputShapes[0];
  if (!x.hasRank || x.rank() != 4) ctx.error("expects X [N,H,W,C]");
  ctx.setOutput(0, DType::Int8, windowOut(ctx, ctx.node.getInts("kernel_shape"), x.dims[3]));
}

// ---- kernels ---------------------------------------------------------------------------------

class QuantizeKernel final : public CudaKernel {
 public:
  explicit QuantizeKernel(const KernelCreateInfo& info) : CudaKernel(info) {
    if (!isFloatType(inputTypes_.at(0))) unsupported("quantizes float16/float32 only");
    inv_ = 1.f / node_.getFloat("scale", 1.f);
  }
  void run(KernelContext& ctx) const override {
    launchQuantize(in(ctx, 0), ctx.inputs[0]->dtype, static_cast<int8_t*>(ctx.outputs[0]->data), ctx.outputs[0]->numel(),
                   inv_, exec(ctx).stream);
  }
  std::string name() const override { return "cuda.quantize_int8"; }

 private:
  float inv_ = 1.f;
};

class DequantizeKernel final : public CudaKernel {
 public:
  explicit DequantizeKernel(const KernelCreateInfo& info) : CudaKernel(info) {
    if (inputTypes_.at(0) != DType::Int8) unsupported("dequantizes int8 only");
    scale_ = node_.getFloat("scale", 1.f);
  }
  void run(KernelContext& ctx) const override {
    Tensor& y = *ctx.outputs[0];
    launchDequantize(static_cast<const int8_t*>(in(ctx, 0)), y.data, y.dtype, y.numel(), scale_, exec(ctx).stream);
  }
  std::string name() const override { return "cuda.dequantize_int8"; }

 private:
  float scale_ = 1.f;
};


class QuantizeSpaceToDepthKernel final : public CudaKernel {
 public:
  explicit QuantizeSpaceToDepthKernel(const KernelCreateInfo& info) : CudaKernel(info) {
    nchw_ = node_.getInt("nchw", 0) != 0;
    if (inputTypes_.at(0) != (nchw_ ? DType::Float32 : DType::Float16))
      unsupported(nchw_ ? "reads float32 NCHW only" : "quantizes float16 only");
    inv_ = 1.f / node_.getFloat("scale", 1.f);
    const std::vector<int64_t> pads = node_.getInts("pads", {0, 0, 0, 0});
    if (pads.size() != 4) unsupported("pads [top, left, bottom, right] expected");
    padTop_ = static_cast<int>(pads[0]), padLeft_ = static_cast<int>(pads[1]);
    taps_ = static_cast<int>(node_.getInt("taps", 1));
  }
  void run(KernelContext& ctx) const override {
    const Shape& x = ctx.inputs[0]->shape;
    const Shape& y = ctx.outputs[0]->shape;
    SpaceToDepthJob job;
    job.src = in(ctx, 0);
    job.dst = ctx.outputs[0]->data;
    job.n = x[0];
    if (nchw_)
      job.c = static_cast<int>(x[1]), job.h = static_cast<int>(x[2]), job.w = static_cast<int>(x[3]);
    else
      job.h = static_cast<int>(x[1]), job.w = static_cast<int>(x[2]), job.c = static_cast<int>(x[3]);
    job.padTop = padTop_, job.padLeft = padLeft_;
    job.outH = static_cast<int>(y[1]), job.outW = static_cast<int>(y[2]);
    job.taps = taps_;
    launchSpaceToDepthInt8(job, inv_, exec(ctx).stream, nchw_);
  }
  std::string name() const override { return nchw_ ? "cuda.quantize_int8_s2d_nchw" : "cuda.quantize_int8_s2d"; }

 private:
  bool nchw_ = false;
  float inv_ = 1.f;
  int padTop_ = 0, padLeft_ = 0, taps_ = 1;
};

class MaxPoolInt8Kernel final : public CudaKernel {
 public:
  explicit MaxPoolInt8Kernel(const KernelCreateInfo& info) : CudaKernel(info) {}
  void run(KernelContext& ctx) const override {
    Im2ColGeometry g = nhwcWindowGeometry(node_, ctx.inputs[0]->shape, ctx.outputs[0]->shape, node_.getInts("kernel_shape"));
    launchMaxPoolInt8(static_cast<const int8_t*>(in(ctx, 0)), static_cast<int8_t*>(ctx.outputs[0]->data), g,
                      exec(ctx).stream);
  }
  std::string name() const override { return "cuda.maxpool_nhwc.int8"; }
};

struct LtInt8 {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr, z = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  ~LtInt8() {
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (z) cublasLtMatrixLayoutDestroy(z);
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

// Row-major Y[M,N] = X[M,K] W[N,K]^T as the column-major Y^T = W X^T: "TN", what IMMA wants.
// fused: int8 output with alpha as a device vector over N (per output channel), bias and ReLU in
// the epilogue and Z as C (beta on the host). Otherwise int32 output (alpha 1, beta 0).
void describeInt8(LtInt8& d, int64_t m, int64_t n, int64_t k, bool fused, bool relu, bool hasZ, const void* bias) {
  const cublasOperation_t opA = CUBLAS_OP_T, opB = CUBLAS_OP_N;
  KILN_LT8_CHECK(cublasLtMatmulDescCreate(&d.op, CUBLAS_COMPUTE_32I, fused ? CUDA_R_32F : CUDA_R_32I));
  KILN_LT8_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSA, &opA, sizeof(opA)));
  KILN_LT8_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSB, &opB, sizeof(opB)));
  if (fused) {
    cublasLtPointerMode_t mode = hasZ ? CUBLASLT_POINTER_MODE_ALPHA_DEVICE_VECTOR_BETA_HOST
                                      : CUBLASLT_POINTER_MODE_ALPHA_DEVICE_VECTOR_BETA_ZERO;
    KILN_LT8_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_POINTER_MODE, &mode, sizeof(mode)));
    cublasLtEpilogue_t epi = relu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
    KILN_LT8_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
    KILN_LT8_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
    cudaDataType_t biasType = CUDA_R_32F;
    KILN_LT8_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &biasType, sizeof(biasType)));
  }
  KILN_LT8_CHECK(cublasLtMatrixLayoutCreate(&d.a, CUDA_R_8I, k, n, k));
  KILN_LT8_CHECK(cublasLtMatrixLayoutCreate(&d.b, CUDA_R_8I, k, m, k));
  KILN_LT8_CHECK(cublasLtMatrixLayoutCreate(&d.c, fused ? CUDA_R_8I : CUDA_R_32I, n, m, n));
  KILN_LT8_CHECK(cublasLtMatmulPreferenceCreate(&d.pref));
  uint64_t ws = kLtWorkspace;
  KILN_LT8_CHECK(cublasLtMatmulPreferenceSetAttribute(d.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
}

struct Int8Choice {
  int implicitTile = -1;  // >= 0: Kiln's implicit-GEMM kernel with this tile (implicit_gemm_conv.cu)
  bool fused = false;
  bool dp4a = false;  // no cuBLASLt algorithm: Kiln's dp4a GEMM
  cublasLtMatmulAlgo_t algo{};
  size_t workspace = 0;  // bytes this path needs
  float ms = 0;          // timed
};

// KILN_CUDA_INT8_CONV=implicit|cublaslt restricts the timing to one family (tests, A/B runs).
enum class Int8ConvFamily { Any, Implicit, CublasLt };
Int8ConvFamily int8ConvFamily() {
  const char* v = std::getenv("KILN_CUDA_INT8_CONV");
  if (v && std::string(v) == "implicit") return Int8ConvFamily::Implicit;
  if (v && std::string(v) == "cublaslt") return Int8ConvFamily::CublasLt;
  return Int8ConvFamily::Any;
}

// The stream and events a layer's candidates are timed on; on its way out it waits for the stream,
// releases them and clears the error a refused candidate left (it must not poison later checks).
// Declared after the scratch buffers the launches use, so it goes first.
class LaunchTimer {
 public:
  LaunchTimer() {
    KILN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    cudaEventCreate(&start_);
    cudaEventCreate(&stop_);
  }
  ~LaunchTimer() {
    cudaStreamSynchronize(stream_);
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
    cudaStreamDestroy(stream_);
    cudaGetLastError();
  }
  LaunchTimer(const LaunchTimer&) = delete;
  LaunchTimer& operator=(const LaunchTimer&) = delete;
  cudaStream_t stream() const { return stream_; }
  // Times `launch` (3 runs after one warm-up) on the stream; false when the first launch fails.
  template <class Launch>
  bool time(const Launch& launch, float& ms) {
    if (!launch()) return false;
    cudaEventRecord(start_, stream_);
    for (int r = 0; r < 3; ++r) launch();
    cudaEventRecord(stop_, stream_);
    if (cudaEventSynchronize(stop_) != cudaSuccess) return false;
    cudaEventElapsedTime(&ms, start_, stop_);
    return true;
  }

 private:
  cudaStream_t stream_{};
  cudaEvent_t start_{}, stop_{};
};

class ConvInt8Kernel final : public CudaKernel {
 public:
  explicit ConvInt8Kernel(const KernelCreateInfo& info) : CudaKernel(info) {
    kernel_ = node_.getInts("kernel_shape");
    if (kernel_.size() != 2) unsupported("2-D kernels only");
    beta_ = node_.getFloat("beta", 0.f);
    relu_ = node_.getInt("relu", 0) != 0;
    shortcutStride_ = static_cast<int>(node_.getInt("shortcut_stride", 0));
    const SymShape& w = info.inputShapes.at(1);
    kPad_ = w.concrete()[1];
    const bool ones = kernel_[0] == 1 && kernel_[1] == 1;
    bool unit = true;
    for (int64_t s : node_.getInts("strides", {1, 1})) unit = unit && s == 1;
    for (int64_t p : node_.getInts("pads", {0, 0, 0, 0})) unit = unit && p == 0;
    const SymShape& x = info.inputShapes.at(0);
    direct_ = shortcutStride_ == 0 && ones && unit && x.hasRank && x.rank() == 4 && x.dims[3].isKnown() &&
              x.dims[3].value == kPad_;
  }

  size_t workspaceBytes(const KernelContext& ctx) const override {
    const Im2ColGeometry g = geometry(ctx);
    return candidates(g, ctx.outputs[0]->shape[3], hasZ(ctx)).front().workspace;
  }

  void run(KernelContext& ctx) const override {
    Tensor& y = *ctx.outputs[0];
    const Im2ColGeometry g = geometry(ctx);
    const int64_t m = g.n * g.oh * g.ow, n = y.shape[3];
    if (m == 0) return;
    const bool z = hasZ(ctx);
    // The fastest path that fits the workspace the engine planned: timing here may rank the paths
    // differently from the build's (another process, another run), and the plan is what there is.
    const Int8Choice* fitting = nullptr;
    for (const Int8Choice& c : candidates(g, n, z)) {
      if (c.workspace == 0 || (ctx.workspace != nullptr && c.workspace <= ctx.workspaceSize)) {
        fitting = &c;
        break;
      }
    }
    if (fitting == nullptr)
      fail(ErrorCode::Internal, "no INT8 convolution path fits the planned workspace of " +
                                    std::to_string(ctx.workspaceSize) + " bytes");
    const Int8Choice& choice = *fitting;
    cudaStream_t stream = exec(ctx).stream;
    const int8_t* x = static_cast<const int8_t*>(in(ctx, 0));
    const int8_t* w = static_cast<const int8_t*>(in(ctx, 1));
    const float* alpha = static_cast<const float*>(in(ctx, 2));
    const float* bias = static_cast<const float*>(in(ctx, 3));
    const int8_t* zData = z ? static_cast<const int8_t*>(in(ctx, 4)) : nullptr;
    int8_t* yData = static_cast<int8_t*>(y.data);
    if (g.c2 > 0) {
      const int8_t* x2 = static_cast<const int8_t*>(in(ctx, 5));
      const float* ratio = static_cast<const float*>(in(ctx, 6));
      if (choice.implicitTile >= 0)
        launchInt8ConvImplicitGemm(choice.implicitTile, x, w, alpha, bias, nullptr, 1.f, relu_, yData, g, n, stream, x2, ratio);
      else
        launchInt8ShortcutConvReference(x, w, alpha, bias, relu_, x2, ratio, yData, g, n, stream);
      return;
    }
    if (choice.implicitTile >= 0) {
      launchInt8ConvImplicitGemm(choice.implicitTile, x, w, alpha, bias, zData, beta_, relu_, yData, g, n, stream);
      return;
    }
    uint8_t* ws = static_cast<uint8_t*>(ctx.workspace);
    void* ltWs = ws;
    if (!choice.dp4a) ws += kLtWorkspace;
    const int8_t* a = x;
    if (!direct_) {
      launchIm2ColInt8(x, reinterpret_cast<int8_t*>(ws), g, stream);
      a = reinterpret_cast<const int8_t*>(ws);
      ws += align256(size_t(m) * kPad_);
    }
    if (choice.dp4a) {
      int32_t* acc = reinterpret_cast<int32_t*>(ws);
      launchInt8GemmDp4a(a, w, acc, m, n, kPad_, stream);
      launchRequantize(acc, alpha, bias, zData, beta_, relu_, yData, m, n, stream);
      return;
    }
    LtInt8 d;
    describeInt8(d, m, n, kPad_, choice.fused, relu_, z, bias);
    cublasLtHandle_t h = static_cast<cublasLtHandle_t>(exec(ctx).cublasLt);
    if (choice.fused) {
      const float beta = z ? beta_ : 0.f;
      const void* c = z ? static_cast<const void*>(zData) : yData;
      KILN_LT8_CHECK(cublasLtMatmul(h, d.op, alpha, w, d.a, a, d.b, &beta, c, d.c, yData, d.c, &choice.algo, ltWs,
                                    kLtWorkspace, stream));
      return;
    }
    const int32_t one = 1, zero = 0;
    int32_t* acc = reinterpret_cast<int32_t*>(ws);
    KILN_LT8_CHECK(cublasLtMatmul(h, d.op, &one, w, d.a, a, d.b, &zero, acc, d.c, acc, d.c, &choice.algo, ltWs,
                                  kLtWorkspace, stream));
    launchRequantize(acc, alpha, bias, zData, beta_, relu_, yData, m, n, stream);
  }

  // Which paths the timing picked (over the shapes seen): "implicit_gemm" ("_wgmma": a Hopper tile
  // won somewhere, "_ring" / "_ws" / "_shift" / "_tma": one of its ring / warp-specialized / shifted-window / TMA
  // tiles; ".t<n>[,<n>...]": the tiles, as KILN_CUDA_IMPLICIT_TILE numbers them) and/or cuBLASLt's
  // "gemm"/"im2col_gemm" ("_requant": int32 out, then Kiln's requantize kernel; "_dp4a": fallback).
  std::string name() const override {
    std::string lt = std::string(direct_ ? "gemm" : "im2col_gemm") + (dp4aUsed_ ? "_dp4a" : "_cublaslt") +
                     (requantUsed_ ? "_requant" : "");
    bool wgmma = false;
    for (int tile : tilesUsed_) wgmma = wgmma || tile >= kImplicitGemmTiles;
    const bool implicit = !tilesUsed_.empty();
    std::string paths = implicit ? std::string(wgmma ? "implicit_gemm_wgmma" : "implicit_gemm") + (ringUsed_ ? "_ring" : "") +
                                       (wsUsed_ ? "_ws" : "") + (shiftedUsed_ ? "_shift" : "") + (tmaUsed_ ? "_tma" : "")
                                 : "";
    for (size_t i = 0; i < tilesUsed_.size(); ++i) paths += (i == 0 ? ".t" : ",") + std::to_string(tilesUsed_[i]);
    if (shortcutStride_ > 0) {
      // A fused shortcut runs on a TMA convolution tile or, where none takes it, the reference kernel.
      if (referenceUsed_ || !implicit) paths += std::string(paths.empty() ? "" : "+") + "reference";
      return "cuda.conv_nhwc.int8_shortcut_" + paths;
    }
    if (ltUsed_ || !implicit) paths += (paths.empty() ? "" : "+") + lt;
    return "cuda.conv_nhwc.int8_" + paths;
  }

 private:
  static bool hasZ(const KernelContext& ctx) { return ctx.inputs.size() > 4 && ctx.inputs[4] != nullptr; }

  Im2ColGeometry geometry(const KernelContext& ctx) const {
    Im2ColGeometry g = nhwcWindowGeometry(node_, ctx.inputs[0]->shape, ctx.outputs[0]->shape, kernel_);
    g.kPad = kPad_;
    if (shortcutStride_ > 0) {
      const Shape& x2 = ctx.inputs.at(5)->shape;
      g.h2 = x2[1], g.w2 = x2[2], g.c2 = x2[3], g.stride2 = shortcutStride_;
    }
    return g;
  }

  // Kiln's implicit-GEMM kernel (each tile shape) and cuBLASLt's candidates for the GEMM with the
  // fused int8-out epilogue or with int32 out plus Kiln's requantize kernel (timed together; on some
  // GPUs and cuBLASLt versions the only fused algorithms are slow ones), im2col included where the
  // layer needs it, fastest first. Timed once per geometry on scratch buffers (never during a
  // capture: workspaceBytes() comes first).
  const std::vector<Int8Choice>& candidates(const Im2ColGeometry& g, int64_t n, bool hasZ) const {
    const int64_t m = g.n * g.oh * g.ow;
    char keyBuf[256];
    std::snprintf(keyBuf, sizeof(keyBuf), "int8conv|%s|x%lldx%lldx%lldx%lld k%lld kpad%lld r%ds%d st%d,%d p%d,%d d%d,%d z%d r%d",
                  deviceKey().c_str(), (long long)g.n, (long long)g.h, (long long)g.w, (long long)g.c, (long long)n,
                  (long long)kPad_, g.r, g.s, g.strideH, g.strideW, g.padH, g.padW, g.dilH, g.dilW, int(hasZ), int(relu_));
    std::string key = keyBuf;
    if (g.c2 > 0) {
      std::snprintf(keyBuf, sizeof(keyBuf), " sc%lldx%lldx%lld st%d", (long long)g.h2, (long long)g.w2, (long long)g.c2, g.stride2);
      key += keyBuf;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = choices_.find(key);
    if (it != choices_.end()) return it->second;
    const Int8ConvFamily family = int8ConvFamily();
    // A fused shortcut's paths (a TMA convolution tile, the reference kernel) need no workspace.
    const bool shortcut = g.c2 > 0;
    const size_t im2colBytes = direct_ || shortcut ? 0 : align256(size_t(m) * kPad_),
                 accBytes = shortcut ? 0 : align256(size_t(m) * n * 4);
    // Persisted (KILN_CUDA_TIMING_CACHE) when nothing forces the choice, keyed also by the tiles
    // this build times on this GPU; a list that no longer parses or fits is timed again.
    const bool persist = family == Int8ConvFamily::Any && forcedImplicitGemmTile() < 0;
    const std::string persistKey = key + " " + int8TilesKey();
    std::vector<Int8Choice> timed;
    if (persist) {
      if (std::optional<std::string> cached = timingCacheGet(persistKey))
        timed = parseChoices(*cached, implicitGemmConvSupported(g, n, DType::Int8), im2colBytes, accBytes);
    }
    if (timed.empty()) {
      timed = timeChoices(g, n, hasZ, family, key, im2colBytes, accBytes);
      if (persist) timingCachePut(persistKey, formatChoices(timed));
    }
    if (g.c2 > 0 && timed.front().implicitTile < 0) {
      referenceUsed_ = true;
    } else if (timed.front().dp4a) {
      dp4aUsed_ = ltUsed_ = true;
    } else if (timed.front().implicitTile >= 0) {
      const int tile = timed.front().implicitTile, w = tile - kImplicitGemmTiles;
      if (std::find(tilesUsed_.begin(), tilesUsed_.end(), tile) == tilesUsed_.end()) tilesUsed_.push_back(tile);
      if (w >= 0 && wgmmaTileRunsAsItself(w, g, n)) {
        const WgmmaTileKind kind = wgmmaTileKind(w);
        ringUsed_ = ringUsed_ || kind == WgmmaTileKind::Ring;
        wsUsed_ = wsUsed_ || kind == WgmmaTileKind::WarpSpecialized;
        shiftedUsed_ = shiftedUsed_ || kind == WgmmaTileKind::Shifted;
        tmaUsed_ = tmaUsed_ || kind == WgmmaTileKind::Tma;
      }
    } else {
      ltUsed_ = true, requantUsed_ = requantUsed_ || !timed.front().fused;
    }
    return choices_.emplace(key, std::move(timed)).first->second;
  }

  // One candidate per entry, "tile,fused,dp4a,ms,algorithm;" fastest first (the algorithm in hex
  // for cuBLASLt's, "-" otherwise).
  static std::string formatChoices(const std::vector<Int8Choice>& list) {
    std::string value;
    char buf[64];
    for (const Int8Choice& c : list) {
      std::snprintf(buf, sizeof(buf), "%d,%d,%d,%.5f,", c.implicitTile, int(c.fused), int(c.dp4a), double(c.ms));
      value += buf;
      value += c.implicitTile < 0 && !c.dp4a ? bytesToHex(&c.algo, sizeof(c.algo)) : std::string("-");
      value += ";";
    }
    return value;
  }

  // formatChoices' list back, or an empty one when an entry does not parse or names a tile this
  // build and GPU do not have; workspaces are worked out again for this layer.
  static std::vector<Int8Choice> parseChoices(const std::string& value, bool implicitSupported, size_t im2colBytes,
                                              size_t accBytes) {
    std::vector<Int8Choice> list;
    for (size_t at = 0; at < value.size();) {
      size_t end = value.find(';', at);
      if (end == std::string::npos) end = value.size();
      const std::string entry = value.substr(at, end - at);
      at = end + 1;
      Int8Choice c;
      int fused = 0, dp4a = 0, used = 0;
      if (std::sscanf(entry.c_str(), "%d,%d,%d,%f,%n", &c.implicitTile, &fused, &dp4a, &c.ms, &used) < 4 || used <= 0)
        return {};
      c.fused = fused != 0, c.dp4a = dp4a != 0;
      const std::string algo = entry.substr(static_cast<size_t>(used));
      if (c.implicitTile >= 0) {
        if (!implicitSupported || !implicitGemmTileAvailable(c.implicitTile, DType::Int8)) return {};
      } else if (c.dp4a) {
        c.workspace = im2colBytes + accBytes;
      } else {
        if (!bytesFromHex(algo, &c.algo, sizeof(c.algo))) return {};
        c.workspace = kLtWorkspace + im2colBytes + (c.fused ? 0 : accBytes);
      }
      list.push_back(c);
    }
    return list;
  }

  // Times every candidate on scratch buffers, fastest first; the dp4a GEMM alone when none runs.
  std::vector<Int8Choice> timeChoices(const Im2ColGeometry& g, int64_t n, bool hasZ, Int8ConvFamily family,
                                      const std::string& key, size_t im2colBytes, size_t accBytes) const {
    if (g.c2 > 0) return timeShortcutChoices(g, n);
    const int64_t m = g.n * g.oh * g.ow;
    static void* handle = createCublasLtHandle();
    cublasLtHandle_t h = static_cast<cublasLtHandle_t>(handle);
    const size_t xBytes = size_t(g.n) * g.h * g.w * g.c;
    std::shared_ptr<void> x = deviceAlloc(std::max<size_t>(xBytes, 1)), a = deviceAlloc(size_t(m) * kPad_),
                          b = deviceAlloc(size_t(n) * kPad_), c = deviceAlloc(size_t(m) * n * 4),
                          z = deviceAlloc(size_t(m) * n), out = deviceAlloc(size_t(m) * n), vec = deviceAlloc(size_t(n) * 4 * 2),
                          ws = deviceAlloc(kLtWorkspace);
    const float* alpha = static_cast<const float*>(vec.get());
    const float* bias = static_cast<const float*>(vec.get()) + n;
    const int8_t* zData = hasZ ? static_cast<const int8_t*>(z.get()) : nullptr;
    int8_t* outData = static_cast<int8_t*>(out.get());
    LaunchTimer timer;
    cudaStream_t stream = timer.stream();
    // Data like a model's, not zeros (zeros draw less power and time faster than real layers run).
    fillTuningPattern(x.get(), DType::Int8, int64_t(xBytes), 21, stream);
    fillTuningPattern(a.get(), DType::Int8, m * kPad_, 22, stream);
    fillTuningPattern(b.get(), DType::Int8, n * kPad_, 23, stream);
    fillTuningPattern(z.get(), DType::Int8, m * n, 24, stream);
    fillTuningPattern(vec.get(), DType::Float32, 2 * n, 25, stream);
    std::vector<Int8Choice> timed;
    auto consider = [&](float ms, Int8Choice candidate) {
      candidate.ms = ms;
      if (candidate.implicitTile < 0) candidate.workspace = kLtWorkspace + im2colBytes + (candidate.fused ? 0 : accBytes);
      timed.push_back(candidate);
    };
    std::string tried;
    float ms = 0;
    // A family forced by KILN_CUDA_INT8_CONV still falls back to the other where it cannot run.
    const bool tryImplicit = family != Int8ConvFamily::CublasLt && implicitGemmConvSupported(g, n, DType::Int8);
    const bool tryLt = family != Int8ConvFamily::Implicit || !tryImplicit;
    if (tryImplicit) {
      const int forced = forcedImplicitGemmTile();
      for (int tile = 0; tile < kInt8ImplicitGemmTiles; ++tile) {
        if ((forced >= 0 && tile != forced) || !implicitGemmTileAvailable(tile, DType::Int8)) continue;
        // A ring or warp-specialized tile on a layer whose K it does not take would time its fallback a
        // second time.
        if (forced < 0 && tile >= kImplicitGemmTiles && !wgmmaTileRunsAsItself(tile - kImplicitGemmTiles, g, n))
          continue;
        auto launch = [&] {
          launchInt8ConvImplicitGemm(tile, static_cast<const int8_t*>(x.get()), static_cast<const int8_t*>(b.get()), alpha,
                                     bias, zData, 1.f, relu_, outData, g, n, stream);
          return true;
        };
        Int8Choice candidate;
        candidate.implicitTile = tile;
        if (timer.time(launch, ms)) consider(ms, candidate);
      }
    }
    for (int fused = 1; fused >= 0 && tryLt; --fused) {
      LtInt8 d;
      try {
        describeInt8(d, m, n, kPad_, fused != 0, relu_, hasZ, bias);
      } catch (const KilnError& e) {
        tried += std::string(e.what()) + "; ";
        continue;
      }
      cublasLtMatmulHeuristicResult_t results[8];
      int count = 0;
      if (cublasLtMatmulAlgoGetHeuristic(h, d.op, d.a, d.b, d.c, d.c, d.pref, 8, results, &count) != CUBLAS_STATUS_SUCCESS)
        count = 0;
      for (int i = 0; i < count; ++i) {
        if (results[i].state != CUBLAS_STATUS_SUCCESS) continue;
        const float betaF = hasZ ? 1.f : 0.f;
        const int32_t one = 1, zero = 0;
        auto launch = [&] {
          if (!direct_) launchIm2ColInt8(static_cast<const int8_t*>(x.get()), static_cast<int8_t*>(a.get()), g, stream);
          if (fused)
            return cublasLtMatmul(h, d.op, alpha, b.get(), d.a, a.get(), d.b, &betaF, hasZ ? z.get() : out.get(), d.c,
                                  out.get(), d.c, &results[i].algo, ws.get(), kLtWorkspace, stream) == CUBLAS_STATUS_SUCCESS;
          if (cublasLtMatmul(h, d.op, &one, b.get(), d.a, a.get(), d.b, &zero, c.get(), d.c, c.get(), d.c, &results[i].algo,
                             ws.get(), kLtWorkspace, stream) != CUBLAS_STATUS_SUCCESS)
            return false;
          launchRequantize(static_cast<const int32_t*>(c.get()), alpha, bias, zData, 1.f, relu_, outData, m, n, stream);
          return true;
        };
        Int8Choice candidate;
        candidate.fused = fused != 0;
        candidate.algo = results[i].algo;
        if (timer.time(launch, ms)) consider(ms, candidate);
      }
      if (count == 0) tried += std::string(fused ? "fused int8-out" : "int32-out") + ": no algorithm; ";
    }
    std::stable_sort(timed.begin(), timed.end(), [](const Int8Choice& a, const Int8Choice& b) { return a.ms < b.ms; });
    if (timed.empty()) {
      // Correct everywhere, slow: kept so that an INT8 engine never fails to build for lack of a
      // cuBLASLt algorithm (the kernel name says which path a layer took).
      Int8Choice dp4a;
      dp4a.dp4a = true;
      dp4a.workspace = im2colBytes + accBytes;
      timed.push_back(dp4a);
      std::fprintf(stderr, "kiln: no INT8 GEMM for %s (%s); using the dp4a fallback\n", key.c_str(), tried.c_str());
    }
    return timed;
  }

  // A fused shortcut's candidates: every TMA convolution tile that takes it (forced: that tile
  // alone), fastest first; where none does, the reference kernel alone (implicitTile -1, dp4a set:
  // Kiln's own fallback, no workspace).
  std::vector<Int8Choice> timeShortcutChoices(const Im2ColGeometry& g, int64_t n) const {
    const int64_t m = g.n * g.oh * g.ow;
    const size_t xBytes = size_t(g.n) * g.h * g.w * g.c, x2Bytes = size_t(g.n) * g.h2 * g.w2 * g.c2;
    std::shared_ptr<void> x = deviceAlloc(std::max<size_t>(xBytes, 1)), x2 = deviceAlloc(std::max<size_t>(x2Bytes, 1)),
                          b = deviceAlloc(size_t(n) * kPad_), out = deviceAlloc(size_t(m) * n), vec = deviceAlloc(size_t(n) * 4 * 3);
    const float* alpha = static_cast<const float*>(vec.get());
    const float* bias = alpha + n;
    const float* ratio = alpha + 2 * n;
    LaunchTimer timer;
    cudaStream_t stream = timer.stream();
    fillTuningPattern(x.get(), DType::Int8, int64_t(xBytes), 21, stream);
    fillTuningPattern(x2.get(), DType::Int8, int64_t(x2Bytes), 26, stream);
    fillTuningPattern(b.get(), DType::Int8, n * kPad_, 23, stream);
    fillTuningPattern(vec.get(), DType::Float32, 3 * n, 25, stream);
    std::vector<Int8Choice> timed;
    const int forced = forcedImplicitGemmTile();
    for (int tile = kImplicitGemmTiles; tile < kInt8ImplicitGemmTiles; ++tile) {
      if ((forced >= 0 && tile != forced) || !wgmmaTileTakesShortcut(tile, g, n)) continue;
      auto launch = [&] {
        launchInt8ConvImplicitGemm(tile, static_cast<const int8_t*>(x.get()), static_cast<const int8_t*>(b.get()), alpha, bias,
                                   nullptr, 1.f, relu_, static_cast<int8_t*>(out.get()), g, n, stream,
                                   static_cast<const int8_t*>(x2.get()), ratio);
        return true;
      };
      Int8Choice candidate;
      candidate.implicitTile = tile;
      if (timer.time(launch, candidate.ms)) timed.push_back(candidate);
    }
    std::stable_sort(timed.begin(), timed.end(), [](const Int8Choice& a, const Int8Choice& b) { return a.ms < b.ms; });
    if (timed.empty()) {
      Int8Choice reference;
      reference.dp4a = true;
      timer.time(
          [&] {
            launchInt8ShortcutConvReference(static_cast<const int8_t*>(x.get()), static_cast<const int8_t*>(b.get()), alpha,
                                            bias, relu_, static_cast<const int8_t*>(x2.get()), ratio,
                                            static_cast<int8_t*>(out.get()), g, n, stream);
            return true;
          },
          reference.ms);
      timed.push_back(reference);
    }
    return timed;
  }

  std::vector<int64_t> kernel_;
  int64_t kPad_ = 0;
  int shortcutStride_ = 0;  // > 0: a fused 1x1 shortcut at this stride (inputs 5 and 6)
  float beta_ = 0.f;
  bool relu_ = false, direct_ = false;
  mutable std::vector<int> tilesUsed_;  // implicit-GEMM tiles chosen, in order of first choice
  mutable bool ringUsed_ = false, wsUsed_ = false, shiftedUsed_ = false, tmaUsed_ = false;  // ... of which kinds, run as themselves
  mutable bool dp4aUsed_ = false, requantUsed_ = false, ltUsed_ = false, referenceUsed_ = false;
  mutable std::mutex mutex_;
  mutable std::map<std::string, std::vector<Int8Choice>> choices_;
};

std::unique_ptr<Kernel> makeQuantize(const KernelCreateInfo& i) { return std::make_unique<QuantizeKernel>(i); }
std::unique_ptr<Kernel> makeQuantizeSpaceToDepth(const KernelCreateInfo& i) {
  return std::make_unique<QuantizeSpaceToDepthKernel>(i);
}
std::unique_ptr<Kernel> makeDequantize(const KernelCreateInfo& i) { return std::make_unique<DequantizeKernel>(i); }
std::unique_ptr<Kernel> makeConvInt8(const KernelCreateInfo& i) { return std::make_unique<ConvInt8Kernel>(i); }
std::unique_ptr<Kernel> makeMaxPoolInt8(const KernelCreateInfo& i) { return std::make_unique<MaxPoolInt8Kernel>(i); }

}  // namespace

Im2ColGeometry nhwcWindowGeometry(const Node& node, const Shape& x, const Shape& y, const std::vector<int64_t>& kernel) {
  WindowParams p = readWindowParams(node, 2, kernel);
  Im2ColGeometry g;
  g.n = x[0], g.h = x[1], g.w = x[2], g.c = x[3];
  g.oh = y[1], g.ow = y[2];
  g.r = static_cast<int>(kernel[0]), g.s = static_cast<int>(kernel[1]);
  g.strideH = static_cast<int>(p.strides[0]), g.strideW = static_cast<int>(p.strides[1]);
  g.dilH = static_cast<int>(p.dilations[0]), g.dilW = static_cast<int>(p.dilations[1]);
  g.padH = static_cast<int>(forwardWindowDim(node, p, 0, x[1]).padBegin);
  g.padW = static_cast<int>(forwardWindowDim(node, p, 1, x[2]).padBegin);
  return g;
}

KILN_REGISTER_SCHEMA(CudaQuantize, (OpSchema{kKilnDomain, "CudaQuantize", 1, inferQuantize}));
KILN_REGISTER_SCHEMA(CudaDequantize, (OpSchema{kKilnDomain, "CudaDequantize", 1, inferDequantize}));
KILN_REGISTER_SCHEMA(CudaQuantizeSpaceToDepth,
                     (OpSchema{kKilnDomain, "CudaQuantizeSpaceToDepth", 1, inferQuantizeSpaceToDepth}));
KILN_REGISTER_SCHEMA(CudaConvInt8NHWC, (OpSchema{kKilnDomain, "CudaConvInt8NHWC", 1, inferConvInt8}));
KILN_REGISTER_SCHEMA(CudaMaxPoolInt8NHWC, (OpSchema{kKilnDomain, "CudaMaxPoolInt8NHWC", 1, inferMaxPoolInt8}));
KILN_REGISTER_KERNEL(CudaQuantizeK, (KernelDef{"cuda", "kiln", "CudaQuantize", 1, makeQuantize}));
KILN_REGISTER_KERNEL(CudaDequantizeK, (KernelDef{"cuda", "kiln", "CudaDequantize", 1, makeDequantize}));
KILN_REGISTER_KERNEL(CudaQuantizeSpaceToDepthK,
                     (KernelDef{"cuda", "kiln", "CudaQuantizeSpaceToDepth", 1, makeQuantizeSpaceToDepth}));
KILN_REGISTER_KERNEL(CudaConvInt8NHWCK, (KernelDef{"cuda", "kiln", "CudaConvInt8NHWC", 1, makeConvInt8}));
KILN_REGISTER_KERNEL(CudaMaxPoolInt8NHWCK, (KernelDef{"cuda", "kiln", "CudaMaxPoolInt8NHWC", 1, makeMaxPoolInt8}));

}  // namespace kiln::cuda
