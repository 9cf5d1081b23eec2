// MatMul, Gemm and their kiln fusions on cuBLASLt. Row-major D[M,N] = A[M,K] B[K,N] is computed as
// the column-major product D^T = B^T A^T, so the bias (one value per output column N) is cuBLASLt's
// per-row bias vector. Bias, ReLU and tanh-GELU run as cuBLASLt epilogues; other activations (erf
// GELU included, cuBLASLt's GELU is the tanh form) run as one extra elementwise pass. Batched
// MatMul: a 2-D B folds A's batch dims into M; equal batch dims on both sides use strided batches.
// Float16 data accumulates in float32.
#include <cublasLt.h>

#include "backends/cuda/cuda_common.h"
#include "backends/cuda/cuda_ops.h"
#include "backends/cuda/gemm.h"
#include "backends/cuda/cuda_libraries.h"
#include "backends/cuda/timing_cache.h"
#include "backends/cuda/tuning_kernels.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

namespace kiln::cuda {
namespace {

constexpr size_t kGemmWorkspaceBytes = 32u << 20;

#define KILN_LT_CHECK(expr)                                                                              \
  do {                                                                                                   \
    cublasStatus_t kiln_st = (expr);                                                                     \
    if (kiln_st != CUBLAS_STATUS_SUCCESS)                                                                \
      fail(ErrorCode::Internal, std::string("cuBLASLt error ") + std::to_string(int(kiln_st)) + " in " #expr); \
  } while (0)

struct LtDescs {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  ~LtDescs() {
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

void setBatch(cublasLtMatrixLayout_t l, int64_t batch, int64_t stride) {
  if (batch <= 1) return;
  int32_t count = static_cast<int32_t>(batch);
  KILN_LT_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)));
  KILN_LT_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
}

}  // namespace

namespace {

// Descriptors of one GEMM call; returns whether the activation needs a separate pass.
bool describeGemm(const GemmCall& g, LtDescs& d, size_t workspaceBytes) {
  const cudaDataType_t dt = g.type == DType::Float16 ? CUDA_R_16F : CUDA_R_32F;
  const cublasComputeType_t compute =
      g.tf32 && g.type == DType::Float32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  KILN_LT_CHECK(cublasLtMatmulDescCreate(&d.op, compute, CUDA_R_32F));
  // Column-major: D^T[N,M] = op(B^T) op(A^T).
  cublasOperation_t opA = g.transB ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasOperation_t opB = g.transA ? CUBLAS_OP_T : CUBLAS_OP_N;
  KILN_LT_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSA, &opA, sizeof(opA)));
  KILN_LT_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSB, &opB, sizeof(opB)));
  bool extraPass = false;
  cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_DEFAULT;
  switch (g.act.kind) {
    case Activation::None: epi = g.bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT; break;
    case Activation::Relu: epi = g.bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU; break;
    case Activation::GeluTanh: epi = g.bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU; break;
    default:
      epi = g.bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
      extraPass = true;
  }
  // cuBLASLt computes act(alpha A B + beta C + bias): C (a residual) comes before the activation,
  // as in kiln.FusedConv and FusedGemm.
  KILN_LT_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
  if (g.bias) {
    KILN_LT_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g.bias, sizeof(g.bias)));
    cudaDataType_t biasType = dt;
    KILN_LT_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &biasType, sizeof(biasType)));
  }
  // Stored layouts (column-major view of the row-major buffers).
  if (g.transB) KILN_LT_CHECK(cublasLtMatrixLayoutCreate(&d.a, dt, g.k, g.n, g.k));
  else KILN_LT_CHECK(cublasLtMatrixLayoutCreate(&d.a, dt, g.n, g.k, g.n));
  if (g.transA) KILN_LT_CHECK(cublasLtMatrixLayoutCreate(&d.b, dt, g.m, g.k, g.m));
  else KILN_LT_CHECK(cublasLtMatrixLayoutCreate(&d.b, dt, g.k, g.m, g.k));
  KILN_LT_CHECK(cublasLtMatrixLayoutCreate(&d.c, dt, g.n, g.m, g.n));
  setBatch(d.a, g.batch, g.strideB);
  setBatch(d.b, g.batch, g.strideA);
  setBatch(d.c, g.batch, g.strideD);
  KILN_LT_CHECK(cublasLtMatmulPreferenceCreate(&d.pref));
  uint64_t ws = workspaceBytes;
  KILN_LT_CHECK(cublasLtMatmulPreferenceSetAttribute(d.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
  return extraPass;
}

std::string gemmKey(const GemmCall& g, size_t workspaceBytes) {
  char buf[256];
  std::snprintf(buf, sizeof(buf), "gemm3|%s|%s%s|m%lld n%lld k%lld b%lld t%d%d bias%d c%d act%d ws%zu", deviceKey().c_str(),
                dtypeName(g.type), g.tf32 ? "/tf32" : "", (long long)g.m, (long long)g.n, (long long)g.k, (long long)g.batch, g.transA ? 1 : 0,
                g.transB ? 1 : 0, g.bias ? 1 : 0, (g.c || g.hasC) ? 1 : 0, static_cast<int>(g.act.kind), workspaceBytes);
  return buf;
}

std::mutex tunedMutex;
std::map<std::string, cublasLtMatmulAlgo_t>& tunedAlgos() {
  static std::map<std::string, cublasLtMatmulAlgo_t> algos;
  return algos;
}

// What tuneGemm times: cuBLASLt's heuristic candidates, and split-K variants of the leading ones.
// Small-M GEMMs (a transformer at batch 1: M = 128 tokens) leave most multiprocessors idle with
// whole-K tiles; the heuristic's short list rarely splits K, so the splits are offered explicitly
// (partial sums in float32 in the workspace, reduced in a second step: deterministic).
std::vector<cublasLtMatmulAlgo_t> gemmCandidates(cublasLtHandle_t h, LtDescs& d, int64_t k, size_t workspaceBytes) {
  constexpr int kHeuristics = 24, kSplitBases = 6;
  cublasLtMatmulHeuristicResult_t results[kHeuristics];
  int found = 0;
  if (cublasLtMatmulAlgoGetHeuristic(h, d.op, d.a, d.b, d.c, d.c, d.pref, kHeuristics, results, &found) !=
      CUBLAS_STATUS_SUCCESS)
    return {};
  std::vector<cublasLtMatmulAlgo_t> out;
  int bases = 0;
  for (int i = 0; i < found; ++i) {
    if (results[i].state != CUBLAS_STATUS_SUCCESS) continue;
    out.push_back(results[i].algo);
    if (bases >= kSplitBases) continue;
    int32_t splitSupport = 0, splits = 1;
    uint32_t schemes = 0;
    size_t written = 0;
    if (cublasLtMatmulAlgoCapGetAttribute(&results[i].algo, CUBLASLT_ALGO_CAP_SPLITK_SUPPORT, &splitSupport,
                                          sizeof(splitSupport), &written) != CUBLAS_STATUS_SUCCESS ||
        cublasLtMatmulAlgoCapGetAttribute(&results[i].algo, CUBLASLT_ALGO_CAP_REDUCTION_SCHEME_MASK, &schemes,
                                          sizeof(schemes), &written) != CUBLAS_STATUS_SUCCESS ||
        cublasLtMatmulAlgoConfigGetAttribute(&results[i].algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splits, sizeof(splits),
                                             &written) != CUBLAS_STATUS_SUCCESS)
      continue;
    if (!splitSupport || splits != 1 || !(schemes & CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE)) continue;
    ++bases;
    for (int32_t split : {2, 4, 8}) {
      if (k / split < 128) break;  // short parts: the reduction costs more than the split gains
      cublasLtMatmulAlgo_t algo = results[i].algo;
      const uint32_t scheme = CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
      cublasLtMatmulHeuristicResult_t check{};
      if (cublasLtMatmulAlgoConfigSetAttribute(&algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &split, sizeof(split)) !=
              CUBLAS_STATUS_SUCCESS ||
          cublasLtMatmulAlgoConfigSetAttribute(&algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &scheme, sizeof(scheme)) !=
              CUBLAS_STATUS_SUCCESS ||
          cublasLtMatmulAlgoCheck(h, d.op, d.a, d.b, d.c, d.c, &algo, &check) != CUBLAS_STATUS_SUCCESS ||
          check.workspaceSize > workspaceBytes)
        continue;
      out.push_back(algo);
    }
  }
  return out;
}

}  // namespace

void tuneGemm(const GemmCall& shape, size_t workspaceBytes) {
  if (shape.m == 0 || shape.n == 0 || shape.k == 0) return;
  const std::string key = gemmKey(shape, workspaceBytes);
  {
    std::lock_guard<std::mutex> lock(tunedMutex);
    if (tunedAlgos().count(key)) return;
    cublasLtMatmulAlgo_t algo;
    if (std::optional<std::string> hex = timingCacheGet(key); hex && bytesFromHex(*hex, &algo, sizeof(algo))) {
      tunedAlgos()[key] = algo;
      return;
    }
  }
  // Time cuBLASLt's candidates on scratch buffers, on a private stream (never inside a capture:
  // kernels call this from workspaceBytes(), before a context records its graph). The inputs hold a
  // fixed pseudo-random pattern, and every candidate's output is checked against the heuristic's
  // first choice: a candidate that computes something else (an algorithm or split-K configuration
  // that cuBLASLt accepts for these operands but gets wrong) is never kept, however fast.
  static void* handle = createCublasLtHandle();
  cublasLtHandle_t h = static_cast<cublasLtHandle_t>(handle);
  GemmCall g = shape;
  const size_t e = dtypeSize(g.type);
  const int64_t aCount = g.m * g.k * g.batch, bCount = g.k * g.n * g.batch, dCount = g.m * g.n * g.batch;
  std::shared_ptr<void> a = deviceAlloc(size_t(aCount) * e), b = deviceAlloc(size_t(bCount) * e),
                        d = deviceAlloc(size_t(dCount) * e), reference = deviceAlloc(size_t(dCount) * e),
                        bias = deviceAlloc(size_t(g.n) * e), ws = deviceAlloc(workspaceBytes), stats = deviceAlloc(2 * sizeof(float));
  const bool hasC = g.c || g.hasC;
  std::shared_ptr<void> c = hasC ? deviceAlloc(size_t(dCount) * e) : nullptr;
  cudaStream_t stream;
  KILN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  fillTuningPattern(a.get(), g.type, aCount, 1, stream);
  fillTuningPattern(b.get(), g.type, bCount, 2, stream);
  fillTuningPattern(bias.get(), g.type, g.n, 3, stream);
  if (hasC) fillTuningPattern(c.get(), g.type, dCount, 4, stream);
  g.a = a.get(), g.b = b.get(), g.d = d.get();
  g.c = hasC ? c.get() : nullptr;
  if (g.bias) g.bias = bias.get();
  LtDescs descs;
  describeGemm(g, descs, workspaceBytes);
  const std::vector<cublasLtMatmulAlgo_t> candidates = gemmCandidates(h, descs, g.k, workspaceBytes);
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  const float alpha = g.alpha, beta = hasC ? g.beta : 0.f;
  auto launch = [&](const cublasLtMatmulAlgo_t& algo, void* out) {
    return cublasLtMatmul(h, descs.op, &alpha, g.b, descs.a, g.a, descs.b, &beta, hasC ? g.c : out, descs.c, out,
                          descs.c, &algo, ws.get(), workspaceBytes, stream);
  };
  // The reference: the first candidate that runs (the heuristic's own first choice, normally).
  size_t first = 0;
  while (first < candidates.size() && launch(candidates[first], reference.get()) != CUBLAS_STATUS_SUCCESS) ++first;
  float best = 1e30f;
  int bestIndex = -1;
  for (size_t i = first; i < candidates.size(); ++i) {
    if (launch(candidates[i], d.get()) != CUBLAS_STATUS_SUCCESS) continue;
    if (i != first) {
      float diff[2] = {0.f, 0.f};
      compareTuningOutputs(d.get(), reference.get(), g.type, dCount, static_cast<float*>(stats.get()), stream);
      KILN_CUDA_CHECK(cudaMemcpyAsync(diff, stats.get(), sizeof(diff), cudaMemcpyDeviceToHost, stream));
      KILN_CUDA_CHECK(cudaStreamSynchronize(stream));
      // Different summation orders differ by rounding only: a few units of the output type's
      // precision relative to the largest value.
      const float tolerance = (g.type == DType::Float16 ? 2e-2f : g.tf32 ? 5e-3f : 1e-4f) * std::max(diff[1], 1.f);
      if (!(diff[0] <= tolerance)) continue;
    }
    // The better of two timings of 5 runs: a single timing of a few-microsecond kernel is noisy
    // enough to pick a slower candidate.
    float ms = 1e30f;
    for (int rep = 0; rep < 2; ++rep) {
      cudaEventRecord(start, stream);
      for (int r = 0; r < 5; ++r) launch(candidates[i], d.get());
      cudaEventRecord(stop, stream);
      cudaEventSynchronize(stop);
      float t = 0;
      cudaEventElapsedTime(&t, start, stop);
      ms = std::min(ms, t);
    }
    if (ms < best) best = ms, bestIndex = static_cast<int>(i);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaStreamSynchronize(stream);
  cudaStreamDestroy(stream);
  cudaGetLastError();  // a refused candidate must not poison later checks
  // No candidate ran: nothing is kept, and runGemm asks the heuristic at run time (a stored
  // failing algorithm would fail every run).
  if (bestIndex < 0) return;
  std::lock_guard<std::mutex> lock(tunedMutex);
  tunedAlgos()[key] = candidates[bestIndex];
  timingCachePut(key, bytesToHex(&candidates[bestIndex], sizeof(candidates[bestIndex])));
}

namespace {

uint32_t alignmentOf(const void* p) {
  const uintptr_t v = reinterpret_cast<uintptr_t>(p);
  uint32_t a = 256;
  while (a > 1 && v % a != 0) a /= 2;
  return a;
}

template <class Matmul>
void runWithAlignedHeuristic(const GemmCall& g, LtDescs& d, cublasLtHandle_t handle, cublasLtMatmulAlgo_t& algo,
                             const Matmul& matmul, const void* workspace, size_t workspaceBytes) {
  // cuBLASLt's A is Kiln's B (see describeGemm).
  const uint32_t align[4] = {alignmentOf(g.b), alignmentOf(g.a), alignmentOf(g.c ? g.c : g.d), alignmentOf(g.d)};
  const cublasLtMatmulPreferenceAttributes_t attrs[4] = {
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
  for (int i = 0; i < 4; ++i)
    KILN_LT_CHECK(cublasLtMatmulPreferenceSetAttribute(d.pref, attrs[i], &align[i], sizeof(align[i])));
  cublasLtMatmulHeuristicResult_t results[8];
  int found = 0;
  if (cublasLtMatmulAlgoGetHeuristic(handle, d.op, d.a, d.b, d.c, d.c, d.pref, 8, results, &found) != CUBLAS_STATUS_SUCCESS)
    found = 0;
  cublasStatus_t last = CUBLAS_STATUS_NOT_SUPPORTED;
  for (int i = 0; i < found; ++i) {
    if (results[i].state != CUBLAS_STATUS_SUCCESS) continue;
    algo = results[i].algo;
    if ((last = matmul()) == CUBLAS_STATUS_SUCCESS) return;
  }
  char detail[320];
  std::snprintf(detail, sizeof(detail),
                "cuBLASLt error %d: no algorithm ran this GEMM (%s m%lld n%lld k%lld batch %lld, %d candidates, "
                "alignments A %u B %u C %u D %u bytes, workspace %zu bytes at alignment %u)",
                int(last), dtypeName(g.type), (long long)g.m, (long long)g.n, (long long)g.k, (long long)g.batch, found,
                align[1], align[0], align[2], align[3], workspaceBytes, alignmentOf(workspace));
  fail(ErrorCode::Internal, detail);
}

}  // namespace

void runGemm(const GemmCall& g, void* ltHandle, cudaStream_t stream, void* workspace, size_t workspaceBytes) {
  cublasLtHandle_t handle = static_cast<cublasLtHandle_t>(ltHandle);
  if (g.m == 0 || g.n == 0) return;
  LtDescs d;
  const bool extraPass = describeGemm(g, d, workspaceBytes);
  cublasLtMatmulAlgo_t algo;
  bool tuned = false;
  {
    std::lock_guard<std::mutex> lock(tunedMutex);
    auto it = tunedAlgos().find(gemmKey(g, workspaceBytes));
    if (it != tunedAlgos().end()) algo = it->second, tuned = true;
  }
  auto heuristicAlgo = [&] {
    cublasLtMatmulHeuristicResult_t heuristic[1];
    int found = 0;
    KILN_LT_CHECK(cublasLtMatmulAlgoGetHeuristic(handle, d.op, d.a, d.b, d.c, d.c, d.pref, 1, heuristic, &found));
    KILN_CHECK(found > 0, UnsupportedOp, "cuBLASLt has no algorithm for this GEMM");
    return heuristic[0].algo;
  };
  if (!tuned) algo = heuristicAlgo();
  const float alpha = g.alpha;
  const float beta = g.c ? g.beta : 0.f;
  const void* cPtr = g.c ? g.c : g.d;
  auto matmul = [&] {
    return cublasLtMatmul(handle, d.op, &alpha, g.b, d.a, g.a, d.b, &beta, cPtr, d.c, g.d, d.c, &algo, workspace,
                          workspaceBytes, stream);
  };
  // cuBLASLt checks its arguments before it launches anything, so an algorithm it refuses for these
  // operands is replaced, not a failed run: the heuristic assumes 16-byte aligned operands unless
  // told otherwise, so the retry states the actual alignments and takes the first candidate that runs.
  if (matmul() != CUBLAS_STATUS_SUCCESS) runWithAlignedHeuristic(g, d, handle, algo, matmul, workspace, workspaceBytes);
  if (extraPass) launchEpilogue(g.d, nullptr, nullptr, g.type, g.m * g.n * g.batch, 1, 1, g.act, stream);
}

namespace {

class GemmKernel final : public CudaKernel {
 public:
  GemmKernel(const KernelCreateInfo& info, bool fused) : CudaKernel(info) {
    if (!isFloatType(inputTypes_.at(0))) unsupported(std::string("type ") + dtypeName(inputTypes_[0]) + " (float32/float16 only)");
    transA_ = node_.getInt("transA", 0) != 0;
    transB_ = node_.getInt("transB", 0) != 0;
    alpha_ = node_.getFloat("alpha", 1.f);
    beta_ = node_.getFloat("beta", 1.f);
    if (fused) act_ = readActivationAttrs(node_);
    // Refused here when the shapes are known, so that the node becomes a host layer instead of
    // failing when it first runs.
    if (beta_ != 0.f && info.inputShapes.size() > 2 && info.inputShapes[0].isConcrete() &&
        info.inputShapes[1].isConcrete() && info.inputShapes[2].isConcrete()) {
      const Shape a = info.inputShapes[0].concrete(), b = info.inputShapes[1].concrete();
      const Shape c = info.inputShapes[2].concrete();
      int64_t cElements = 1;
      for (int64_t d : c) cElements *= d;
      // As in plan(): an empty C (or beta 0) takes no part.
      if (a.size() == 2 && b.size() == 2 && cElements > 0) cShape(transA_ ? a[1] : a[0], transB_ ? b[0] : b[1], c);
    }
  }
  enum class CUse { Bias, Matrix };
  // How C enters the GEMM: a bias row ([N] or [1,N], beta 1) or a full [M,N] matrix.
  CUse cShape(int64_t m, int64_t n, const Shape& c) const {
    int64_t numel = 1;
    for (int64_t d : c) numel *= d;
    if (numel == n && beta_ == 1.f && (c.size() == 1 || c[0] == 1)) return CUse::Bias;
    if (numel == m * n) return CUse::Matrix;
    unsupported("Gemm C of shape " + shapeToString(c) + " (only [N] with beta 1 or [M,N])");
  }
  size_t workspaceBytes(const KernelContext& ctx) const override {
    tuneGemm(plan(ctx), kGemmWorkspaceBytes);
    return kGemmWorkspaceBytes;
  }
  void run(KernelContext& ctx) const override {
    runGemm(plan(ctx), exec(ctx).cublasLt, exec(ctx).stream, ctx.workspace, ctx.workspaceSize);
  }
  // The call for these shapes (pointers are null in a shape-only context).
  GemmCall plan(const KernelContext& ctx) const {
    const Tensor& a = *ctx.inputs[0];
    const Tensor& b = *ctx.inputs[1];
    Tensor& y = *ctx.outputs[0];
    GemmCall g;
    g.type = a.dtype;
    g.transA = transA_;
    g.transB = transB_;
    g.m = transA_ ? a.shape[1] : a.shape[0];
    g.k = transA_ ? a.shape[0] : a.shape[1];
    g.n = transB_ ? b.shape[0] : b.shape[1];
    g.a = in(ctx, 0);
    g.b = in(ctx, 1);
    g.d = y.data;
    g.alpha = alpha_;
    g.act = act_;
    g.tf32 = node_.getInt("kiln_tf32", 0) != 0;
    if (ctx.inputs.size() > 2 && ctx.inputs[2] != nullptr && ctx.inputs[2]->numel() > 0 && beta_ != 0.f) {
      if (cShape(g.m, g.n, ctx.inputs[2]->shape) == CUse::Bias) {
        g.bias = in(ctx, 2);
      } else {
        g.c = in(ctx, 2);
        g.hasC = true;
        g.beta = beta_;
      }
    }
    return g;
  }
  std::string name() const override { return "cuda.gemm.cublaslt"; }

 private:
  bool transA_ = false, transB_ = false;
  float alpha_ = 1.f, beta_ = 1.f;
  ActivationParams act_;
};

class MatMulKernel final : public CudaKernel {
 public:
  MatMulKernel(const KernelCreateInfo& info, bool fused) : CudaKernel(info) {
    if (!isFloatType(inputTypes_.at(0))) unsupported(std::string("type ") + dtypeName(inputTypes_[0]) + " (float32/float16 only)");
    if (fused) act_ = readActivationAttrs(node_);
    // Refused here when the shapes are known (a host layer then runs it) rather than at the first run.
    const SymShape& a = info.inputShapes.at(0);
    const SymShape& b = info.inputShapes.at(1);
    if ((a.hasRank && a.rank() < 2) || (b.hasRank && b.rank() < 2)) unsupported("MatMul with 1-D operands");
    if (a.isConcrete() && b.isConcrete()) batching(a.concrete(), b.concrete());
  }
  size_t workspaceBytes(const KernelContext& ctx) const override {
    tuneGemm(plan(ctx), kGemmWorkspaceBytes);
    return kGemmWorkspaceBytes;
  }
  void run(KernelContext& ctx) const override {
    runGemm(plan(ctx), exec(ctx).cublasLt, exec(ctx).stream, ctx.workspace, ctx.workspaceSize);
  }
  enum class Batching { SharedB, Strided };
  // B shared by every row block of A (one big GEMM), or equal batch dims on both (a strided batch).
  Batching batching(const Shape& a, const Shape& b) const {
    if (a.size() < 2 || b.size() < 2) unsupported("MatMul with 1-D operands");
    int64_t batchB = 1;
    for (size_t i = 0; i + 2 < b.size(); ++i) batchB *= b[i];
    if (batchB == 1) return Batching::SharedB;
    if (a.size() == b.size() && std::equal(a.begin(), a.end() - 2, b.begin())) return Batching::Strided;
    unsupported("broadcast batched MatMul " + shapeToString(a) + " x " + shapeToString(b));
  }
  GemmCall plan(const KernelContext& ctx) const {
    const Tensor& a = *ctx.inputs[0];
    const Tensor& b = *ctx.inputs[1];
    Tensor& y = *ctx.outputs[0];
    const Batching mode = batching(a.shape, b.shape);
    GemmCall g;
    g.type = a.dtype;
    g.a = in(ctx, 0);
    g.b = in(ctx, 1);
    g.d = y.data;
    g.act = act_;
    g.tf32 = node_.getInt("kiln_tf32", 0) != 0;
    if (ctx.inputs.size() > 2 && ctx.inputs[2] != nullptr) g.bias = in(ctx, 2);
    const size_t ra = a.shape.size(), rb = b.shape.size();
    g.k = a.shape[ra - 1];
    g.n = b.shape[rb - 1];
    int64_t batchA = 1;
    for (size_t i = 0; i + 2 < ra; ++i) batchA *= a.shape[i];
    if (mode == Batching::SharedB) {
      g.m = batchA * a.shape[ra - 2];  // B shared by every row block: one big GEMM
    } else {
      g.m = a.shape[ra - 2];
      g.batch = batchA;
      g.strideA = g.m * g.k;
      g.strideB = g.k * g.n;
      g.strideD = g.m * g.n;
    }
    return g;
  }
  std::string name() const override { return "cuda.matmul.cublaslt"; }

 private:
  ActivationParams act_;
};

std::unique_ptr<Kernel> makeGemm(const KernelCreateInfo& i) { return std::make_unique<GemmKernel>(i, false); }
std::unique_ptr<Kernel> makeFusedGemm(const KernelCreateInfo& i) { return std::make_unique<GemmKernel>(i, true); }
std::unique_ptr<Kernel> makeMatMul(const KernelCreateInfo& i) { return std::make_unique<MatMulKernel>(i, false); }
std::unique_ptr<Kernel> makeFusedMatMul(const KernelCreateInfo& i) { return std::make_unique<MatMulKernel>(i, true); }

}  // namespace

KILN_REGISTER_KERNEL(CudaGemm, (KernelDef{"cuda", "", "Gemm", 7, makeGemm}));
KILN_REGISTER_KERNEL(CudaFusedGemm, (KernelDef{"cuda", "kiln", "FusedGemm", 1, makeFusedGemm}));
KILN_REGISTER_KERNEL(CudaMatMul, (KernelDef{"cuda", "", "MatMul", 1, makeMatMul}));
KILN_REGISTER_KERNEL(CudaFusedMatMul, (KernelDef{"cuda", "kiln", "FusedMatMul", 1, makeFusedMatMul}));

}  // namespace kiln::cuda
