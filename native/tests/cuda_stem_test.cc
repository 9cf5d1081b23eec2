// Stride-2 stem convolutions over 1 to 4 channels in fp16 on the space-to-depth path (conv.cc,
// space_to_depth.cu; GPU machine only: kiln_cuda_tests) against the CPU backend at fp32:
// KILN_CUDA_CONV_S2D=always, and the report's kernel name must say "_s2d", so the tests cannot pass
// on the padded or unpadded paths. Kernels 7x7/pad 3, 5x5/pad 2, 3x3/pad 1, an even 4x4 (whose
// padded height is odd, where ceil((H + pads) / 2) would give one row too many), 7x5 and 3x3 without
// padding; odd and even, square and not square inputs; batch 1 and 3; with and without bias, ReLU
// and the residual Z.
//
// fp16 convolutions run in NHWC only inside a convolutional region whose one exit is a
// GlobalAveragePool (cuda_lowering.cc), and a plain average would hide a shifted window or a
// permuted kernel tap. So the stem's output [N,K,OH,OW] goes through a "projection" convolution
// whose kernel covers the whole map (16 random weight sets of [K,OH,OW], no padding: 16 random
// inner products per image, each moved by any wrong output element in proportion to its error)
// before the pooling exit, which then pools 1x1 maps. Checked on the CPU backend for these cases:
// the stem window shifted by one row or column moves the outputs by 40 to 200 times the tolerance,
// two kernel taps swapped by 10 to 80 times, fp16 rounding of the inputs and weights by 0.01 to 0.05.
//
// INT8 (int8_lowering.cc): a stride-2 stem over at most 4 channels runs as an INT8 convolution over
// its input rewritten space-to-depth by kiln.CudaQuantizeSpaceToDepth; the max pool after it then
// runs on int8 too. A ResNet-like net (stem, max pool read by a bottleneck's 1x1 and its downsample
// 1x1, the projection above) against the CPU at fp32 and between the implicit-GEMM and cuBLASLt
// paths, on even and odd input sizes and 1 to 4 channels; a 4-channel stem (which also has the
// plain INT8 path) against that path; and KILN_CUDA_INT8_S2D=off, which keeps the stem fp16.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backends/cuda/implicit_gemm_conv.h"
#include "compute_harness.h"
#include "core/error.h"
#include "onnx_builder.h"
#include "runtime/api.h"
#include "test.h"

using namespace kiln;
using onnx_builder::Attr;
using onnx_builder::ModelBuilder;
using compute_test::randomFloats;
using compute_test::valuesOf;

namespace {

struct StemCase {
  int64_t n, c, h, w;
  int64_t r, s, padH, padW;
  bool bias, relu, residual;
};

constexpr int64_t kStemOut = 16;     // the stem's output channels
constexpr int64_t kProjections = 16;  // inner products per image

int64_t outExtent(int64_t in, int64_t k, int64_t pad) { return (in + 2 * pad - k) / 2 + 1; }

std::string describeCase(const StemCase& t) {
  return "stem n" + std::to_string(t.n) + " c" + std::to_string(t.c) + " " + std::to_string(t.h) + "x" +
         std::to_string(t.w) + " kernel " + std::to_string(t.r) + "x" + std::to_string(t.s) + " pad " +
         std::to_string(t.padH) + "," + std::to_string(t.padW) + (t.bias ? " bias" : "") + (t.relu ? " relu" : "") +
         (t.residual ? " residual" : "");
}

// x [N,C,H,W] (and z [N,K,OH,OW]) -> Conv(stride 2) [+ b] [+ z] [relu] -> projection -> GAP -> y [N,16,1,1].
std::vector<uint8_t> stemModel(const StemCase& t, uint32_t seed) {
  const int64_t oh = outExtent(t.h, t.r, t.padH), ow = outExtent(t.w, t.s, t.padW);
  ModelBuilder m;
  m.input("x", DType::Float32, {t.n, t.c, t.h, t.w});
  if (t.residual) m.input("z", DType::Float32, {t.n, kStemOut, oh, ow});
  const float bound = 1.f / std::sqrt(float(t.c * t.r * t.s));
  m.initializer("w", DType::Float32, {kStemOut, t.c, t.r, t.s},
                valuesOf(randomFloats({kStemOut, t.c, t.r, t.s}, seed, -bound, bound)));
  std::vector<std::string> convInputs = {"x", "w"};
  if (t.bias) {
    m.initializer("b", DType::Float32, {kStemOut}, valuesOf(randomFloats({kStemOut}, seed + 1, -0.3f, 0.3f)));
    convInputs.push_back("b");
  }
  m.node("Conv", convInputs, {"c"},
         {Attr::ints("pads", {t.padH, t.padW, t.padH, t.padW}), Attr::ints("strides", {2, 2}),
          Attr::ints("kernel_shape", {t.r, t.s})});
  std::string cur = "c";
  if (t.residual) {
    m.node("Add", {cur, "z"}, {"s"});
    cur = "s";
  }
  if (t.relu) {
    m.node("Relu", {cur}, {"a"});
    cur = "a";
  }
  // Projection weights of unit-variance sums: the outputs stay O(1) at every map size.
  const float pBound = std::sqrt(3.f / float(kStemOut * oh * ow));
  m.initializer("p", DType::Float32, {kProjections, kStemOut, oh, ow},
                valuesOf(randomFloats({kProjections, kStemOut, oh, ow}, seed + 2, -pBound, pBound)));
  m.node("Conv", {cur, "p"}, {"q"});
  m.node("GlobalAveragePool", {"q"}, {"y"});
  m.output("y");
  m.opset("", 17);
  return m.bytes();
}

std::vector<std::pair<std::string, Tensor>> stemInputs(const StemCase& t, uint32_t seed) {
  std::vector<std::pair<std::string, Tensor>> inputs = {{"x", randomFloats({t.n, t.c, t.h, t.w}, seed + 3)}};
  if (t.residual)
    inputs.push_back({"z", randomFloats({t.n, kStemOut, outExtent(t.h, t.r, t.padH), outExtent(t.w, t.s, t.padW)}, seed + 4)});
  return inputs;
}

// Loads a built engine and runs it; on cuda a second run replays the captured CUDA graph and must
// give the same bytes.
Tensor runEngine(const BuildResult& built, const std::string& backend,
                 const std::vector<std::pair<std::string, Tensor>>& inputs) {
  std::shared_ptr<Engine> engine = Engine::load(built.engine.data(), built.engine.size());
  std::unique_ptr<ExecutionContext> ctx = engine->createContext();
  RunResult r = ctx->run(inputs);
  if (backend == "cuda") {
    RunResult again = ctx->run(inputs);
    EXPECT_TRUE(std::memcmp(r.outputs[0].second.data, again.outputs[0].second.data, r.outputs[0].second.byteSize()) == 0);
  }
  return std::move(r.outputs[0].second);
}

// Builds for `backend`, loads and runs (runEngine). The report's layers go to `report` when given.
Tensor buildAndRun(const std::vector<uint8_t>& model, const std::string& backend, Precision precision,
                   const std::vector<std::pair<std::string, Tensor>>& inputs, BuildReport* report = nullptr) {
  BuildOptions options;
  options.backend = backend;
  options.precision = precision;
  BuildResult built = buildEngine(model.data(), model.size(), options);
  if (report != nullptr) *report = built.report;
  return runEngine(built, backend, inputs);
}

// |got - want| <= rtol * max|want| over the whole tensor (fp16's accuracy at the output's scale,
// as cuda_backend_test.cc compares).
void expectStemClose(const Tensor& got, const Tensor& want, double rtol, const std::string& what) {
  const std::vector<float> w = valuesOf(want);
  double scale = 1e-3;
  for (float v : w) scale = std::max(scale, double(std::fabs(v)));
  compute_test::expectClose(got, want.shape, w, rtol * scale, 0.0, what);
}

// The layers whose kernel name contains `part`.
std::vector<std::string> kernelsWith(const BuildReport& report, const std::string& part) {
  std::vector<std::string> names;
  for (const LayerReport& l : report.layers) {
    if (l.kernel.find(part) != std::string::npos) names.push_back(l.kernel);
  }
  return names;
}

using kiln_test::ScopedEnv;

const std::vector<StemCase>& stemCases() {
  static const std::vector<StemCase> cases = {
      // n, c, h, w, r, s, padH, padW, bias, relu, residual
      {1, 3, 224, 224, 7, 7, 3, 3, true, true, false},  // ResNet-50's conv1 after BatchNorm folding
      {3, 3, 37, 30, 7, 7, 3, 3, true, true, true},
      {3, 1, 30, 37, 7, 7, 3, 3, false, false, false},
      {1, 4, 37, 37, 7, 7, 3, 3, false, true, true},
      {1, 1, 224, 224, 3, 3, 1, 1, true, true, false},
      {1, 4, 37, 37, 3, 3, 1, 1, true, false, true},
      {3, 3, 30, 30, 3, 3, 1, 1, false, true, false},
      {3, 4, 30, 37, 5, 5, 2, 2, true, true, true},
      {1, 3, 37, 30, 5, 5, 2, 2, false, true, true},
      {3, 1, 37, 37, 5, 5, 2, 2, true, false, false},
      {3, 3, 37, 37, 4, 4, 1, 1, true, true, false},  // 39 padded rows, even kernel
      {1, 2, 30, 37, 7, 5, 3, 2, false, true, false},
      {3, 3, 31, 30, 3, 3, 0, 0, true, false, true},
  };
  return cases;
}

// One case's model and inputs, and the CPU backend's float32 output for them.
struct StemRun {
  std::string what;
  std::vector<uint8_t> model;
  std::vector<std::pair<std::string, Tensor>> inputs;
  Tensor want;
};
StemRun prepare(const StemCase& t, uint32_t seed) {
  StemRun run{describeCase(t), stemModel(t, seed), stemInputs(t, seed), {}};
  run.want = buildAndRun(run.model, "cpu", Precision::Fp32, run.inputs);
  return run;
}

}  // namespace

// Every case on the space-to-depth path, forced.
KILN_TEST(cuda, stem_space_to_depth_matches_cpu) {
  uint32_t seed = 100;
  for (const StemCase& t : stemCases()) {
    seed += 10;
    const auto [what, model, inputs, want] = prepare(t, seed);
    ScopedEnv s2d("KILN_CUDA_CONV_S2D", "always");
    BuildReport report;
    const Tensor got = buildAndRun(model, "cuda", Precision::Fp16, inputs, &report);
    // The stem only: the projection has 16 channels.
    if (kernelsWith(report, "_s2d").size() != 1)
      throw kiln_test::Failure(what + ": " + std::to_string(kernelsWith(report, "_s2d").size()) +
                               " layers on the space-to-depth path, not 1");
    EXPECT_EQ(kernelsWith(report, "cuda.conv_nhwc.").size(), size_t(2));
    expectStemClose(got, want, 1e-2, what + " (s2d)");
  }
}

// KILN_CUDA_CONV_S2D=off leaves the path out, and the default timing (whichever path wins) and
// the implicit GEMM on the rewritten convolution (KILN_CUDA_CONV_IMPLICIT=always) match too.
KILN_TEST(cuda, stem_space_to_depth_off_timed_and_implicit_gemm) {
  uint32_t seed = 300;
  for (size_t i : {size_t(0), size_t(1), size_t(7), size_t(10)}) {
    const StemCase& t = stemCases()[i];
    seed += 10;
    const auto [what, model, inputs, want] = prepare(t, seed);
    {
      ScopedEnv s2d("KILN_CUDA_CONV_S2D", "off");
      BuildReport report;
      expectStemClose(buildAndRun(model, "cuda", Precision::Fp16, inputs, &report), want, 1e-2, what + " (s2d off)");
      EXPECT_EQ(kernelsWith(report, "_s2d").size(), size_t(0));
    }
    {
      BuildReport report;
      expectStemClose(buildAndRun(model, "cuda", Precision::Fp16, inputs, &report), want, 1e-2, what + " (timed)");
    }
    {
      ScopedEnv s2d("KILN_CUDA_CONV_S2D", "always");
      ScopedEnv implicit("KILN_CUDA_CONV_IMPLICIT", "always");
      BuildReport report;
      expectStemClose(buildAndRun(model, "cuda", Precision::Fp16, inputs, &report), want, 1e-2,
                      what + " (s2d, implicit GEMM)");
      const std::vector<std::string> stem = kernelsWith(report, "_s2d");
      EXPECT_EQ(stem.size(), size_t(1));
      if (stem[0].find("implicit_gemm") == std::string::npos)
        throw kiln_test::Failure(what + ": the stem ran on " + stem[0] + ", not the implicit GEMM");
    }
  }
}

// ---- INT8 -----------------------------------------------------------------------------------

namespace {

struct Int8StemCase {
  int64_t n, c, h, w;
};

constexpr int64_t kInt8Width = 32;  // the stem's and the block's channels
constexpr int kInt8Convs = 5;       // stem, 1x1, 3x3, downsample 1x1, projection

std::string describeInt8Case(const Int8StemCase& t) {
  return "int8 stem n" + std::to_string(t.n) + " c" + std::to_string(t.c) + " " + std::to_string(t.h) + "x" +
         std::to_string(t.w);
}

// Smooth images shaped like the case's input (compute_test::smoothImageBatch).
Tensor stemImages(const Int8StemCase& t, int64_t n, uint32_t seed) {
  return compute_test::smoothImageBatch({n, t.c, t.h, t.w}, seed);
}

// x [N,C,H,W] -> 7x7/2 pad 3 stem + bias + ReLU -> 3x3/2 pad 1 max pool -> a bottleneck's readers
// of the pool, as in ResNet-50's layer1.0: 1x1 + ReLU -> 3x3, plus a 1x1 downsample of the pool,
// added, ReLU -> the projection (whole-map kernel, see the top of this file) -> GAP -> y [N,16,1,1].
std::vector<uint8_t> int8StemModel(const Int8StemCase& t, uint32_t seed, int64_t k = kInt8Width) {
  const int64_t oh = outExtent(t.h, 7, 3), ow = outExtent(t.w, 7, 3);
  const int64_t ph = (oh + 2 - 3) / 2 + 1, pw = (ow + 2 - 3) / 2 + 1;
  ModelBuilder m;
  m.input("x", DType::Float32, {t.n, t.c, t.h, t.w});
  // Uniform weights of unit-variance sums (fan-in 3 / bound^2), small positive biases.
  auto weights = [&](const std::string& name, const Shape& shape, uint32_t s) {
    const float bound = std::sqrt(3.f / float(shape[1] * shape[2] * shape[3]));
    m.initializer(name, DType::Float32, shape, valuesOf(randomFloats(shape, s, -bound, bound)));
  };
  auto bias = [&](const std::string& name, int64_t n, uint32_t s) {
    m.initializer(name, DType::Float32, {n}, valuesOf(randomFloats({n}, s, -0.05f, 0.2f)));
  };
  weights("w0", {k, t.c, 7, 7}, seed);
  bias("b0", k, seed + 1);
  weights("w1", {k, k, 1, 1}, seed + 2);
  bias("b1", k, seed + 3);
  weights("w2", {k, k, 3, 3}, seed + 4);
  bias("b2", k, seed + 5);
  weights("wd", {k, k, 1, 1}, seed + 6);
  bias("bd", k, seed + 7);
  const float pBound = std::sqrt(3.f / float(k * ph * pw));
  m.initializer("p", DType::Float32, {kProjections, k, ph, pw},
                valuesOf(randomFloats({kProjections, k, ph, pw}, seed + 8, -pBound, pBound)));
  m.node("Conv", {"x", "w0", "b0"}, {"c0"},
         {Attr::ints("pads", {3, 3, 3, 3}), Attr::ints("strides", {2, 2}), Attr::ints("kernel_shape", {7, 7})});
  m.node("Relu", {"c0"}, {"r0"});
  m.node("MaxPool", {"r0"}, {"pool"},
         {Attr::ints("kernel_shape", {3, 3}), Attr::ints("strides", {2, 2}), Attr::ints("pads", {1, 1, 1, 1})});
  m.node("Conv", {"pool", "w1", "b1"}, {"c1"});
  m.node("Relu", {"c1"}, {"r1"});
  m.node("Conv", {"r1", "w2", "b2"}, {"c2"}, {Attr::ints("pads", {1, 1, 1, 1})});
  m.node("Conv", {"pool", "wd", "bd"}, {"cd"});
  m.node("Add", {"c2", "cd"}, {"s"});
  m.node("Relu", {"s"}, {"r"});
  m.node("Conv", {"r", "p"}, {"q"});
  m.node("GlobalAveragePool", {"q"}, {"y"});
  m.output("y");
  m.opset("", 17);
  return m.bytes();
}

// An INT8 engine calibrated on 16 images shaped like the case's input; every layer under the
// error bound (0.5): these tests are about the stem's path, not the fallback.
BuildResult buildInt8Stem(const std::vector<uint8_t>& model, const Int8StemCase& t, CalibrationMethod method,
                          uint32_t seed) {
  BuildOptions options;
  options.backend = "cuda";
  options.precision = Precision::Int8;
  options.calibrationMethod = method;
  options.int8MaxLayerError = 0.5;
  options.calibrationBatches.push_back({{"x", stemImages(t, 16, seed + 50)}});
  return buildEngine(model.data(), model.size(), options);
}

// Layers of exactly this op type ("kiln.CudaQuantize") and precision.
int countLayers(const BuildReport& report, const std::string& opType, const std::string& precision) {
  int n = 0;
  for (const LayerReport& l : report.layers) n += l.opType == opType && l.precision == precision;
  return n;
}

void expectCount(int got, int want, const std::string& what) {
  if (got != want) throw kiln_test::Failure(what + ": " + std::to_string(got) + ", not " + std::to_string(want));
}

// One INT8 stem case (k channels wide): its model, its input (seed + 9) and the CPU backend's
// float32 output for it.
struct Int8StemRun {
  std::vector<uint8_t> model;
  std::vector<std::pair<std::string, Tensor>> inputs;
  Tensor want;
};
Int8StemRun prepareInt8(const Int8StemCase& t, uint32_t seed, int64_t k = kInt8Width) {
  Int8StemRun run{int8StemModel(t, seed, k), {{"x", stemImages(t, t.n, seed + 9)}}, {}};
  run.want = buildAndRun(run.model, "cpu", Precision::Fp32, run.inputs);
  return run;
}

bool warned(const BuildReport& report, const std::string& part) {
  for (const std::string& w : report.warnings) {
    if (w.find(part) != std::string::npos) return true;
  }
  return false;
}

// The stem on the space-to-depth INT8 path: every convolution INT8, one kiln.CudaQuantizeSpaceToDepth
// (the only quantization: x is read nowhere else) writing [N, OH + 3, OW + 3, 16] (with
// KILN_CUDA_INT8_S2D_TAPS=on each pixel's row of 4 taps packed: [N, OH + 3, OW, 64]) straight from
// the float32 input, and the max pool on int8.
void expectInt8SpaceToDepthStem(const BuildReport& report, const Int8StemCase& t, const std::string& what) {
  expectCount(countLayers(report, "kiln.CudaConvInt8NHWC", "int8"), kInt8Convs, what + ": INT8 convolutions");
  expectCount(countLayers(report, "kiln.CudaConvNHWC", "fp16"), 0, what + ": fp16 convolutions");
  expectCount(countLayers(report, "kiln.CudaQuantizeSpaceToDepth", "int8"), 1, what + ": space-to-depth quantizations");
  expectCount(countLayers(report, "kiln.CudaQuantize", "int8"), 0, what + ": plain quantizations");
  expectCount(countLayers(report, "kiln.CudaMaxPoolInt8NHWC", "int8"), 1, what + ": int8 max pools");
  expectCount(static_cast<int>(kernelsWith(report, "cuda.quantize_int8_s2d").size()), 1, what + ": s2d quantize kernels");
  // x is the model's float32 NCHW input: the quantize reads it in place of a kiln.CudaCastToNhwc.
  expectCount(static_cast<int>(kernelsWith(report, "cuda.quantize_int8_s2d_nchw").size()), 1,
              what + ": s2d quantizes reading the float32 input");
  int casts = 0;
  for (const LayerReport& l : report.layers) casts += l.opType == "kiln.CudaCastToNhwc";
  expectCount(casts, 0, what + ": input casts to fp16 NHWC");
  const char* taps = std::getenv("KILN_CUDA_INT8_S2D_TAPS");
  const bool packed = taps != nullptr && std::string(taps) == "on";
  const int64_t oh = outExtent(t.h, 7, 3), ow = outExtent(t.w, 7, 3);
  const std::string x2 = shapeToString({t.n, oh + 3, packed ? ow : ow + 3, packed ? 64 : 16});
  for (const LayerReport& l : report.layers) {
    if (l.opType == "kiln.CudaQuantizeSpaceToDepth" && l.outputShape != x2)
      throw kiln_test::Failure(what + ": space-to-depth input " + l.outputShape + ", not " + x2);
  }
  if (!warned(report, "int8: 5 of 5 convolutions run in INT8")) throw kiln_test::Failure(what + ": not every convolution INT8");
}

}  // namespace

// ResNet's stem shape over 1 to 3 channels on both INT8 families; even sizes (30: the padded input's
// last row is never read) and odd ones (29, 31, 33: the last block row or column of x' lies half
// past the padded input, and reads as zeros).
KILN_TEST(cuda, int8_stem_space_to_depth_matches_cpu_and_cublaslt_path) {
  const std::vector<Int8StemCase> cases = {{2, 3, 30, 30}, {2, 3, 29, 31}, {3, 1, 31, 29}, {1, 2, 33, 30}};
  uint32_t seed = 500;
  for (const Int8StemCase& t : cases) {
    seed += 10;
    const std::string what = describeInt8Case(t);
    const auto [model, inputs, want] = prepareInt8(t, seed);
    Tensor lt, implicit;
    for (const char* family : {"cublaslt", "implicit"}) {
      ScopedEnv env("KILN_CUDA_INT8_CONV", family);
      const BuildResult built = buildInt8Stem(model, t, CalibrationMethod::Entropy, seed);
      const std::string path = what + " (" + family + ")";
      expectInt8SpaceToDepthStem(built.report, t, path);
      expectCount(static_cast<int>(kernelsWith(built.report, "implicit_gemm").size()),
                  std::string(family) == "implicit" ? kInt8Convs : 0, path + ": implicit-GEMM convolutions");
      Tensor got = runEngine(built, "cuda", inputs);
      expectStemClose(got, want, 0.1, path + " vs fp32");
      (std::string(family) == "implicit" ? implicit : lt) = std::move(got);
    }
    // Same calibration, so the two differ at most by float rounding in the epilogues.
    expectStemClose(implicit, lt, 0.02, what + ": implicit GEMM vs cuBLASLt");
  }
}

// A 4-channel stem also has the plain INT8 path (im2col over 4 channels; KILN_CUDA_INT8_S2D=off):
// both compute the same int8 products over the same scales (minmax ranges, so the two builds'
// calibrations agree to fp16 rounding), so they must agree much more closely than either with fp32.
KILN_TEST(cuda, int8_stem_space_to_depth_matches_the_plain_int8_stem) {
  const Int8StemCase t{2, 4, 29, 31};
  const uint32_t seed = 600;
  const std::string what = describeInt8Case(t);
  const auto [model, inputs, want] = prepareInt8(t, seed);
  ScopedEnv family("KILN_CUDA_INT8_CONV", "cublaslt");
  const BuildResult s2d = buildInt8Stem(model, t, CalibrationMethod::MinMax, seed);
  expectInt8SpaceToDepthStem(s2d.report, t, what + " (s2d)");
  BuildResult plain;
  {
    ScopedEnv off("KILN_CUDA_INT8_S2D", "off");
    plain = buildInt8Stem(model, t, CalibrationMethod::MinMax, seed);
  }
  expectCount(countLayers(plain.report, "kiln.CudaConvInt8NHWC", "int8"), kInt8Convs, what + " (plain): INT8 convolutions");
  expectCount(countLayers(plain.report, "kiln.CudaQuantizeSpaceToDepth", "int8"), 0, what + " (plain): s2d quantizations");
  expectCount(countLayers(plain.report, "kiln.CudaQuantize", "int8"), 1, what + " (plain): quantizations");
  expectCount(countLayers(plain.report, "kiln.CudaMaxPoolInt8NHWC", "int8"), 1, what + " (plain): int8 max pools");
  const Tensor gotS2d = runEngine(s2d, "cuda", inputs), gotPlain = runEngine(plain, "cuda", inputs);
  expectStemClose(gotS2d, want, 0.1, what + " (s2d) vs fp32");
  expectStemClose(gotPlain, want, 0.1, what + " (plain) vs fp32");
  expectStemClose(gotS2d, gotPlain, 0.02, what + ": s2d vs plain INT8 stem");
}

// The packed stem (KILN_CUDA_INT8_S2D_TAPS=on: x' with each pixel's row of 4 taps in one 64-channel
// pixel, a 4x1 convolution) against the 16-channel one (a 4x4 convolution) on both families: the
// same int8 products over the same scales (minmax ranges), so the two agree to float rounding.
KILN_TEST(cuda, int8_stem_packed_taps_match_the_16_channel_stem) {
  const Int8StemCase t{2, 3, 29, 31};
  const uint32_t seed = 650;
  const std::string what = describeInt8Case(t);
  const auto [model, inputs, want] = prepareInt8(t, seed);
  for (const char* family : {"cublaslt", "implicit"}) {
    ScopedEnv env("KILN_CUDA_INT8_CONV", family);
    const std::string path = what + " (" + family + ")";
    Tensor got[2];
    const char* const setting[2] = {"on", "off"};
    const std::string form[2] = {", packed", ", 16 channels"};
    for (int i = 0; i < 2; ++i) {
      ScopedEnv taps("KILN_CUDA_INT8_S2D_TAPS", setting[i]);
      const BuildResult built = buildInt8Stem(model, t, CalibrationMethod::MinMax, seed);
      expectInt8SpaceToDepthStem(built.report, t, path + form[i]);
      got[i] = runEngine(built, "cuda", inputs);
      expectStemClose(got[i], want, 0.1, path + form[i] + " vs fp32");
    }
    expectStemClose(got[0], got[1], 0.02, path + ": packed vs 16-channel stem");
  }
}

// The packed stem (KILN_CUDA_INT8_S2D_TAPS=on) on the TMA convolution tiles (a 4x1 filter over 64
// channels, which the tiles of 64-byte k-steps and 64 channels take): 64 channels wide, 2 x 32 x 32
// output pixels, every implicit-GEMM tile forced in turn (KILN_TEST_TILE=n: that one only) against cuBLASLt's path and
// the fp32 CPU reference; without KILN_TEST_TILE, some TMA convolution tile must have run the stem.
// (The block's downsample stays a layer of its own here: the test is about the stem.)
KILN_TEST(cuda, int8_packed_stem_on_tma_conv_tiles_matches_cublaslt_path) {
  const Int8StemCase t{2, 3, 64, 64};
  const uint32_t seed = 660;
  const std::string what = describeInt8Case(t) + " 64 wide";
  const auto [model, inputs, want] = prepareInt8(t, seed, 64);
  ScopedEnv unfused("KILN_CUDA_INT8_SHORTCUT", "off");
  ScopedEnv packedStem("KILN_CUDA_INT8_S2D_TAPS", "on");
  Tensor lt;
  {
    ScopedEnv env("KILN_CUDA_INT8_CONV", "cublaslt");
    lt = runEngine(buildInt8Stem(model, t, CalibrationMethod::MinMax, seed), "cuda", inputs);
  }
  expectStemClose(lt, want, 0.1, what + " (cublaslt) vs fp32");
  const char* onlyTile = std::getenv("KILN_TEST_TILE");
  int tmaStems = 0;
  for (int tile = 0; tile < cuda::kInt8ImplicitGemmTiles; ++tile) {
    if (!cuda::implicitGemmTileAvailable(tile, DType::Int8)) continue;
    if (onlyTile != nullptr && tile != std::atoi(onlyTile)) continue;
    ScopedEnv env("KILN_CUDA_INT8_CONV", "implicit");
    ScopedEnv forced("KILN_CUDA_IMPLICIT_TILE", std::to_string(tile).c_str());
    const std::string path = what + ", tile " + std::to_string(tile);
    const BuildResult built = buildInt8Stem(model, t, CalibrationMethod::MinMax, seed);
    expectInt8SpaceToDepthStem(built.report, t, path);
    for (const LayerReport& l : built.report.layers) {
      if (l.opType != "kiln.CudaConvInt8NHWC") continue;
      // The first convolution in the report's (execution) order is the stem.
      const std::string ran = "_tma.t" + std::to_string(tile);
      tmaStems += l.kernel.size() >= ran.size() && l.kernel.compare(l.kernel.size() - ran.size(), ran.size(), ran) == 0;
      break;
    }
    const Tensor got = runEngine(built, "cuda", inputs);
    expectStemClose(got, lt, 0.02, path + " vs cuBLASLt");
    expectStemClose(got, want, 0.1, path + " vs fp32");
  }
  if (onlyTile == nullptr && tmaStems == 0) throw kiln_test::Failure(what + ": no TMA convolution tile took the stem");
}

// KILN_CUDA_INT8_S2D=off: an RGB stem stays fp16 as before (with the build warning), and so does
// the max pool after it; the layers after it still run INT8.
KILN_TEST(cuda, int8_stem_space_to_depth_off_keeps_the_stem_fp16) {
  const Int8StemCase t{2, 3, 29, 31};
  const uint32_t seed = 700;
  const std::string what = describeInt8Case(t) + " (s2d off)";
  const auto [model, inputs, want] = prepareInt8(t, seed);
  ScopedEnv off("KILN_CUDA_INT8_S2D", "off");
  const BuildResult built = buildInt8Stem(model, t, CalibrationMethod::Entropy, seed);
  expectCount(countLayers(built.report, "kiln.CudaConvNHWC", "fp16"), 1, what + ": fp16 convolutions");
  expectCount(countLayers(built.report, "kiln.CudaConvInt8NHWC", "int8"), kInt8Convs - 1, what + ": INT8 convolutions");
  expectCount(countLayers(built.report, "kiln.CudaQuantizeSpaceToDepth", "int8"), 0, what + ": s2d quantizations");
  expectCount(countLayers(built.report, "kiln.CudaMaxPoolNHWC", "fp16"), 1, what + ": fp16 max pools");
  expectCount(countLayers(built.report, "kiln.CudaMaxPoolInt8NHWC", "int8"), 0, what + ": int8 max pools");
  if (!warned(built.report, "input channels not a multiple of 4"))
    throw kiln_test::Failure(what + ": no warning names the fp16 stem");
  expectStemClose(runEngine(built, "cuda", inputs), want, 0.1, what + " vs fp32");
}
