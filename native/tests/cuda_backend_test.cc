// The CUDA backend against the CPU reference (GPU machine only: kiln_cuda_tests, run by
// native/scripts/gpu-test.sh). Every model is built twice from the same ONNX bytes, for "cpu" at
// fp32 and for "cuda" at fp32 and fp16, serialized, loaded and run on the same inputs; outputs
// must agree within the precision's tolerance. Models cover every CUDA kernel: fused convolution
// with residual, pooling, GEMM epilogues, batched MatMul, attention, LayerNorm, Softmax, the
// elementwise families, Cast/Where/Gather/Concat/Expand/Transpose and the view ops. Also: engine
// identity (sm arch and library versions) and the mismatch error, exact device memory, CUDA graph
// replay, concurrent contexts and input errors. INT8: calibrated engines (entropy, percentile,
// minmax) against the CPU FP32 reference with the report's per-layer precision, the FP16 fallback
// of layers over the error bound, the error without calibration data, a Q/DQ model honoured without
// calibration; and a TF32 fp32 build.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>

#include "backends/cuda/implicit_gemm_conv.h"
#include "backends/cuda/timing_cache.h"
#include "core/error.h"
#include "compute_harness.h"
#include "onnx_builder.h"
#include "plan/serialize.h"
#include "runtime/api.h"
#include "test.h"

using namespace kiln;
using onnx_builder::Attr;
using onnx_builder::ModelBuilder;

namespace {

std::vector<float> randomValues(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

Tensor floatTensor(const Shape& shape, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  Tensor t = Tensor::allocate(DType::Float32, shape);
  std::vector<float> v = randomValues(t.numel(), seed, lo, hi);
  std::memcpy(t.data, v.data(), v.size() * sizeof(float));
  return t;
}

using Inputs = std::vector<std::pair<std::string, Tensor>>;

std::vector<Tensor> runOn(const std::vector<uint8_t>& model, const std::string& backend, Precision precision,
                          const Inputs& inputs, const std::vector<Profile>& profiles = {}) {
  BuildOptions options;
  options.backend = backend;
  options.precision = precision;
  options.profiles = profiles;
  BuildResult built = buildEngine(model.data(), model.size(), options);
  std::shared_ptr<Engine> engine = Engine::load(built.engine.data(), built.engine.size());
  std::unique_ptr<ExecutionContext> ctx = engine->createContext();
  RunResult r = ctx->run(inputs);
  if (backend == "cuda") {
    EXPECT_TRUE(r.gpuMs >= 0);
    // A second run replays the captured CUDA graph: identical results.
    RunResult again = ctx->run(inputs);
    for (size_t i = 0; i < r.outputs.size(); ++i) {
      EXPECT_TRUE(std::memcmp(r.outputs[i].second.data, again.outputs[i].second.data, r.outputs[i].second.byteSize()) == 0);
    }
  }
  std::vector<Tensor> out;
  for (auto& [name, t] : r.outputs) out.push_back(std::move(t));
  return out;
}

double asDouble(const Tensor& t, int64_t i) { return t.scalarAsDouble(i); }

// |got - want| <= atol + rtol * max|want| over the whole tensor (a relative error of the output's
// scale, which is what fp16 accuracy means for a layer's output).
void expectClose(const Tensor& got, const Tensor& want, double rtol, const std::string& what) {
  if (got.shape != want.shape)
    throw kiln_test::Failure(what + ": shape " + shapeToString(got.shape) + " != " + shapeToString(want.shape));
  if (got.dtype != want.dtype) throw kiln_test::Failure(what + ": dtype " + dtypeName(got.dtype) + " != " + dtypeName(want.dtype));
  double scale = 0;
  for (int64_t i = 0; i < want.numel(); ++i) scale = std::max(scale, std::fabs(asDouble(want, i)));
  const double tol = rtol * std::max(scale, 1e-3);
  for (int64_t i = 0; i < want.numel(); ++i) {
    double g = asDouble(got, i), w = asDouble(want, i);
    if (!(std::fabs(g - w) <= tol))
      throw kiln_test::Failure(what + ": element " + std::to_string(i) + " got " + std::to_string(g) + " want " +
                               std::to_string(w) + " (tolerance " + std::to_string(tol) + ")");
  }
}

// Builds on cpu (fp32) and cuda (fp32, fp16) and compares every output.
void compareBackends(const std::vector<uint8_t>& model, const Inputs& inputs, const std::string& what,
                     double fp32Tol = 1e-4, double fp16Tol = 1e-2, const std::vector<Profile>& profiles = {}) {
  std::vector<Tensor> ref = runOn(model, "cpu", Precision::Fp32, inputs, profiles);
  std::vector<Tensor> f32 = runOn(model, "cuda", Precision::Fp32, inputs, profiles);
  EXPECT_EQ(ref.size(), f32.size());
  for (size_t i = 0; i < ref.size(); ++i) expectClose(f32[i], ref[i], fp32Tol, what + " fp32 output " + std::to_string(i));
  if (fp16Tol > 0) {
    std::vector<Tensor> f16 = runOn(model, "cuda", Precision::Fp16, inputs, profiles);
    for (size_t i = 0; i < ref.size(); ++i) expectClose(f16[i], ref[i], fp16Tol, what + " fp16 output " + std::to_string(i));
  }
}

template <class T>
std::vector<T> filled(size_t n, T v) { return std::vector<T>(n, v); }

using kiln_test::ScopedEnv;

// A ResNet-style block: conv+bn-folded bias+relu, 3x3 conv, residual add, relu, 1x1 conv with
// residual, grouped strided conv + sigmoid, max pool, average pool, global average pool, flatten,
// fully connected layer.
std::vector<uint8_t> resnetBlock() {
  ModelBuilder m;
  m.input("x", DType::Float32, {2, 8, 16, 16});
  m.initializer("w1", DType::Float32, {8, 8, 1, 1}, randomValues(64, 1, -0.4f, 0.4f));
  m.initializer("b1", DType::Float32, {8}, randomValues(8, 2));
  m.initializer("w2", DType::Float32, {8, 8, 3, 3}, randomValues(576, 3, -0.2f, 0.2f));
  m.initializer("b2", DType::Float32, {8}, randomValues(8, 4));
  m.initializer("w3", DType::Float32, {8, 8, 1, 1}, randomValues(64, 7, -0.4f, 0.4f));
  m.initializer("b3", DType::Float32, {8}, randomValues(8, 8));
  m.initializer("wd", DType::Float32, {8, 2, 3, 3}, randomValues(144, 9, -0.3f, 0.3f));
  m.initializer("fc", DType::Float32, {10, 8}, randomValues(80, 5));
  m.initializer("fcb", DType::Float32, {10}, randomValues(10, 6));
  m.node("Conv", {"x", "w1", "b1"}, {"c1"}, {Attr::ints("pads", {0, 0, 0, 0})});
  m.node("Relu", {"c1"}, {"r1"});
  m.node("Conv", {"r1", "w2", "b2"}, {"c2"}, {Attr::ints("pads", {1, 1, 1, 1})});
  m.node("Add", {"c2", "x"}, {"s"});
  m.node("Relu", {"s"}, {"r2"});
  // A 1x1 bottleneck conv with a residual: a GEMM with bias, residual and ReLU in the epilogue.
  m.node("Conv", {"r2", "w3", "b3"}, {"c3"});
  m.node("Add", {"r2", "c3"}, {"s3"});
  m.node("Relu", {"s3"}, {"r3"});
  m.node("Conv", {"r3", "wd"}, {"g"}, {Attr::ints("pads", {1, 1, 1, 1}), Attr::i("group", 4), Attr::ints("strides", {2, 2})});
  m.node("Sigmoid", {"g"}, {"gs"});
  m.node("MaxPool", {"gs"}, {"p"}, {Attr::ints("kernel_shape", {3, 3}), Attr::ints("strides", {2, 2}), Attr::ints("pads", {1, 1, 1, 1})});
  m.node("AveragePool", {"p"}, {"ap"}, {Attr::ints("kernel_shape", {2, 2}), Attr::ints("strides", {1, 1})});
  m.node("GlobalAveragePool", {"ap"}, {"gap"});
  m.node("Flatten", {"gap"}, {"f"});
  m.node("Gemm", {"f", "fc", "fcb"}, {"y"}, {Attr::i("transB", 1)});
  m.output("y", DType::Float32, {2, 10});
  return m.bytes();
}

// A transformer encoder layer as exported from PyTorch: QKV projections, heads split with
// Reshape/Transpose, scaled scores + additive mask, Softmax, context, output projection, residual,
// LayerNorm, GELU feed-forward.
std::vector<uint8_t> encoderLayer(int64_t seq, int64_t hidden, int64_t heads) {
  const int64_t d = hidden / heads;
  ModelBuilder m;
  m.input("x", DType::Float32, {"batch", seq, hidden});
  m.input("mask", DType::Int64, {"batch", seq});
  auto weight = [&](const std::string& name, int64_t rows, int64_t cols, uint32_t seed) {
    m.initializer(name, DType::Float32, {rows, cols}, randomValues(rows * cols, seed, -0.15f, 0.15f));
  };
  auto vec = [&](const std::string& name, int64_t n, uint32_t seed, float lo = -0.1f, float hi = 0.1f) {
    m.initializer(name, DType::Float32, {n}, randomValues(n, seed, lo, hi));
  };
  weight("wq", hidden, hidden, 11), weight("wk", hidden, hidden, 12), weight("wv", hidden, hidden, 13);
  weight("wo", hidden, hidden, 14), weight("w1", hidden, 4 * hidden, 15), weight("w2", 4 * hidden, hidden, 16);
  vec("bq", hidden, 21), vec("bk", hidden, 22), vec("bv", hidden, 23), vec("bo", hidden, 24);
  vec("b1", 4 * hidden, 25), vec("b2", hidden, 26);
  vec("g1", hidden, 27, 0.8f, 1.2f), vec("be1", hidden, 28), vec("g2", hidden, 29, 0.8f, 1.2f), vec("be2", hidden, 30);
  m.initializer("split", DType::Int64, {4}, std::vector<int64_t>{0, seq, heads, d});
  m.initializer("merge", DType::Int64, {3}, std::vector<int64_t>{0, seq, hidden});
  m.initializer("scale", DType::Float32, {}, std::vector<float>{1.f / std::sqrt(float(d))});
  m.initializer("one", DType::Float32, {}, std::vector<float>{1.f});
  m.initializer("neg", DType::Float32, {}, std::vector<float>{-10000.f});
  m.initializer("axes12", DType::Int64, {2}, std::vector<int64_t>{1, 2});
  auto proj = [&](const std::string& w, const std::string& b, const std::string& in, const std::string& out) {
    m.node("MatMul", {in, w}, {out + "_mm"});
    m.node("Add", {out + "_mm", b}, {out});
  };
  proj("wq", "bq", "x", "q"), proj("wk", "bk", "x", "k"), proj("wv", "bv", "x", "v");
  for (const char* t : {"q", "k", "v"}) {
    m.node("Reshape", {t, "split"}, {std::string(t) + "_r"});
    m.node("Transpose", {std::string(t) + "_r"}, {std::string(t) + "_h"},
           {Attr::ints("perm", std::string(t) == "k" ? std::vector<int64_t>{0, 2, 3, 1} : std::vector<int64_t>{0, 2, 1, 3})});
  }
  m.node("Unsqueeze", {"mask", "axes12"}, {"mask4"});
  m.node("Cast", {"mask4"}, {"maskf"}, {Attr::i("to", 1)});
  m.node("Sub", {"one", "maskf"}, {"inv"});
  m.node("Mul", {"inv", "neg"}, {"bias"});
  m.node("MatMul", {"q_h", "k_h"}, {"scores"});
  m.node("Mul", {"scores", "scale"}, {"scaled"});
  m.node("Add", {"scaled", "bias"}, {"masked"});
  m.node("Softmax", {"masked"}, {"probs"}, {Attr::i("axis", -1)});
  m.node("MatMul", {"probs", "v_h"}, {"ctx"});
  m.node("Transpose", {"ctx"}, {"ctx_t"}, {Attr::ints("perm", {0, 2, 1, 3})});
  m.node("Reshape", {"ctx_t", "merge"}, {"ctx_m"});
  proj("wo", "bo", "ctx_m", "attn");
  m.node("Add", {"attn", "x"}, {"res1"});
  m.node("LayerNormalization", {"res1", "g1", "be1"}, {"ln1"}, {Attr::i("axis", -1), Attr::f("epsilon", 1e-12f)});
  proj("w1", "b1", "ln1", "ff1");
  m.node("Gelu", {"ff1"}, {"act"});
  proj("w2", "b2", "act", "ff2");
  m.node("Add", {"ff2", "ln1"}, {"res2"});
  m.node("LayerNormalization", {"res2", "g2", "be2"}, {"y"}, {Attr::i("axis", -1), Attr::f("epsilon", 1e-12f)});
  m.output("y", DType::Float32, {"batch", seq, hidden});
  m.opset("", 20);
  return m.bytes();
}

Inputs encoderInputs(int64_t batch, int64_t seq, int64_t hidden) {
  Tensor mask = Tensor::allocate(DType::Int64, {batch, seq});
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t s = 0; s < seq; ++s) mask.ptr<int64_t>()[b * seq + s] = s < seq - 3 * b ? 1 : 0;
  }
  return {{"x", floatTensor({batch, seq, hidden}, 7)}, {"mask", mask}};
}

// Loads the engine and runs input x twice (the second run replays the captured CUDA graph: the same
// bytes); returns the first output.
Tensor runBuilt(const BuildResult& built, const Tensor& x) {
  std::shared_ptr<Engine> engine = Engine::load(built.engine.data(), built.engine.size());
  std::unique_ptr<ExecutionContext> ctx = engine->createContext();
  RunResult r = ctx->run({{"x", x}});
  RunResult again = ctx->run({{"x", x}});
  EXPECT_TRUE(std::memcmp(r.outputs[0].second.data, again.outputs[0].second.data, r.outputs[0].second.byteSize()) == 0);
  return std::move(r.outputs[0].second);
}

// Layers whose kernel name contains `part` ("implicit_gemm", ...).
int countKernels(const BuildReport& report, const std::string& part) {
  int n = 0;
  for (const LayerReport& l : report.layers) n += l.kernel.find(part) != std::string::npos;
  return n;
}

}  // namespace

KILN_TEST(cuda, engine_identity_names_arch_and_libraries) {
  std::vector<uint8_t> model = resnetBlock();
  BuildOptions options;
  options.backend = "cuda";
  BuildResult built = buildEngine(model.data(), model.size(), options);
  std::shared_ptr<Engine> engine = Engine::load(built.engine.data(), built.engine.size());
  EXPECT_TRUE(engine->target().rfind("cuda-sm", 0) == 0);
  EngineIdentity id = readEngineIdentity(built.engine.data(), built.engine.size());
  EXPECT_TRUE(id.libraryVersions.find("cuda=") != std::string::npos);
  EXPECT_TRUE(id.libraryVersions.find("cublas=") != std::string::npos);
  EXPECT_TRUE(id.libraryVersions.find("cudnn=") != std::string::npos);
  // Another GPU or another cuDNN: refused, naming both sides.
  EngineIdentity other = id;
  other.target = "cuda-sm80";
  other.libraryVersions = "cuda=12.4;cublas=12.4;cudnn=8.9";
  try {
    checkEngineCompatible(other, id);
    throw kiln_test::Failure("a cuda-sm80 engine was accepted");
  } catch (const KilnError& e) {
    EXPECT_TRUE(e.code() == ErrorCode::EngineMismatch);
    const std::string msg = e.what();
    EXPECT_TRUE(msg.find("cuda-sm80") != std::string::npos);
    EXPECT_TRUE(msg.find(id.target) != std::string::npos);
    EXPECT_TRUE(msg.find("cudnn=8.9") != std::string::npos);
  }
}

KILN_TEST(cuda, resnet_block_matches_cpu) {
  {
    // fp16: the float32 input is cast and transposed into the NHWC region by one kernel, and the
    // max pool runs on Kiln's vectorized kernel (8 channels).
    BuildOptions options;
    options.backend = "cuda";
    options.precision = Precision::Fp16;
    std::vector<uint8_t> model = resnetBlock();
    BuildResult built = buildEngine(model.data(), model.size(), options);
    int castToNhwc = 0, transposes = 0, casts = 0;
    for (const LayerReport& l : built.report.layers) {
      castToNhwc += l.opType == "kiln.CudaCastToNhwc";
      transposes += l.opType == "Transpose";
      casts += l.opType == "Cast";
    }
    EXPECT_EQ(castToNhwc, 1);
    EXPECT_EQ(transposes, 0);
    EXPECT_EQ(casts, 1);  // the output back to float32
    EXPECT_EQ(countKernels(built.report, "maxpool_nhwc.vec8"), 1);
  }
  compareBackends(resnetBlock(), {{"x", floatTensor({2, 8, 16, 16}, 42)}}, "resnet block");
  ScopedEnv cudnnPooling("KILN_CUDA_POOL", "cudnn");
  compareBackends(resnetBlock(), {{"x", floatTensor({2, 8, 16, 16}, 42)}}, "resnet block (cuDNN pooling)", 1e-4, 1e-2);
}

KILN_TEST(cuda, encoder_layer_matches_cpu_with_dynamic_batch) {
  const int64_t seq = 24, hidden = 64, heads = 4;
  Profile p;
  p.min["x"] = {1, seq, hidden}, p.opt["x"] = {2, seq, hidden}, p.max["x"] = {4, seq, hidden};
  p.min["mask"] = {1, seq}, p.opt["mask"] = {2, seq}, p.max["mask"] = {4, seq};
  std::vector<uint8_t> model = encoderLayer(seq, hidden, heads);
  {
    // The CUDA lowering reads the heads in place and fuses the residual into LayerNorm.
    BuildOptions options;
    options.backend = "cuda";
    options.profiles = {p};
    BuildResult built = buildEngine(model.data(), model.size(), options);
    int attention = 0, transposes = 0, addNorm = 0, matmuls = 0, reshapes = 0;
    for (const LayerReport& l : built.report.layers) {
      attention += l.opType == "kiln.CudaAttention";
      transposes += l.opType == "Transpose";
      addNorm += l.opType == "kiln.CudaAddLayerNorm";
      matmuls += l.opType == "kiln.FusedMatMul";
      reshapes += l.opType == "Reshape";
    }
    EXPECT_EQ(attention, 1);
    EXPECT_EQ(transposes, 0);
    EXPECT_EQ(addNorm, 2);
    // Q, K and V come from one packed projection (the attention reads its column blocks), then the
    // output projection and the two feed-forward GEMMs; only the heads' merge stays a Reshape.
    EXPECT_EQ(matmuls, 4);
    EXPECT_EQ(reshapes, 1);
  }
  compareBackends(model, encoderInputs(3, seq, hidden), "encoder layer", 1e-4, 1e-2, {p});
  compareBackends(model, encoderInputs(1, seq, hidden), "encoder layer batch 1", 1e-4, 0, {p});
}

KILN_TEST(cuda, elementwise_families_match_cpu) {
  ModelBuilder m;
  m.input("a", DType::Float32, {3, 4, 5});
  m.input("b", DType::Float32, {4, 1});
  m.initializer("c", DType::Float32, {5}, randomValues(5, 3, 0.5f, 2.f));
  m.initializer("idx", DType::Int64, {2, 2}, std::vector<int64_t>{2, 0, -1, 1});
  m.initializer("shape", DType::Int64, {4}, std::vector<int64_t>{2, 3, 4, 5});
  const char* unary[] = {"Sigmoid", "Tanh", "Exp", "Neg", "Abs", "Erf", "Relu", "Reciprocal"};
  std::vector<std::string> outs;
  for (const char* op : unary) {
    m.node(op, {"a"}, {std::string("u_") + op});
    outs.push_back(std::string("u_") + op);
  }
  m.node("Abs", {"a"}, {"absa"});
  m.node("Sqrt", {"absa"}, {"u_Sqrt"});
  m.node("Log", {"c"}, {"u_Log"});
  m.node("LeakyRelu", {"a"}, {"u_Leaky"}, {Attr::f("alpha", 0.2f)});
  m.node("HardSigmoid", {"a"}, {"u_HardSigmoid"});
  m.node("HardSwish", {"a"}, {"u_HardSwish"});
  outs.insert(outs.end(), {"u_Sqrt", "u_Log", "u_Leaky", "u_HardSigmoid", "u_HardSwish"});
  for (const char* op : {"Add", "Sub", "Mul", "Div"}) {
    m.node(op, {"a", "b"}, {std::string("b_") + op});
    outs.push_back(std::string("b_") + op);
  }
  m.node("Pow", {"c", "b"}, {"b_Pow"});
  // Negative bases with whole exponents (an expanded tanh-GELU's x^3): exact, not fast-math NaN.
  m.initializer("three", DType::Float32, {}, std::vector<float>{3.f});
  m.node("Pow", {"a", "three"}, {"b_PowCube"});
  m.node("Greater", {"a", "b"}, {"gt"});
  m.node("Where", {"gt", "a", "c"}, {"w"});
  m.node("Cast", {"gt"}, {"gtf"}, {Attr::i("to", 1)});
  m.node("Gather", {"a", "idx"}, {"g"}, {Attr::i("axis", 1)});
  m.node("Concat", {"a", "a"}, {"cat"}, {Attr::i("axis", 1)});
  m.node("Expand", {"b", "shape"}, {"e"});
  m.node("Transpose", {"a"}, {"t"}, {Attr::ints("perm", {2, 0, 1})});
  m.node("Softmax", {"a"}, {"sm"}, {Attr::i("axis", -1)});
  outs.insert(outs.end(), {"b_Pow", "b_PowCube", "w", "gtf", "g", "cat", "e", "t", "sm"});
  for (const std::string& o : outs) m.output(o);
  std::vector<uint8_t> model = m.bytes();
  compareBackends(model, {{"a", floatTensor({3, 4, 5}, 1, -2.f, 2.f)}, {"b", floatTensor({4, 1}, 2, 0.5f, 1.5f)}},
                  "elementwise", 1e-5, 1e-2);
}

// LayerNorm widths that take each kernel: whole 16-byte vectors (one per thread, fp16 8 / fp32 4
// per vector), widths that are not (the strided block kernel), and rows longer than 1024 vectors.
// The residual Add before the first LayerNorm is fused into it by the CUDA lowering.
KILN_TEST(cuda, layernorm_widths_match_cpu) {
  for (int64_t cols : {8, 768, 1000, 30, 4104, 9000}) {
    ModelBuilder m;
    m.input("x", DType::Float32, {3, 5, cols});
    m.input("r", DType::Float32, {3, 5, cols});
    m.initializer("g", DType::Float32, {cols}, randomValues(size_t(cols), 7, 0.8f, 1.2f));
    m.initializer("b", DType::Float32, {cols}, randomValues(size_t(cols), 8, -0.1f, 0.1f));
    m.node("Add", {"x", "r"}, {"s"});
    m.node("LayerNormalization", {"s", "g", "b"}, {"y"}, {Attr::i("axis", -1), Attr::f("epsilon", 1e-5f)});
    m.node("LayerNormalization", {"x", "g"}, {"y2"}, {Attr::i("axis", -1), Attr::f("epsilon", 1e-5f)});
    m.output("y");
    m.output("y2");
    m.opset("", 17);
    compareBackends(m.bytes(), {{"x", floatTensor({3, 5, cols}, 1, -2.f, 3.f)}, {"r", floatTensor({3, 5, cols}, 2)}},
                    "layernorm" + std::to_string(cols), 1e-4, 2e-2);
  }
}

// A 3-channel stem convolution (7x7, stride 2) in fp16: with input and weights padded to 8
// channels for cuDNN's tensor-core kernels and without, whichever the timing would pick.
KILN_TEST(cuda, few_channel_convolution_padded_or_not_matches_cpu) {
  ModelBuilder m;
  m.input("x", DType::Float32, {2, 3, 30, 30});
  m.initializer("w", DType::Float32, {16, 3, 7, 7}, randomValues(16 * 147, 61, -0.2f, 0.2f));
  m.initializer("b", DType::Float32, {16}, randomValues(16, 62, -0.1f, 0.1f));
  m.node("Conv", {"x", "w", "b"}, {"c"}, {Attr::ints("pads", {3, 3, 3, 3}), Attr::ints("strides", {2, 2})});
  m.node("Relu", {"c"}, {"y"});
  m.output("y");
  m.opset("", 17);
  std::vector<uint8_t> model = m.bytes();
  for (const char* mode : {"always", "never"}) {
    ScopedEnv pad("KILN_CUDA_CONV_PAD", mode);
    compareBackends(model, {{"x", floatTensor({2, 3, 30, 30}, 63)}}, std::string("stem conv, padding ") + mode, 1e-4, 1e-2);
  }
}

// fp16 convolutions on Kiln's implicit GEMM (opt-in: KILN_CUDA_CONV_IMPLICIT) and on cuDNN: a padded
// 3-channel stem, a strided 3x3 with 40 output channels, a 3x3 with a residual and ReLU, and a
// dilated one without bias or activation.
KILN_TEST(cuda, implicit_gemm_fp16_convolution_matches_cpu) {
  ModelBuilder m;
  m.input("x", DType::Float32, {2, 3, 19, 17});
  m.initializer("w1", DType::Float32, {16, 3, 7, 7}, randomValues(16 * 147, 71, -0.2f, 0.2f));
  m.initializer("b1", DType::Float32, {16}, randomValues(16, 72, -0.1f, 0.1f));
  m.initializer("w2", DType::Float32, {40, 16, 3, 3}, randomValues(40 * 144, 73, -0.15f, 0.15f));
  m.initializer("b2", DType::Float32, {40}, randomValues(40, 74, -0.1f, 0.1f));
  m.initializer("w3", DType::Float32, {40, 40, 3, 3}, randomValues(40 * 360, 75, -0.1f, 0.1f));
  m.initializer("b3", DType::Float32, {40}, randomValues(40, 76, -0.1f, 0.1f));
  m.initializer("w4", DType::Float32, {24, 40, 3, 3}, randomValues(24 * 360, 77, -0.1f, 0.1f));
  m.node("Conv", {"x", "w1", "b1"}, {"c1"}, {Attr::ints("pads", {3, 3, 3, 3})});
  m.node("Relu", {"c1"}, {"r1"});
  m.node("Conv", {"r1", "w2", "b2"}, {"c2"}, {Attr::ints("pads", {1, 1, 1, 1}), Attr::ints("strides", {2, 2})});
  m.node("Relu", {"c2"}, {"r2"});
  m.node("Conv", {"r2", "w3", "b3"}, {"c3"}, {Attr::ints("pads", {1, 1, 1, 1})});
  m.node("Add", {"c3", "r2"}, {"s3"});
  m.node("Relu", {"s3"}, {"r3"});
  m.node("Conv", {"r3", "w4"}, {"c4"}, {Attr::ints("pads", {2, 2, 2, 2}), Attr::ints("dilations", {2, 2})});
  // The NHWC region (where the implicit GEMM runs) needs an exit: GlobalAveragePool.
  m.node("GlobalAveragePool", {"c4"}, {"y"});
  m.output("y");
  m.opset("", 17);
  const std::vector<uint8_t> model = m.bytes();
  const Tensor x = floatTensor({2, 3, 19, 17}, 78);
  const std::vector<Tensor> ref = runOn(model, "cpu", Precision::Fp32, {{"x", x}});
  // Every tile shape, then cuDNN only ("never": any value but timed/always).
  for (int tile = 0; tile <= cuda::kImplicitGemmTiles; ++tile) {
    const bool implicit = tile < cuda::kImplicitGemmTiles;
    ScopedEnv mode("KILN_CUDA_CONV_IMPLICIT", implicit ? "always" : "never");
    ScopedEnv forced("KILN_CUDA_IMPLICIT_TILE", implicit ? std::to_string(tile).c_str() : "");
    BuildOptions options;
    options.backend = "cuda";
    options.precision = Precision::Fp16;
    BuildResult built = buildEngine(model.data(), model.size(), options);
    EXPECT_EQ(countKernels(built.report, "implicit_gemm"), implicit ? 4 : 0);
    expectClose(runBuilt(built, x), ref[0], 1e-2,
                implicit ? "fp16 convolutions, implicit GEMM tile " + std::to_string(tile) : std::string("fp16 on cuDNN"));
  }
}

KILN_TEST(cuda, fp16_engine_keeps_float32_signature_and_exact_memory) {
  std::vector<uint8_t> model = resnetBlock();
  BuildOptions options;
  options.backend = "cuda";
  options.precision = Precision::Fp16;
  BuildResult built = buildEngine(model.data(), model.size(), options);
  std::shared_ptr<Engine> engine = Engine::load(built.engine.data(), built.engine.size());
  EXPECT_TRUE(engine->precision() == Precision::Fp16);
  EXPECT_TRUE(engine->inputs()[0].dtype == DType::Float32);
  EXPECT_TRUE(engine->outputs()[0].dtype == DType::Float32);
  EXPECT_EQ(built.report.peakMemoryBytes, engine->deviceMemoryBytes());
  // fp16 convolutions run in NHWC: one transpose in, every conv and pool converted.
  int nhwc = 0, nchwConvs = 0;
  for (const LayerReport& l : built.report.layers) {
    nhwc += l.opType.find("NHWC") != std::string::npos;
    nchwConvs += l.opType == "kiln.FusedConv" || l.opType == "Conv";
  }
  EXPECT_TRUE(nhwc >= 7);
  bool gemmConv = false;
  for (const LayerReport& l : built.report.layers) gemmConv = gemmConv || l.kernel == "cuda.conv_nhwc.1x1_cublaslt";
  EXPECT_TRUE(gemmConv);
  EXPECT_EQ(nchwConvs, 0);
  std::unique_ptr<ExecutionContext> ctx = engine->createContext();
  RunResult first = ctx->run({{"x", floatTensor({2, 8, 16, 16}, 3)}});
  EXPECT_TRUE(first.gpuMs >= 0);
  // Out-of-profile shapes are refused before anything runs.
  try {
    ctx->run({{"x", floatTensor({2, 8, 16, 17}, 3)}});
    throw kiln_test::Failure("a wrong shape was accepted");
  } catch (const KilnError& e) {
    EXPECT_TRUE(e.code() == ErrorCode::ShapeMismatch);
  }
}

KILN_TEST(cuda, concurrent_contexts_share_weights) {
  std::vector<uint8_t> model = resnetBlock();
  BuildOptions options;
  options.backend = "cuda";
  BuildResult built = buildEngine(model.data(), model.size(), options);
  std::shared_ptr<Engine> engine = Engine::load(built.engine.data(), built.engine.size());
  Tensor x = floatTensor({2, 8, 16, 16}, 5);
  std::vector<float> want;
  {
    std::unique_ptr<ExecutionContext> ctx = engine->createContext();
    Tensor y = ctx->run({{"x", x}}).outputs[0].second;
    want.assign(y.ptr<float>(), y.ptr<float>() + y.numel());
  }
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::unique_ptr<ExecutionContext> ctx = engine->createContext();
      bool same = true;
      for (int i = 0; i < 20; ++i) {
        Tensor y = ctx->run({{"x", x}}).outputs[0].second;
        same = same && std::memcmp(y.data, want.data(), want.size() * sizeof(float)) == 0;
      }
      ok[t] = same ? 1 : 0;
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(ok[t], 1);
}

KILN_TEST(cuda, attention_over_several_key_tiles_matches_cpu) {
  // 150 keys: three 64-key tiles, the last one partial, and head size 64 (the tensor-core path in
  // fp16); padding masks differ per batch row.
  const int64_t seq = 150, hidden = 128, heads = 2;
  Profile p;
  p.min["x"] = p.opt["x"] = p.max["x"] = {2, seq, hidden};
  p.min["mask"] = p.opt["mask"] = p.max["mask"] = {2, seq};
  std::vector<uint8_t> model = encoderLayer(seq, hidden, heads);
  compareBackends(model, encoderInputs(2, seq, hidden), "long attention", 1e-4, 1e-2, {p});
  // Every kernel and block width of the tensor-core kernel (this small grid picks one warp).
  for (const char* mode : {"warp", "tc1", "tc2", "tc4"}) {
    setenv("KILN_CUDA_ATTENTION", mode, 1);
    try {
      compareBackends(model, encoderInputs(2, seq, hidden), std::string("long attention (") + mode + ")", 1e-4, 1e-2, {p});
    } catch (...) {
      unsetenv("KILN_CUDA_ATTENTION");
      throw;
    }
  }
  unsetenv("KILN_CUDA_ATTENTION");
}

KILN_TEST(cuda, attention_head_sizes_match_cpu) {
  // The tensor-core kernel is compiled for head-dim capacities 32, 64 and 128: 128 fills the
  // largest, 48 and 8 are zero-padded inside it, and 12 (rows not whole 16-byte vectors) loads
  // element by element. 40 keys leave most of one tile masked off by the key bound (with four key
  // splits, some warps see no key at all). Every block shape: row groups x key splits.
  struct Case {
    int64_t hidden, heads, seq;
  };
  for (const Case c : {Case{256, 2, 130}, Case{96, 2, 40}, Case{16, 2, 40}, Case{24, 2, 33}}) {
    Profile p;
    p.min["x"] = p.opt["x"] = p.max["x"] = {2, c.seq, c.hidden};
    p.min["mask"] = p.opt["mask"] = p.max["mask"] = {2, c.seq};
    std::vector<uint8_t> model = encoderLayer(c.seq, c.hidden, c.heads);
    const std::string what = "attention, head size " + std::to_string(c.hidden / c.heads);
    for (const char* mode : {"tc1", "tc2", "tc4", "tc1x2", "tc1x4", "tc2x2"}) {
      ScopedEnv kernel("KILN_CUDA_ATTENTION", mode);
      compareBackends(model, encoderInputs(2, c.seq, c.hidden), what + " (" + mode + ")", 1e-4, 1e-2, {p});
    }
  }
}

KILN_TEST(cuda, gemm_and_matmul_variants_match_cpu) {
  // Batched MatMul with equal batch dims (strided batches), a 3-D x 2-D MatMul (batch folded into
  // M), Gemm with transA/transB, alpha and a full [M,N] C followed by ReLU (C before the activation
  // in cuBLASLt's epilogue), and Gemm with a [N] bias and beta 1.
  ModelBuilder m;
  m.input("a", DType::Float32, {2, 3, 4, 5});
  m.input("b", DType::Float32, {2, 3, 5, 6});
  m.input("x", DType::Float32, {7, 4, 5});
  m.input("g", DType::Float32, {12, 7});
  m.initializer("w", DType::Float32, {5, 9}, randomValues(45, 31));
  m.initializer("gw", DType::Float32, {9, 12}, randomValues(108, 32));
  m.initializer("gc", DType::Float32, {7, 9}, randomValues(63, 33));
  m.initializer("gb", DType::Float32, {9}, randomValues(9, 34));
  m.node("MatMul", {"a", "b"}, {"ab"});
  m.node("MatMul", {"x", "w"}, {"xw"});
  m.node("Gemm", {"g", "gw", "gc"}, {"gemm"}, {Attr::i("transA", 1), Attr::i("transB", 1), Attr::f("alpha", 0.5f), Attr::f("beta", 0.75f)});
  m.node("Relu", {"gemm"}, {"gemm_relu"});
  m.node("Gemm", {"g", "gw", "gb"}, {"gemm_bias"}, {Attr::i("transA", 1), Attr::i("transB", 1)});
  for (const char* o : {"ab", "xw", "gemm_relu", "gemm_bias"}) m.output(o);
  compareBackends(m.bytes(),
                  {{"a", floatTensor({2, 3, 4, 5}, 41)}, {"b", floatTensor({2, 3, 5, 6}, 42)},
                   {"x", floatTensor({7, 4, 5}, 43)}, {"g", floatTensor({12, 7}, 44)}},
                  "gemm variants", 1e-4, 1e-2);
}

// ---- INT8 and TF32 ---------------------------------------------------------------------------

namespace {

// A small convolutional classifier: a 3-channel stem (im2col of a channel count that is not a
// multiple of 4), a strided 3x3, a 3x3 with a residual, max pooling between INT8 layers, a 1x1
// (direct GEMM), global average pooling and a fully connected layer (fp16).
std::vector<uint8_t> int8Net(int64_t batch) {
  ModelBuilder m;
  m.input("x", DType::Float32, {batch, 3, 32, 32});
  m.initializer("w1", DType::Float32, {16, 3, 3, 3}, randomValues(16 * 27, 101, -0.4f, 0.4f));
  m.initializer("b1", DType::Float32, {16}, randomValues(16, 102, 0.f, 0.2f));
  m.initializer("w2", DType::Float32, {32, 16, 3, 3}, randomValues(32 * 144, 103, -0.15f, 0.15f));
  m.initializer("b2", DType::Float32, {32}, randomValues(32, 104, 0.f, 0.2f));
  m.initializer("w3", DType::Float32, {32, 32, 3, 3}, randomValues(32 * 288, 105, -0.1f, 0.1f));
  m.initializer("b3", DType::Float32, {32}, randomValues(32, 106, -0.1f, 0.1f));
  m.initializer("w4", DType::Float32, {16, 32, 1, 1}, randomValues(16 * 32, 107, -0.3f, 0.3f));
  m.initializer("b4", DType::Float32, {16}, randomValues(16, 108, 0.f, 0.2f));
  m.initializer("fc", DType::Float32, {10, 16}, randomValues(160, 109, -0.5f, 0.5f));
  m.initializer("fcb", DType::Float32, {10}, randomValues(10, 110));
  m.node("Conv", {"x", "w1", "b1"}, {"c1"}, {Attr::ints("pads", {1, 1, 1, 1})});
  m.node("Relu", {"c1"}, {"r1"});
  m.node("Conv", {"r1", "w2", "b2"}, {"c2"}, {Attr::ints("pads", {1, 1, 1, 1}), Attr::ints("strides", {2, 2})});
  m.node("Relu", {"c2"}, {"r2"});
  m.node("Conv", {"r2", "w3", "b3"}, {"c3"}, {Attr::ints("pads", {1, 1, 1, 1})});
  m.node("Add", {"c3", "r2"}, {"s3"});
  m.node("Relu", {"s3"}, {"r3"});
  m.node("MaxPool", {"r3"}, {"p"}, {Attr::ints("kernel_shape", {2, 2}), Attr::ints("strides", {2, 2})});
  m.node("Conv", {"p", "w4", "b4"}, {"c4"});
  m.node("Relu", {"c4"}, {"r4"});
  m.node("GlobalAveragePool", {"r4"}, {"gap"});
  m.node("Flatten", {"gap"}, {"f"});
  m.node("Gemm", {"f", "fc", "fcb"}, {"y"}, {Attr::i("transB", 1)});
  m.output("y", DType::Float32, {batch, 10});
  return m.bytes();
}

// Smooth "images": low-frequency patterns plus noise, so activations look like a real network's.
Tensor smoothImages(int64_t n, uint32_t seed) { return compute_test::smoothImageBatch({n, 3, 32, 32}, seed); }

BuildResult buildInt8(const std::vector<uint8_t>& model, const Tensor& calibration, double maxError = 0.15,
                      CalibrationMethod method = CalibrationMethod::Entropy) {
  BuildOptions options;
  options.backend = "cuda";
  options.precision = Precision::Int8;
  options.calibrationMethod = method;
  options.int8MaxLayerError = maxError;
  if (calibration.data != nullptr) options.calibrationBatches.push_back({{"x", calibration}});
  return buildEngine(model.data(), model.size(), options);
}

int countPrecision(const BuildReport& report, const std::string& opPart, const std::string& precision) {
  int n = 0;
  for (const LayerReport& l : report.layers) n += l.opType.find(opPart) != std::string::npos && l.precision == precision;
  return n;
}

}  // namespace

KILN_TEST(cuda, int8_engine_calibrates_and_matches_fp32) {
  // cuBLASLt's paths here; the implicit GEMM has its own test below.
  ScopedEnv family("KILN_CUDA_INT8_CONV", "cublaslt");
  std::vector<uint8_t> model = int8Net(8);
  Tensor x = smoothImages(8, 7);
  std::vector<Tensor> ref = runOn(model, "cpu", Precision::Fp32, {{"x", x}});
  for (CalibrationMethod method : {CalibrationMethod::Entropy, CalibrationMethod::Percentile, CalibrationMethod::MinMax}) {
    BuildResult built = buildInt8(model, smoothImages(64, 3), 0.2, method);
    // Every convolution but the 3-channel stem (fp16, channels padded) and the max pool between
    // them run in INT8; the report says so per layer.
    EXPECT_EQ(countPrecision(built.report, "CudaConvInt8NHWC", "int8"), 3);
    EXPECT_EQ(countPrecision(built.report, "CudaConvNHWC", "fp16"), 1);
    EXPECT_EQ(countPrecision(built.report, "CudaMaxPoolInt8NHWC", "int8"), 1);
    EXPECT_TRUE(countPrecision(built.report, "CudaQuantize", "int8") >= 1);
    EXPECT_TRUE(countPrecision(built.report, "Gemm", "fp16") == 1);
    bool direct = false, im2col = false;
    for (const LayerReport& l : built.report.layers) {
      // Either epilogue may win the timing ("_requant": int32 out, then Kiln's requantize kernel).
      direct = direct || l.kernel.rfind("cuda.conv_nhwc.int8_gemm_cublaslt", 0) == 0;
      im2col = im2col || l.kernel.rfind("cuda.conv_nhwc.int8_im2col_gemm_cublaslt", 0) == 0;
    }
    EXPECT_TRUE(direct && im2col);
    Tensor got = runBuilt(built, x);
    expectClose(got, ref[0], 0.08, "int8 net");
  }
}

// An INT8 build of `model` on the cuda backend with every layer INT8 (a loose error bound),
// calibrated on four batches shaped like x (uniform in [-1, 1], seeds from `seed`).
BuildResult buildInt8Loose(const std::vector<uint8_t>& model, const Shape& x, uint32_t seed) {
  BuildOptions options;
  options.backend = "cuda";
  options.precision = Precision::Int8;
  options.int8MaxLayerError = 0.5;
  for (uint32_t s = 0; s < 4; ++s) options.calibrationBatches.push_back({{"x", floatTensor(x, seed + s, -1.f, 1.f)}});
  return buildEngine(model.data(), model.size(), options);
}

// An INT8 engine of `model` with its convolutions on one family (KILN_CUDA_INT8_CONV: "implicit" or
// "cublaslt") and, for the implicit GEMM, one tile; calibrated on four batches shaped like x; its
// output for x. Every one of `convs` convolutions must run in INT8 on that family.
Tensor buildInt8Forced(const std::vector<uint8_t>& model, const Tensor& x, const char* family, int tile, int convs) {
  ScopedEnv env("KILN_CUDA_INT8_CONV", family);
  ScopedEnv forced("KILN_CUDA_IMPLICIT_TILE", tile >= 0 ? std::to_string(tile).c_str() : "");
  BuildResult built = buildInt8Loose(model, x.shape, 300);
  EXPECT_EQ(countPrecision(built.report, "CudaConvInt8NHWC", "int8"), convs);
  EXPECT_EQ(countKernels(built.report, "implicit_gemm"), std::string(family) == "implicit" ? convs : 0);
  return runBuilt(built, x);
}

// Every implicit-GEMM tile this GPU has, each forced for all `convs` convolutions of `model`,
// against the engine on cuBLASLt's path (the same calibration: at most float rounding apart) and
// against the fp32 CPU reference.
void expectEveryImplicitTileMatches(const std::vector<uint8_t>& model, const Tensor& x, int convs) {
  const std::vector<Tensor> ref = runOn(model, "cpu", Precision::Fp32, {{"x", x}});
  const Tensor lt = buildInt8Forced(model, x, "cublaslt", -1, convs);
  // KILN_TEST_TILE=n: that tile only (a tile whose kernel hangs can then be told from the rest).
  const char* onlyTile = std::getenv("KILN_TEST_TILE");
  for (int tile = 0; tile < cuda::kInt8ImplicitGemmTiles; ++tile) {
    if (!cuda::implicitGemmTileAvailable(tile, DType::Int8)) continue;
    if (onlyTile != nullptr && tile != std::atoi(onlyTile)) continue;
    if (std::getenv("KILN_TEST_VERBOSE") != nullptr) std::fprintf(stderr, "  tile %d\n", tile);
    const Tensor implicit = buildInt8Forced(model, x, "implicit", tile, convs);
    const std::string what = "tile " + std::to_string(tile);
    expectClose(implicit, lt, 0.02, "implicit GEMM vs cuBLASLt, " + what);
    expectClose(implicit, ref[0], 0.1, "implicit GEMM vs fp32, " + what);
  }
}

// The implicit-GEMM INT8 convolution (implicit_gemm_conv.cu) against cuBLASLt's path, on geometries
// that do not fill its tiles: 429 and 126 pixels per batch of 3, 48 and 40 output channels, 432-byte
// K (6.75 steps of 64), dilation, a strided 1x1 and a residual. Both engines share the calibration,
// so they differ at most by float rounding in the epilogue.
KILN_TEST(cuda, int8_implicit_gemm_convolution_matches_cublaslt_path) {
  ModelBuilder m;
  m.input("x", DType::Float32, {3, 48, 13, 11});
  m.initializer("w1", DType::Float32, {48, 48, 3, 3}, randomValues(48 * 432, 201, -0.08f, 0.08f));
  m.initializer("b1", DType::Float32, {48}, randomValues(48, 202, -0.1f, 0.2f));
  m.initializer("w2", DType::Float32, {32, 48, 1, 1}, randomValues(32 * 48, 203, -0.2f, 0.2f));
  m.initializer("b2", DType::Float32, {32}, randomValues(32, 204, -0.1f, 0.2f));
  m.initializer("w3", DType::Float32, {32, 32, 3, 3}, randomValues(32 * 288, 205, -0.1f, 0.1f));
  m.initializer("b3", DType::Float32, {32}, randomValues(32, 206, -0.1f, 0.1f));
  m.initializer("w4", DType::Float32, {40, 32, 3, 3}, randomValues(40 * 288, 207, -0.1f, 0.1f));
  m.initializer("b4", DType::Float32, {40}, randomValues(40, 208, -0.1f, 0.2f));
  m.node("Conv", {"x", "w1", "b1"}, {"c1"}, {Attr::ints("pads", {2, 2, 2, 2}), Attr::ints("dilations", {2, 2})});
  m.node("Relu", {"c1"}, {"r1"});
  m.node("Conv", {"r1", "w2", "b2"}, {"c2"}, {Attr::ints("strides", {2, 2})});
  m.node("Relu", {"c2"}, {"r2"});
  m.node("Conv", {"r2", "w3", "b3"}, {"c3"}, {Attr::ints("pads", {1, 1, 1, 1})});
  m.node("Add", {"c3", "r2"}, {"s3"});
  m.node("Relu", {"s3"}, {"r3"});
  m.node("Conv", {"r3", "w4", "b4"}, {"c4"}, {Attr::ints("pads", {1, 1, 1, 1})});
  m.node("Relu", {"c4"}, {"r4"});
  // GlobalAveragePool is the NHWC region's exit (its activations may not be graph outputs).
  m.node("GlobalAveragePool", {"r4"}, {"y"});
  m.output("y");
  m.opset("", 17);
  const std::vector<uint8_t> model = m.bytes();
  const Tensor x = floatTensor({3, 48, 13, 11}, 207, -1.f, 1.f);
  // The wgmma tiles (from kImplicitGemmTiles on) run on an H100 only, where they must be available.
  int major = 0, minor = 0;
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0);
  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, 0);
  EXPECT_EQ(cuda::wgmmaConvAvailable(), major == 9 && minor == 0);
  expectEveryImplicitTileMatches(model, x, 4);
}

// A ResNet bottleneck's convolutions over x [N,C,H,W] (C = xShape[1]): a 3x3 to 64 channels, two
// 1x1s to 256 with the first as the second's residual (Z prefetched into the output tile) and,
// where tailChannels > 0, a 1x1 over those 256 to tailChannels; pooled. Weights from seed on (x
// takes seed + 4).
std::vector<uint8_t> bottleneckModel(const std::vector<int64_t>& xShape, float w1Range, uint32_t seed,
                                     int64_t tailChannels) {
  const int64_t c = xShape[1];
  ModelBuilder m;
  m.input("x", DType::Float32, onnx_builder::Dims(xShape.begin(), xShape.end()));
  m.initializer("w1", DType::Float32, {64, c, 3, 3}, randomValues(64 * c * 9, seed, -w1Range, w1Range));
  m.initializer("b1", DType::Float32, {64}, randomValues(64, seed + 1, -0.1f, 0.2f));
  m.initializer("w2", DType::Float32, {256, 64, 1, 1}, randomValues(256 * 64, seed + 2, -0.2f, 0.2f));
  m.initializer("b2", DType::Float32, {256}, randomValues(256, seed + 3, -0.1f, 0.2f));
  m.initializer("w3", DType::Float32, {256, 64, 1, 1}, randomValues(256 * 64, seed + 5, -0.2f, 0.2f));
  m.initializer("b3", DType::Float32, {256}, randomValues(256, seed + 6, -0.1f, 0.2f));
  m.node("Conv", {"x", "w1", "b1"}, {"c1"}, {Attr::ints("pads", {1, 1, 1, 1})});
  m.node("Relu", {"c1"}, {"r1"});
  m.node("Conv", {"r1", "w2", "b2"}, {"c2"});
  m.node("Relu", {"c2"}, {"r2"});
  m.node("Conv", {"r1", "w3", "b3"}, {"c3"});
  m.node("Add", {"c3", "r2"}, {"s3"});
  m.node("Relu", {"s3"}, {"r3"});
  std::string last = "r3";
  if (tailChannels > 0) {
    m.initializer("w4", DType::Float32, {tailChannels, 256, 1, 1}, randomValues(tailChannels * 256, seed + 7, -0.1f, 0.1f));
    m.initializer("b4", DType::Float32, {tailChannels}, randomValues(tailChannels, seed + 8, -0.1f, 0.2f));
    m.node("Conv", {"r3", "w4", "b4"}, {"c4"});
    m.node("Relu", {"c4"}, {"r4"});
    last = "r4";
  }
  m.node("GlobalAveragePool", {last}, {"y"});
  m.output("y");
  m.opset("", 17);
  return m.bytes();
}

// Long K (a 3x3 over 128 channels: 1,152 bytes, more k-steps than any tile has stages, so every
// stage is refilled) and short K (1x1s over 64 channels, half a 128-byte step: the launch gives the
// block one stage), every tile against cuBLASLt's path.
KILN_TEST(cuda, int8_implicit_gemm_tiles_over_long_and_short_k_match_cublaslt_path) {
  const std::vector<uint8_t> model = bottleneckModel({2, 128, 9, 10}, 0.04f, 211, 0);
  expectEveryImplicitTileMatches(model, floatTensor({2, 128, 9, 10}, 215, -1.f, 1.f), 3);
}

// Enough pixels (50,176: 392 tiles of 128 rows) that a ring tile's resident blocks each walk several
// M tiles, its ring of stages running on across them with the next tile's residual prefetched:
// the 3x3 over 64 channels (5 k-steps of 128 bytes), the 1x1s over 64 (one k-step) with and without
// the residual, and a 1x1 over 256 (two k-steps: the 4-stage ring's first k-step already loads the
// next tile). 196 pixels per image, so a wrong tile moves some image's pooled outputs by far more
// than the tolerance. Every tile against cuBLASLt's path, as above.
KILN_TEST(cuda, int8_ring_tiles_over_many_tiles_per_block_match_cublaslt_path) {
  const std::vector<uint8_t> model = bottleneckModel({256, 64, 14, 14}, 0.06f, 221, 128);
  expectEveryImplicitTileMatches(model, floatTensor({256, 64, 14, 14}, 225, -1.f, 1.f), 4);
}

// The shifted-window tiles' own cases, every tile against cuBLASLt's path as above: a 4x4 over 16
// channels (the space-to-depth stem's shape: a k32 product takes two taps side by side), 9x9 grids
// (laid out 10x10, so a fifth of the tile rows are padding the epilogue must skip, tiles span
// images, and a bottom/right zero row/column is the next image's/row's top/left one), a 3x3 with a
// residual (Z read in the epilogue), a stride-2 3x3 and a stride-2 1x1 (the window split into
// even/odd row and column phases) with the 1x1 as the 3x3's residual, an unpadded 3x3 (the taps
// reach the grid's far edge) and a 5x5 over 128 channels (25 taps, two k-steps of 64 each).
KILN_TEST(cuda, int8_shifted_window_tiles_match_cublaslt_path) {
  ModelBuilder m;
  m.input("x", DType::Float32, {3, 16, 10, 10});
  auto conv = [&](const std::string& in, const std::string& out, int64_t k, int64_t c, int64_t r, uint32_t seed,
                  float range, std::vector<Attr> attrs) {
    const std::string w = "w_" + out, b = "b_" + out;
    m.initializer(w, DType::Float32, {k, c, r, r}, randomValues(k * c * r * r, seed, -range, range));
    m.initializer(b, DType::Float32, {k}, randomValues(k, seed + 1, -0.1f, 0.2f));
    m.node("Conv", {in, w, b}, {out}, std::move(attrs));
  };
  const Attr pad1 = Attr::ints("pads", {1, 1, 1, 1}), stride2 = Attr::ints("strides", {2, 2});
  conv("x", "c0", 64, 16, 4, 250, 0.1f, {pad1});  // 9x9
  m.node("Relu", {"c0"}, {"r0"});
  conv("r0", "c1", 64, 64, 3, 252, 0.06f, {pad1});
  m.node("Relu", {"c1"}, {"r1"});
  conv("r1", "c2", 64, 64, 3, 254, 0.05f, {pad1});
  m.node("Add", {"c2", "r1"}, {"s2"});
  m.node("Relu", {"s2"}, {"r2"});
  conv("r2", "c5", 64, 64, 3, 256, 0.05f, {pad1, stride2});  // 5x5
  conv("r2", "c6", 64, 64, 1, 258, 0.1f, {stride2});
  m.node("Add", {"c5", "c6"}, {"s5"});
  m.node("Relu", {"s5"}, {"r5"});
  conv("r5", "c3", 128, 64, 3, 260, 0.05f, {});  // 3x3
  m.node("Relu", {"c3"}, {"r3"});
  conv("r3", "c4", 64, 128, 5, 262, 0.03f, {Attr::ints("pads", {2, 2, 2, 2})});
  m.node("Relu", {"c4"}, {"r4"});
  m.node("GlobalAveragePool", {"r4"}, {"y"});
  m.output("y");
  m.opset("", 17);
  expectEveryImplicitTileMatches(m.bytes(), floatTensor({3, 16, 10, 10}, 264, -1.f, 1.f), 7);
}

// The TMA tiles' own cases (1x1s of stride 1), every tile against cuBLASLt's path as above: 975
// pixels (15 full 64-row tiles and a tail of 15), output channels that no BN divides (320, 192),
// a K that ends mid k-step (320 bytes: two and a half 128-byte steps, the rest zero-filled), a K of
// eight k-steps (1,024: twice the A ring, so every stage is refilled within a tile) and a residual
// over 320 channels (Z loaded into the output slots). Blocks walking many tiles, so that output
// slots are refilled, are the ring test's case above (50,176 pixels).
// An r x r convolution node with random weights scaled to its inputs (c * r * r; the TMA tiles' tests).
void addConv(ModelBuilder& m, const std::string& in, const std::string& out, int64_t k, int64_t c, int64_t r,
             uint32_t seed, std::vector<Attr> attrs = {}) {
  const std::string w = "w_" + out, b = "b_" + out;
  const float range = 1.5f / std::sqrt(float(c * r * r));
  m.initializer(w, DType::Float32, {k, c, r, r}, randomValues(k * c * r * r, seed, -range, range));
  m.initializer(b, DType::Float32, {k}, randomValues(k, seed + 1, -0.1f, 0.2f));
  m.node("Conv", {in, w, b}, {out}, std::move(attrs));
}
void addConv1x1(ModelBuilder& m, const std::string& in, const std::string& out, int64_t k, int64_t c, uint32_t seed,
                std::vector<Attr> attrs = {}) {
  addConv(m, in, out, k, c, 1, seed, std::move(attrs));
}

KILN_TEST(cuda, int8_tma_tiles_match_cublaslt_path) {
  ModelBuilder m;
  m.input("x", DType::Float32, {5, 64, 13, 15});
  auto conv1x1 = [&](const std::string& in, const std::string& out, int64_t k, int64_t c, uint32_t seed) {
    addConv1x1(m, in, out, k, c, seed);
  };
  conv1x1("x", "c1", 320, 64, 270);
  m.node("Relu", {"c1"}, {"r1"});
  conv1x1("r1", "c2", 1024, 320, 272);
  m.node("Relu", {"c2"}, {"r2"});
  conv1x1("r2", "c3", 192, 1024, 274);
  m.node("Relu", {"c3"}, {"r3"});
  conv1x1("r3", "c4", 320, 192, 276);
  m.node("Add", {"c4", "r1"}, {"s4"});
  m.node("Relu", {"s4"}, {"r4"});
  m.node("GlobalAveragePool", {"r4"}, {"y"});
  m.output("y");
  m.opset("", 17);
  expectEveryImplicitTileMatches(m.bytes(), floatTensor({5, 64, 13, 15}, 278, -1.f, 1.f), 4);
}

// The TMA tiles on stride-2 1x1s (ResNet's downsamples), whose pixels they load as 3-D boxes of the
// output grid: output widths 15 (boxes of 16 columns x 4 rows), 8 from an odd 15 (8 x 8), with and
// without a residual, and 75 (64 x 1: two boxes per row, the second mostly past the row's end).
KILN_TEST(cuda, int8_tma_tiles_take_stride_2_1x1s) {
  auto conv = [](ModelBuilder& m, const std::string& in, const std::string& out, int64_t k, int64_t c, uint32_t seed) {
    addConv1x1(m, in, out, k, c, seed, {Attr::ints("strides", {2, 2})});
  };
  ModelBuilder grid;
  grid.input("x", DType::Float32, {2, 64, 28, 30});
  conv(grid, "x", "c1", 128, 64, 290);  // [2, 128, 14, 15]
  grid.node("Relu", {"c1"}, {"r1"});
  conv(grid, "r1", "c2", 256, 128, 292);  // [2, 256, 7, 8]
  grid.node("Relu", {"c2"}, {"r2"});
  conv(grid, "r1", "c3", 256, 128, 294);
  grid.node("Add", {"c3", "r2"}, {"s3"});
  grid.node("Relu", {"s3"}, {"r3"});
  grid.node("GlobalAveragePool", {"r3"}, {"y"});
  grid.output("y");
  grid.opset("", 17);
  expectEveryImplicitTileMatches(grid.bytes(), floatTensor({2, 64, 28, 30}, 296, -1.f, 1.f), 3);

  ModelBuilder wide;
  wide.input("x", DType::Float32, {1, 64, 4, 150});
  conv(wide, "x", "c1", 64, 64, 298);  // [1, 64, 2, 75]
  wide.node("Relu", {"c1"}, {"r1"});
  conv(wide, "r1", "c2", 128, 64, 300);  // [1, 128, 1, 38]
  wide.node("Relu", {"c2"}, {"r2"});
  wide.node("GlobalAveragePool", {"r2"}, {"y"});
  wide.output("y");
  wide.opset("", 17);
  expectEveryImplicitTileMatches(wide.bytes(), floatTensor({1, 64, 4, 150}, 302, -1.f, 1.f), 2);
}

// The TMA convolution tiles' own cases (convWgmmaInt8TmaConv: im2col boxes of 128 output pixels),
// every tile against cuBLASLt's path as above: 3x3s over 64 channels on 960 pixels (7.5 tiles: the
// last tile's second consumer has no pixel at all), one with a residual; a stride-2 3x3 (the
// im2col walk at stride 2, 16 x 15 -> 8 x 8); 3x3s over 128 and 256 channels (18 k-steps of 128
// bytes: the ring refilled within a tile), one with a residual over 256 channels and one to 320
// (N blocks that 256 and 128 do not divide).
KILN_TEST(cuda, int8_tma_conv_tiles_match_cublaslt_path) {
  ModelBuilder m;
  m.input("x", DType::Float32, {4, 64, 16, 15});
  auto conv3x3 = [&](const std::string& in, const std::string& out, int64_t k, int64_t c, uint32_t seed, int64_t stride) {
    addConv(m, in, out, k, c, 3, seed, {Attr::ints("pads", {1, 1, 1, 1}), Attr::ints("strides", {stride, stride})});
  };
  conv3x3("x", "c1", 64, 64, 310, 1);
  m.node("Relu", {"c1"}, {"r1"});
  conv3x3("r1", "c2", 64, 64, 312, 1);
  m.node("Add", {"c2", "r1"}, {"s2"});
  m.node("Relu", {"s2"}, {"r2"});
  conv3x3("r2", "c3", 128, 64, 314, 2);  // [4, 128, 8, 8]
  m.node("Relu", {"c3"}, {"r3"});
  conv3x3("r3", "c4", 256, 128, 316, 1);
  m.node("Relu", {"c4"}, {"r4"});
  conv3x3("r4", "c5", 256, 256, 318, 1);
  m.node("Add", {"c5", "r4"}, {"s5"});
  m.node("Relu", {"s5"}, {"r5"});
  conv3x3("r5", "c6", 320, 256, 320, 1);
  m.node("Relu", {"c6"}, {"r6"});
  m.node("GlobalAveragePool", {"r6"}, {"y"});
  m.output("y");
  m.opset("", 17);
  expectEveryImplicitTileMatches(m.bytes(), floatTensor({4, 64, 16, 15}, 322, -1.f, 1.f), 6);
}

// ResNet's projection shortcuts fused into the convolution that adds them (int8_lowering.cc, step
// 5): a bottleneck whose downsample is a stride-1 1x1 over 64 channels (BK 64: tiles 54, 56, 57)
// and one at stride 2 over 256 (BK 128 too), each summed with a 1x1's output and ReLU-ed. The
// fused engine has two convolutions fewer, runs them on a TMA convolution tile (every tile that
// takes them, forced one at a time; a forced tile that does not take them runs the reference
// kernel), and matches the unfused engine up to the downsample's own int8 rounding, which the fused
// layer no longer does, and the fp32 CPU reference. The fusion is on only with
// KILN_CUDA_INT8_SHORTCUT=on (until this test has passed on a GPU), which the fused builds set.
KILN_TEST(cuda, int8_fused_shortcuts_match_the_unfused_downsamples) {
  ModelBuilder m;
  m.input("x", DType::Float32, {4, 64, 16, 16});
  addConv(m, "x", "c1", 64, 64, 1, 340);
  m.node("Relu", {"c1"}, {"r1"});
  addConv(m, "r1", "c2", 64, 64, 3, 342, {Attr::ints("pads", {1, 1, 1, 1})});
  m.node("Relu", {"c2"}, {"r2"});
  addConv(m, "r2", "c3", 256, 64, 1, 344);
  addConv(m, "x", "d1", 256, 64, 1, 346);
  m.node("Add", {"c3", "d1"}, {"s1"});
  m.node("Relu", {"s1"}, {"r3"});
  addConv(m, "r3", "c4", 128, 256, 1, 348);
  m.node("Relu", {"c4"}, {"r4"});
  addConv(m, "r4", "c5", 128, 128, 3, 350, {Attr::ints("pads", {1, 1, 1, 1}), Attr::ints("strides", {2, 2})});
  m.node("Relu", {"c5"}, {"r5"});
  addConv(m, "r5", "c6", 512, 128, 1, 352);
  addConv(m, "r3", "d2", 512, 256, 1, 354, {Attr::ints("strides", {2, 2})});
  m.node("Add", {"d2", "c6"}, {"s2"});
  m.node("Relu", {"s2"}, {"r6"});
  m.node("GlobalAveragePool", {"r6"}, {"y"});
  m.output("y");
  m.opset("", 17);
  const std::vector<uint8_t> model = m.bytes();
  const Tensor x = floatTensor({4, 64, 16, 16}, 356, -1.f, 1.f);
  const std::vector<Tensor> ref = runOn(model, "cpu", Precision::Fp32, {{"x", x}});
  auto build = [&](int tile) {
    ScopedEnv forced("KILN_CUDA_IMPLICIT_TILE", tile >= 0 ? std::to_string(tile).c_str() : "");
    return buildInt8Loose(model, x.shape, 360);
  };
  Tensor unfused;
  {
    // Unfused even where the whole run sets KILN_CUDA_INT8_SHORTCUT=on.
    ScopedEnv off("KILN_CUDA_INT8_SHORTCUT", "off");
    const BuildResult built = build(-1);
    EXPECT_EQ(countPrecision(built.report, "CudaConvInt8NHWC", "int8"), 8);
    EXPECT_EQ(countKernels(built.report, "int8_shortcut"), 0);
    unfused = runBuilt(built, x);
  }
  expectClose(unfused, ref[0], 0.1, "unfused int8 vs fp32");
  if (!cuda::wgmmaConvAvailable()) return;  // no TMA convolution tile: nothing is fused
  ScopedEnv on("KILN_CUDA_INT8_SHORTCUT", "on");
  const BuildResult fused = build(-1);
  EXPECT_EQ(countPrecision(fused.report, "CudaConvInt8NHWC", "int8"), 6);
  EXPECT_EQ(countKernels(fused.report, "int8_shortcut_implicit_gemm_wgmma_tma"), 2);
  const Tensor got = runBuilt(fused, x);
  expectClose(got, unfused, 0.05, "fused shortcuts vs unfused");
  expectClose(got, ref[0], 0.1, "fused shortcuts vs fp32");
  const char* onlyTile = std::getenv("KILN_TEST_TILE");
  for (int tile = cuda::kImplicitGemmTiles; tile < cuda::kInt8ImplicitGemmTiles; ++tile) {
    if (!cuda::implicitGemmTileAvailable(tile, DType::Int8)) continue;
    if (onlyTile != nullptr && tile != std::atoi(onlyTile)) continue;
    const bool tma = cuda::wgmmaTileKind(tile - cuda::kImplicitGemmTiles) == cuda::WgmmaTileKind::Tma;
    // Every TMA tile (1x1 and convolution ones), and one resident tile for the reference kernel.
    if (!tma && tile != cuda::kImplicitGemmTiles) continue;
    if (std::getenv("KILN_TEST_VERBOSE") != nullptr) std::fprintf(stderr, "  tile %d\n", tile);
    const BuildResult built = build(tile);
    const std::string what = "fused shortcuts, tile " + std::to_string(tile);
    EXPECT_EQ(countPrecision(built.report, "CudaConvInt8NHWC", "int8"), 6);
    EXPECT_EQ(countKernels(built.report, "int8_shortcut_"), 2);
    const int onTile = countKernels(built.report, "int8_shortcut_implicit_gemm_wgmma_tma.t" + std::to_string(tile));
    EXPECT_EQ(onTile + countKernels(built.report, "int8_shortcut_reference"), 2);
    expectClose(runBuilt(built, x), unfused, 0.05, what + " vs unfused");
  }
}

// INT8 convolution choices persist in the timing cache (KILN_CUDA_TIMING_CACHE's entries) under
// the layer's signature, this GPU's libraries and the tiles the build times, and a later build
// takes a cached list as given: here one naming only the dp4a GEMM, which timing never picks while
// cuBLASLt or an implicit-GEMM tile runs, so only a cache hit can put it in the report. A list
// naming a tile the build lacks is timed again instead.
KILN_TEST(cuda, int8_convolution_choices_come_from_the_timing_cache) {
  auto model = [](int64_t k) {
    ModelBuilder m;
    m.input("x", DType::Float32, {1, 16, 7, 9});
    m.initializer("w", DType::Float32, {k, 16, 3, 3}, randomValues(k * 144, 231, -0.1f, 0.1f));
    m.initializer("b", DType::Float32, {k}, randomValues(k, 232, -0.1f, 0.2f));
    m.node("Conv", {"x", "w", "b"}, {"c"}, {Attr::ints("pads", {1, 1, 1, 1})});
    m.node("Relu", {"c"}, {"r"});
    m.node("GlobalAveragePool", {"r"}, {"y"});
    m.output("y");
    m.opset("", 17);
    return m.bytes();
  };
  // The key int8_kernels.cc builds for this layer (1x7x9x16 in, k out channels, 144-byte K, 3x3,
  // stride 1, pad 1, no residual, ReLU).
  auto key = [](int64_t k) {
    return "int8conv|" + cuda::deviceKey() + "|x1x7x9x16 k" + std::to_string(k) + " kpad144 r3s3 st1,1 p1,1 d1,1 z0 r1 " +
           cuda::int8TilesKey();
  };
  const Tensor x = floatTensor({1, 16, 7, 9}, 233, -1.f, 1.f);
  auto build = [&](const std::vector<uint8_t>& bytes) { return buildInt8Loose(bytes, x.shape, 240); };

  const std::vector<uint8_t> cached = model(24);
  cuda::timingCachePut(key(24), "-1,0,1,0.00100,-;");
  BuildResult built = build(cached);
  EXPECT_EQ(countPrecision(built.report, "CudaConvInt8NHWC", "int8"), 1);
  EXPECT_EQ(countKernels(built.report, "int8_im2col_gemm_dp4a"), 1);
  expectClose(runBuilt(built, x), runOn(cached, "cpu", Precision::Fp32, {{"x", x}})[0], 0.1, "int8 conv from a cached choice");

  const std::vector<uint8_t> stale = model(40);
  cuda::timingCachePut(key(40), "99,0,0,0.00100,-;");
  built = build(stale);
  EXPECT_EQ(countPrecision(built.report, "CudaConvInt8NHWC", "int8"), 1);
  EXPECT_EQ(countKernels(built.report, "dp4a"), 0);
  expectClose(runBuilt(built, x), runOn(stale, "cpu", Precision::Fp32, {{"x", x}})[0], 0.1, "int8 conv timed again");
}

KILN_TEST(cuda, int8_layers_over_the_error_bound_fall_back_to_fp16) {
  std::vector<uint8_t> model = int8Net(8);
  Tensor x = smoothImages(8, 7);
  std::vector<Tensor> ref = runOn(model, "cpu", Precision::Fp32, {{"x", x}});
  BuildResult built = buildInt8(model, smoothImages(16, 3), 0.0);
  EXPECT_EQ(countPrecision(built.report, "CudaConvInt8NHWC", "int8"), 0);
  EXPECT_EQ(countPrecision(built.report, "CudaConvNHWC", "fp16"), 4);
  bool warned = false;
  for (const std::string& w : built.report.warnings) warned = warned || w.find("fp16 fallback for 3") != std::string::npos;
  EXPECT_TRUE(warned);
  expectClose(runBuilt(built, x), ref[0], 1e-2, "int8 build, all layers fp16");
}

KILN_TEST(cuda, int8_without_calibration_or_qdq_fails_clearly) {
  std::vector<uint8_t> model = int8Net(8);
  EXPECT_THROWS_WITH(buildInt8(model, Tensor{}), "precision int8 needs calibration data");
  // The CPU backend keeps refusing reduced precisions and TF32.
  BuildOptions cpu;
  cpu.precision = Precision::Int8;
  cpu.calibrationBatches.push_back({{"x", smoothImages(8, 1)}});
  EXPECT_THROWS_WITH(buildEngine(model.data(), model.size(), cpu), "not available on the cpu backend");
  cpu.precision = Precision::Fp32;
  cpu.tf32 = true;
  EXPECT_THROWS_WITH(buildEngine(model.data(), model.size(), cpu), "tf32 applies to fp32 builds on the cuda backend");
}

KILN_TEST(cuda, int8_honours_qdq_pairs_without_calibration) {
  // x -> Q/DQ -> Conv (weights int8 per channel through DequantizeLinear) -> Relu -> Q/DQ -> Conv
  // -> Relu -> Q/DQ -> GlobalAveragePool: both convolutions run in INT8 at the model's scales.
  ModelBuilder m;
  m.input("x", DType::Float32, {4, 16, 8, 8});
  std::vector<int8_t> w1(32 * 16 * 9), w2(32 * 32 * 9);
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> d(-127, 127);
  for (int8_t& v : w1) v = static_cast<int8_t>(d(rng));
  for (int8_t& v : w2) v = static_cast<int8_t>(d(rng));
  m.initializer("w1q", DType::Int8, {32, 16, 3, 3}, w1);
  m.initializer("w2q", DType::Int8, {32, 32, 3, 3}, w2);
  m.initializer("w1s", DType::Float32, {32}, randomValues(32, 9, 0.0005f, 0.001f));
  m.initializer("w2s", DType::Float32, {32}, randomValues(32, 10, 0.0003f, 0.0006f));
  m.initializer("xs", DType::Float32, {}, std::vector<float>{1.f / 127.f});
  m.initializer("as", DType::Float32, {}, std::vector<float>{0.5f / 127.f});
  m.initializer("zp", DType::Int8, {}, std::vector<int8_t>{0});
  m.node("QuantizeLinear", {"x", "xs", "zp"}, {"xq"});
  m.node("DequantizeLinear", {"xq", "xs", "zp"}, {"xd"});
  m.node("DequantizeLinear", {"w1q", "w1s"}, {"w1"}, {Attr::i("axis", 0)});
  m.node("DequantizeLinear", {"w2q", "w2s"}, {"w2"}, {Attr::i("axis", 0)});
  m.node("Conv", {"xd", "w1"}, {"c1"}, {Attr::ints("pads", {1, 1, 1, 1})});
  m.node("Relu", {"c1"}, {"r1"});
  m.node("QuantizeLinear", {"r1", "as", "zp"}, {"r1q"});
  m.node("DequantizeLinear", {"r1q", "as", "zp"}, {"r1d"});
  m.node("Conv", {"r1d", "w2"}, {"c2"}, {Attr::ints("pads", {1, 1, 1, 1})});
  m.node("Relu", {"c2"}, {"r2"});
  m.node("QuantizeLinear", {"r2", "as", "zp"}, {"r2q"});
  m.node("DequantizeLinear", {"r2q", "as", "zp"}, {"r2d"});
  m.node("GlobalAveragePool", {"r2d"}, {"y"});
  m.output("y", DType::Float32, {4, 32, 1, 1});
  m.opset("", 13);
  std::vector<uint8_t> model = m.bytes();
  Tensor x = floatTensor({4, 16, 8, 8}, 12);
  std::vector<Tensor> ref = runOn(model, "cpu", Precision::Fp32, {{"x", x}});
  BuildResult built = buildInt8(model, Tensor{}, 1.0);
  EXPECT_EQ(countPrecision(built.report, "CudaConvInt8NHWC", "int8"), 2);
  expectClose(runBuilt(built, x), ref[0], 0.03, "qdq model");
}

KILN_TEST(cuda, tf32_fp32_build_matches_cpu) {
  std::vector<uint8_t> model = resnetBlock();
  Inputs inputs = {{"x", floatTensor({2, 8, 16, 16}, 3)}};
  std::vector<Tensor> ref = runOn(model, "cpu", Precision::Fp32, inputs);
  BuildOptions options;
  options.backend = "cuda";
  options.tf32 = true;
  BuildResult built = buildEngine(model.data(), model.size(), options);
  EXPECT_TRUE(countPrecision(built.report, "Conv", "tf32") >= 1);
  std::shared_ptr<Engine> engine = Engine::load(built.engine.data(), built.engine.size());
  RunResult r = engine->createContext()->run(inputs);
  expectClose(r.outputs[0].second, ref[0], 1e-2, "tf32");
}

// Ops without a CUDA kernel (CumSum, Sin, Max, TopK here) run as host layers between device
// layers: same results as the CPU at fp32 and fp16 (host layers compute in float32 there, a
// constant shared with a device layer included), graph replay for the device segments, and the
// build report names the host layers.
KILN_TEST(cuda, host_layers_run_ops_without_cuda_kernels) {
  ModelBuilder m;
  m.input("a", DType::Float32, {2, 3, 8});
  m.initializer("axis", DType::Int64, {}, std::vector<int64_t>{2});
  m.initializer("w", DType::Float32, {8}, randomValues(8, 11, 0.5f, 1.5f));
  m.initializer("k", DType::Int64, {1}, std::vector<int64_t>{3});
  m.node("Relu", {"a"}, {"r"});
  m.node("CumSum", {"r", "axis"}, {"c"});
  m.node("Mul", {"c", "w"}, {"m"});
  m.node("Max", {"c", "w"}, {"mx"});
  m.node("Sin", {"m"}, {"s"});
  m.node("Add", {"s", "mx"}, {"t"});
  m.node("TopK", {"a", "k"}, {"top", "topIndex"}, {Attr::i("axis", -1)});
  m.output("t");
  m.output("top");
  m.output("topIndex");
  std::vector<uint8_t> model = m.bytes();
  // Distinct values 0.05 apart: fp16 rounding cannot reorder TopK's choices.
  Tensor a = Tensor::allocate(DType::Float32, {2, 3, 8});
  for (int64_t i = 0; i < a.numel(); ++i) a.ptr<float>()[i] = static_cast<float>((i * 7) % 48) * 0.05f - 1.2f;
  compareBackends(model, {{"a", a}}, "host layers", 1e-5, 1e-2);

  BuildOptions options;
  options.backend = "cuda";
  options.precision = Precision::Fp16;
  BuildResult built = buildEngine(model.data(), model.size(), options);
  int host = 0;
  for (const LayerReport& layer : built.report.layers) {
    if (layer.kernel.rfind("host.", 0) != 0) continue;
    ++host;
    EXPECT_EQ(layer.precision, std::string("fp32"));
  }
  EXPECT_EQ(host, 4);
  bool warned = false;
  for (const std::string& w : built.report.warnings) warned = warned || w.find("4 layer(s) run on the host CPU") != std::string::npos;
  EXPECT_TRUE(warned);
}
