// Activation functions on the CPU backend.
#include "elementwise_test_util.h"

using namespace kiln;
using namespace kiln_test;

namespace {
double sigmoid(double x) { return 1 / (1 + std::exp(-x)); }
}  // namespace

KILN_TEST(elementwise_activation, relu_family) {
  Tensor x = f32({4}, {-2, -0.5f, 0, 3});
  expectTensor(unary("Relu", x), DType::Float32, {4}, {0, 0, 0, 3});
  expectTensor(unary("Relu", i32({3}, {-5, 0, 5})), DType::Int32, {3}, {0, 0, 5});
  expectTensor(unary("Relu", f32({1}, {NAN})), DType::Float32, {1}, {kNaN});
  expectTensor(unary("LeakyRelu", x), DType::Float32, {4}, {-0.02, -0.005, 0, 3}, 1e-7);
  expectTensor(unary("LeakyRelu", x, {{"alpha", attrFloat(0.5f)}}), DType::Float32, {4}, {-1, -0.25, 0, 3});
  expectTensor(unary("Elu", x), DType::Float32, {4}, {std::expm1(-2.0), std::expm1(-0.5), 0, 3}, 1e-6);
  expectTensor(unary("Selu", x), DType::Float32, {4},
               {1.0507009873554805 * 1.6732632423543772 * std::expm1(-2.0),
                1.0507009873554805 * 1.6732632423543772 * std::expm1(-0.5), 0, 1.0507009873554805 * 3},
               1e-5);
  expectTensor(unary("Celu", x, {{"alpha", attrFloat(2.0f)}}), DType::Float32, {4},
               {2 * std::expm1(-1.0), 2 * std::expm1(-0.25), 0, 3}, 1e-6);
  expectTensor(unary("ThresholdedRelu", x, {{"alpha", attrFloat(0.0f)}}), DType::Float32, {4}, {0, 0, 0, 3});
  expectTensor(unary("ThresholdedRelu", f32({3}, {0.5f, 1, 2})), DType::Float32, {3}, {0, 0, 2});
  EXPECT_THROWS_WITH(unary("Celu", x, {{"alpha", attrFloat(0.0f)}}), "alpha");
}

KILN_TEST(elementwise_activation, prelu_broadcasts_slope) {
  Tensor x = f32({2, 3}, {-1, 2, -3, -4, 5, -6});
  expectTensor(binary("PRelu", x, f32({3}, {0.1f, 0.2f, 0.3f})), DType::Float32, {2, 3}, {-0.1, 2, -0.9, -0.4, 5, -1.8}, 1e-6);
  expectTensor(binary("PRelu", x, scalarF(0.5f)), DType::Float32, {2, 3}, {-0.5, 2, -1.5, -2, 5, -3});
  EXPECT_THROWS_WITH(binary("PRelu", f32({3}, {1, 2, 3}), f32({2, 3}, {1, 1, 1, 1, 1, 1})), "broadcast");
}

KILN_TEST(elementwise_activation, sigmoid_tanh_and_friends) {
  std::vector<float> v = {-100, -20, -3, -0.5f, 0, 0.5f, 3, 20, 100};
  std::vector<double> sig, th, sp, ss, hs, hsw, mish;
  for (float f : v) {
    double d = f;
    sig.push_back(sigmoid(d));
    th.push_back(std::tanh(d));
    sp.push_back(d > 30 ? d : std::log1p(std::exp(d)));
    ss.push_back(d / (1 + std::fabs(d)));
    hs.push_back(std::max(0.0, std::min(1.0, 0.2 * d + 0.5)));
    hsw.push_back(d * std::max(0.0, std::min(1.0, d / 6 + 0.5)));
    mish.push_back(d * std::tanh(d > 30 ? d : std::log1p(std::exp(d))));
  }
  Tensor x = f32({9}, v);
  expectTensor(unary("Sigmoid", x), DType::Float32, {9}, sig, 1e-6);
  expectTensor(unary("Tanh", x), DType::Float32, {9}, th, 1e-6);
  expectTensor(unary("Softplus", x), DType::Float32, {9}, sp, 1e-5);
  expectTensor(unary("Softsign", x), DType::Float32, {9}, ss, 1e-6);
  expectTensor(unary("HardSigmoid", x), DType::Float32, {9}, hs, 1e-6);
  expectTensor(unary("HardSwish", x), DType::Float32, {9}, hsw, 1e-5);
  expectTensor(unary("Mish", x), DType::Float32, {9}, mish, 1e-5);
  expectTensor(unary("Sigmoid", f64({2}, {-800, 800})), DType::Float64, {2}, {0, 1});
  expectTensor(unary("Sigmoid", half({2}, {0, 2})), DType::Float16, {2}, {0.5, sigmoid(2)}, 1e-3);
  expectTensor(unary("Tanh", bf16({1}, {1})), DType::BFloat16, {1}, {std::tanh(1.0)}, 1e-2);
}

KILN_TEST(elementwise_activation, gelu_exact_and_tanh) {
  std::vector<float> v = {-3, -1, -0.1f, 0, 0.1f, 1, 3};
  std::vector<double> exact, approx;
  for (float f : v) {
    double d = f;
    exact.push_back(0.5 * d * (1 + std::erf(d / std::sqrt(2.0))));
    approx.push_back(0.5 * d * (1 + std::tanh(std::sqrt(2 / M_PI) * (d + 0.044715 * d * d * d))));
  }
  expectTensor(unary("Gelu", f32({7}, v), {}, 20), DType::Float32, {7}, exact, 1e-6);
  expectTensor(unary("Gelu", f32({7}, v), {{"approximate", attrString("tanh")}}, 20), DType::Float32, {7}, approx, 1e-6);
  EXPECT_THROWS_WITH(unary("Gelu", f32({1}, {1}), {{"approximate", attrString("fast")}}, 20), "approximate");
}

KILN_TEST(elementwise_activation, clip_versions) {
  Tensor x = f32({5}, {-3, -1, 0, 1, NAN});
  // Opset 6: attributes.
  expectTensor(unary("Clip", x, {{"min", attrFloat(-1.5f)}, {"max", attrFloat(0.5f)}}, 6), DType::Float32, {5},
               {-1.5, -1, 0, 0.5, kNaN});
  expectTensor(unary("Clip", x, {}, 6), DType::Float32, {5}, {-3, -1, 0, 1, kNaN});
  // Opset 13: optional scalar inputs; max alone; min > max gives max.
  expectTensor(run1({"Clip", 13, {x, scalarF(-2), scalarF(0.5f)}}), DType::Float32, {5}, {-2, -1, 0, 0.5, kNaN});
  expectTensor(run1({"Clip", 13, {x, std::nullopt, scalarF(0)}}), DType::Float32, {5}, {-3, -1, 0, 0, kNaN});
  expectTensor(run1({"Clip", 13, {x, scalarF(2), scalarF(1)}}), DType::Float32, {5}, {1, 1, 1, 1, kNaN});
  expectTensor(run1({"Clip", 13, {make<int8_t>({3}, {-128, 0, 127}), make<int8_t>({}, {-5})}}), DType::Int8, {3}, {-5, 0, 127});
  EXPECT_THROWS_WITH(run1({"Clip", 13, {x, f32({2}, {0, 1})}}), "scalar");
}

KILN_TEST(elementwise_activation, shrink) {
  Tensor x = f32({5}, {-2, -0.5f, 0, 0.5f, 2});
  expectTensor(unary("Shrink", x, {{"lambd", attrFloat(1.0f)}}), DType::Float32, {5}, {-2, 0, 0, 0, 2});
  expectTensor(unary("Shrink", x, {{"lambd", attrFloat(1.0f)}, {"bias", attrFloat(1.0f)}}), DType::Float32, {5}, {-1, 0, 0, 0, 1});
  expectTensor(unary("Shrink", i32({3}, {-5, 0, 5}), {{"lambd", attrFloat(1.0f)}, {"bias", attrFloat(2.0f)}}), DType::Int32, {3},
               {-3, 0, 3});
}

KILN_TEST(elementwise_activation, large_tensors_use_every_path) {
  // More than one parallel chunk and a tail that is not a multiple of the vector width.
  const int64_t n = 40003;
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; i++) v[i] = static_cast<float>((i % 2001) - 1000) * 0.01f;
  Tensor s = unary("Sigmoid", f32({n}, v));
  Tensor g = unary("Gelu", f32({n}, v), {}, 20);
  for (int64_t i = 0; i < n; i += 97) {
    EXPECT_NEAR(s.ptr<float>()[i], sigmoid(v[i]), 1e-6);
    EXPECT_NEAR(g.ptr<float>()[i], 0.5 * v[i] * (1 + std::erf(v[i] / std::sqrt(2.0))), 2e-6);
  }
}
