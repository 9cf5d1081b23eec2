// kiln.Gelu (erf and tanh forms, in place of the unfused subgraph's math) and the fused-activation
// attribute parsing shared by FusedConv / FusedGemm / FusedMatMul.
#include <cmath>

#include "backends/cpu/ops/gemm_common.h"
#include "compute_harness.h"

using namespace kiln;
using namespace compute_test;

KILN_TEST(fused, gelu_erf_and_tanh) {
  ThreadPool pool(2);
  Tensor x = randomFloats({3, 50001}, 1, -6.f, 6.f);  // big enough to split across threads
  std::vector<float> erfWant(size_t(x.numel())), tanhWant(size_t(x.numel()));
  for (int64_t i = 0; i < x.numel(); i++) {
    const double v = x.ptr<float>()[i];
    erfWant[size_t(i)] = float(0.5 * v * (1 + std::erf(v / std::sqrt(2.0))));
    tanhWant[size_t(i)] = float(0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))));
  }
  Call erf{"Gelu", "kiln", 1, {in(x)}};
  erf.fallbackShapes = {x.shape};
  erf.pool = &pool;
  expectClose(run1(erf), x.shape, erfWant, 2e-6, 2e-6, "Gelu erf");
  Call tanh = erf;
  tanh.attrs = {{"approximate", attrString("tanh")}};
  expectClose(run1(tanh), x.shape, tanhWant, 2e-6, 2e-6, "Gelu tanh");
  Call bad = erf;
  bad.attrs = {{"approximate", attrString("fast")}};
  EXPECT_THROWS_WITH(run1(bad), "approximate must be");

  Tensor xd = Tensor::allocate(DType::Float64, {4});
  for (int i = 0; i < 4; i++) xd.ptr<double>()[i] = -1.5 + i;
  Call dbl{"Gelu", "kiln", 1, {in(xd)}};
  dbl.fallbackShapes = {{4}};
  Tensor yd = run1(dbl);
  for (int i = 0; i < 4; i++) {
    double v = -1.5 + i;
    EXPECT_NEAR(yd.ptr<double>()[i], 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))), 1e-6);
  }
}

KILN_TEST(fused, activation_attributes) {
  Node node;
  node.name = "f";
  node.opType = "FusedConv";
  auto spec = [&](const char* name, std::vector<float> params) {
    node.attrs["activation"] = attrString(name);
    if (params.empty()) node.attrs.erase("activation_params");
    else node.attrs["activation_params"] = attrFloats(params);
    return cpu::nn::readActivation(node);
  };
  EXPECT_NEAR(spec("LeakyRelu", {}).alpha, 0.01, 1e-9);
  EXPECT_NEAR(spec("LeakyRelu", {0.3f}).alpha, 0.3, 1e-7);
  EXPECT_TRUE(std::isinf(spec("Clip", {}).beta));
  cpu::ActivationSpec clip = spec("Clip", {0.f, 6.f});
  EXPECT_NEAR(clip.alpha, 0, 0);
  EXPECT_NEAR(clip.beta, 6, 0);
  EXPECT_NEAR(spec("HardSigmoid", {}).alpha, 0.2, 1e-7);
  EXPECT_THROWS_WITH(spec("Swish", {}), "unknown fused activation 'Swish'");
}

// The scratch copy of a vector C holds max(M, N) values of the transposed operands' M and N (A [5,7]
// transposed is M=7; B [9,5] transposed is N=9): sizing it from the stored shapes once fell short.
KILN_TEST(fused, gemm_transposed_operands_with_vector_bias) {
  Tensor a = randomFloats({5, 7}, 11);
  Tensor b = randomFloats({9, 5}, 12);
  Tensor c = randomFloats({9}, 13);
  Call call{"Gemm", "", 13, {in(a), in(b), in(c)}};
  call.attrs = {{"transA", attrInt(1)}, {"transB", attrInt(1)}, {"alpha", attrFloat(0.5f)}, {"beta", attrFloat(2.f)}};
  call.fallbackShapes = {{7, 9}};
  std::vector<float> want(7 * 9);
  for (int m = 0; m < 7; m++) {
    for (int n = 0; n < 9; n++) {
      double acc = 0;
      for (int k = 0; k < 5; k++) acc += double(a.ptr<float>()[k * 7 + m]) * b.ptr<float>()[n * 5 + k];
      want[size_t(m * 9 + n)] = float(0.5 * acc + 2.0 * c.ptr<float>()[n]);
    }
  }
  expectClose(run1(call), {7, 9}, want, 1e-5, 1e-5, "Gemm transA transB");
}
