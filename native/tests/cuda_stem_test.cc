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
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

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

// Builds for `backend`, loads and runs; on cuda a second run replays the captured CUDA graph and
// must give the same bytes. The report's layers go to `report` when given.
Tensor buildAndRun(const std::vector<uint8_t>& model, const std::string& backend, Precision precision,
                   const std::vector<std::pair<std::string, Tensor>>& inputs, BuildReport* report = nullptr) {
  BuildOptions options;
  options.backend = backend;
  options.precision = precision;
  BuildResult built = buildEngine(model.data(), model.size(), options);
  if (report != nullptr) *report = built.report;
  std::shared_ptr<Engine> engine = Engine::load(built.engine.data(), built.engine.size());
  std::unique_ptr<ExecutionContext> ctx = engine->createContext();
  RunResult r = ctx->run(inputs);
  if (backend == "cuda") {
    RunResult again = ctx->run(inputs);
    EXPECT_TRUE(std::memcmp(r.outputs[0].second.data, again.outputs[0].second.data, r.outputs[0].second.byteSize()) == 0);
  }
  return std::move(r.outputs[0].second);
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
