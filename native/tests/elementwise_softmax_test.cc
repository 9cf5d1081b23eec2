// Softmax, LogSoftmax and Hardmax on the CPU backend, both axis conventions.
#include "elementwise_test_util.h"

using namespace kiln;
using namespace kiln_test;

namespace {
std::vector<double> softmaxRef(const std::vector<double>& x) {
  double m = *std::max_element(x.begin(), x.end()), s = 0;
  std::vector<double> y;
  for (double v : x) s += std::exp(v - m);
  for (double v : x) y.push_back(std::exp(v - m) / s);
  return y;
}
}  // namespace

KILN_TEST(elementwise_softmax, last_axis_and_large_numbers) {
  Tensor x = f32({2, 4}, {0, 1, 2, 3, 10000, 10001, 10002, 10003});
  std::vector<double> r = softmaxRef({0, 1, 2, 3}), want = r;
  want.insert(want.end(), r.begin(), r.end());
  expectTensor(unary("Softmax", x, {}, 13), DType::Float32, {2, 4}, want, 1e-6);
  std::vector<double> logWant;
  for (double v : want) logWant.push_back(std::log(v));
  expectTensor(unary("LogSoftmax", x, {}, 13), DType::Float32, {2, 4}, logWant, 1e-5);
}

KILN_TEST(elementwise_softmax, inner_axis_is_strided) {
  // Axis 0 of [3, 2]: columns are normalised.
  Tensor x = f32({3, 2}, {1, 10, 2, 20, 3, 30});
  std::vector<double> c0 = softmaxRef({1, 2, 3}), c1 = softmaxRef({10, 20, 30});
  expectTensor(unary("Softmax", x, {{"axis", attrInt(0)}}, 13), DType::Float32, {3, 2},
               {c0[0], c1[0], c0[1], c1[1], c0[2], c1[2]}, 1e-6);
  expectTensor(unary("LogSoftmax", x, {{"axis", attrInt(0)}}, 13), DType::Float32, {3, 2},
               {std::log(c0[0]), std::log(c1[0]), std::log(c0[1]), std::log(c1[1]), std::log(c0[2]), std::log(c1[2])}, 1e-5);
}

KILN_TEST(elementwise_softmax, opset_11_coerces_to_2d) {
  // axis=1 of [2, 2, 2] before opset 13: each row of 4 is one distribution.
  Tensor x = f32({2, 2, 2}, {0, 1, 2, 3, 0, 0, 0, 0});
  std::vector<double> r = softmaxRef({0, 1, 2, 3});
  expectTensor(unary("Softmax", x, {}, 11), DType::Float32, {2, 2, 2}, {r[0], r[1], r[2], r[3], 0.25, 0.25, 0.25, 0.25}, 1e-6);
  // From 13 the same node normalises the last axis only.
  std::vector<double> p = softmaxRef({0, 1});
  expectTensor(unary("Softmax", x, {{"axis", attrInt(-1)}}, 13), DType::Float32, {2, 2, 2},
               {p[0], p[1], p[0], p[1], 0.5, 0.5, 0.5, 0.5}, 1e-6);
  EXPECT_THROWS_WITH(unary("Softmax", x, {{"axis", attrInt(3)}}, 13), "axis 3");
}

KILN_TEST(elementwise_softmax, hardmax_and_other_types) {
  Tensor x = f32({2, 3}, {1, 3, 3, -1, -2, -3});
  expectTensor(unary("Hardmax", x, {}, 13), DType::Float32, {2, 3}, {0, 1, 0, 1, 0, 0});
  expectTensor(unary("Hardmax", x, {{"axis", attrInt(0)}}, 13), DType::Float32, {2, 3}, {1, 1, 1, 0, 0, 0});
  std::vector<double> r = softmaxRef({0, 1});
  expectTensor(unary("Softmax", half({2}, {0, 1}), {}, 13), DType::Float16, {2}, r, 1e-3);
  expectTensor(unary("Softmax", f64({2}, {0, 1}), {}, 13), DType::Float64, {2}, r, 1e-15);
  EXPECT_THROWS_WITH(unary("Softmax", i32({2}, {0, 1}), {}, 13), "dtype int32");
}

KILN_TEST(elementwise_softmax, many_rows_in_parallel) {
  const int64_t rows = 1000, cols = 37;
  std::vector<float> v(rows * cols);
  for (size_t i = 0; i < v.size(); i++) v[i] = static_cast<float>(i % 13) * 0.3f;
  Tensor y = unary("Softmax", f32({rows, cols}, v), {}, 13);
  for (int64_t r = 0; r < rows; r += 111) {
    double s = 0;
    for (int64_t c = 0; c < cols; c++) s += y.ptr<float>()[r * cols + c];
    EXPECT_NEAR(s, 1.0, 1e-5);
  }
}
