// Reduce*, ArgMax/ArgMin and CumSum on the CPU backend.
#include "elementwise_test_util.h"

using namespace kiln;
using namespace kiln_test;

namespace {
// [2, 3, 2] with values 1..12.
Tensor cube() { return f32({2, 3, 2}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}); }
}  // namespace

KILN_TEST(elementwise_reduce, axes_from_attribute_and_input) {
  // Opset 11: axes attribute; opset 13 (ReduceSum) / 18 (others): axes input.
  expectTensor(unary("ReduceSum", cube(), {{"axes", attrInts({1})}}, 11), DType::Float32, {2, 1, 2}, {9, 12, 27, 30});
  expectTensor(run1({"ReduceSum", 13, {cube(), ints({1})}, {{"keepdims", attrInt(0)}}}), DType::Float32, {2, 2}, {9, 12, 27, 30});
  expectTensor(run1({"ReduceMean", 18, {cube(), ints({0, 2})}}), DType::Float32, {1, 3, 1}, {4.5, 6.5, 8.5});
  expectTensor(run1({"ReduceMax", 18, {cube(), ints({-1})}, {{"keepdims", attrInt(0)}}}), DType::Float32, {2, 3},
               {2, 4, 6, 8, 10, 12});
  // No axes: everything, unless noop_with_empty_axes.
  expectTensor(run1({"ReduceSum", 13, {cube()}}), DType::Float32, {1, 1, 1}, {78});
  expectTensor(run1({"ReduceSum", 13, {cube(), ints({})}, {{"noop_with_empty_axes", attrInt(1)}}}), DType::Float32,
               {2, 3, 2}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  expectTensor(unary("ReduceProd", f32({2, 2}, {1, 2, 3, 4}), {{"keepdims", attrInt(0)}}, 11), DType::Float32, {}, {24});
  EXPECT_THROWS_WITH(run1({"ReduceSum", 13, {cube(), ints({0, 0})}}), "repeated");
  EXPECT_THROWS_WITH(run1({"ReduceSum", 13, {cube(), ints({3})}}), "out of range");
}

KILN_TEST(elementwise_reduce, every_reduction) {
  Tensor x = f32({2, 2}, {-1, 2, 3, -4});
  Attrs last = {{"axes", attrInts({1})}, {"keepdims", attrInt(0)}};
  expectTensor(unary("ReduceL1", x, last, 13), DType::Float32, {2}, {3, 7});
  expectTensor(unary("ReduceL2", x, last, 13), DType::Float32, {2}, {std::sqrt(5.0), 5}, 1e-6);
  expectTensor(unary("ReduceSumSquare", x, last, 13), DType::Float32, {2}, {5, 25});
  expectTensor(unary("ReduceMin", x, last, 13), DType::Float32, {2}, {-1, -4});
  expectTensor(unary("ReduceProd", x, last, 13), DType::Float32, {2}, {-2, -12});
  expectTensor(unary("ReduceLogSum", f32({2, 2}, {1, 2, 3, 4}), last, 13), DType::Float32, {2}, {std::log(3.0), std::log(7.0)}, 1e-6);
  // LogSumExp stays finite for large inputs.
  expectTensor(unary("ReduceLogSumExp", f32({1, 2}, {1000, 1000}), last, 13), DType::Float32, {1}, {1000 + std::log(2.0)}, 1e-3);
  expectTensor(unary("ReduceLogSumExp", f32({1, 2}, {-INFINITY, -INFINITY}), last, 13), DType::Float32, {1}, {-kInf});
  expectTensor(unary("ReduceMax", f32({1, 3}, {1, NAN, 2}), last, 13), DType::Float32, {1}, {kNaN});
}

KILN_TEST(elementwise_reduce, leading_and_middle_axes) {
  // Leading axis: rows folded elementwise; middle axis: the general walk.
  expectTensor(unary("ReduceSum", cube(), {{"axes", attrInts({0})}, {"keepdims", attrInt(0)}}, 11), DType::Float32, {3, 2},
               {8, 10, 12, 14, 16, 18});
  expectTensor(unary("ReduceMin", cube(), {{"axes", attrInts({0, 2})}, {"keepdims", attrInt(0)}}, 11), DType::Float32, {3},
               {1, 3, 5});
}

KILN_TEST(elementwise_reduce, types_and_empty_sets) {
  expectTensor(run1({"ReduceSum", 13, {i32({2, 2}, {INT32_MAX, 1, 2, 3}), ints({1})}}), DType::Int32, {2, 1}, {INT32_MIN, 5});
  expectTensor(run1({"ReduceMean", 18, {i64({1, 4}, {1, 2, 3, 5}), ints({1})}}), DType::Int64, {1, 1}, {2});
  expectTensor(run1({"ReduceMax", 20, {makeBool({2, 2}, {0, 1, 0, 0}), ints({1})}}), DType::Bool, {2, 1}, {1, 0});
  expectTensor(run1({"ReduceMin", 20, {makeBool({2, 2}, {1, 1, 0, 1}), ints({1})}}), DType::Bool, {2, 1}, {1, 0});
  EXPECT_THROWS_WITH(run1({"ReduceSum", 13, {makeBool({1}, {1})}}), "dtype bool");
  // Reducing an empty axis gives the reduction's identity.
  Tensor empty = f32({2, 0, 3}, {});
  expectTensor(run1({"ReduceSum", 13, {empty, ints({1})}}), DType::Float32, {2, 1, 3}, {0, 0, 0, 0, 0, 0});
  expectTensor(run1({"ReduceProd", 18, {empty, ints({1})}, {{"keepdims", attrInt(0)}}}), DType::Float32, {2, 3}, {1, 1, 1, 1, 1, 1});
  expectTensor(run1({"ReduceMax", 18, {empty, ints({1})}, {{"keepdims", attrInt(0)}}}), DType::Float32, {2, 3},
               {-kInf, -kInf, -kInf, -kInf, -kInf, -kInf});
  expectTensor(run1({"ReduceLogSumExp", 18, {empty, ints({1})}, {{"keepdims", attrInt(0)}}}), DType::Float32, {2, 3},
               {-kInf, -kInf, -kInf, -kInf, -kInf, -kInf});
  // A zero-sized kept axis gives an empty result.
  expectTensor(run1({"ReduceSum", 13, {f32({0, 3}, {}), ints({1})}}), DType::Float32, {0, 1}, {});
}

KILN_TEST(elementwise_reduce, large_reductions_match_naive) {
  const int64_t a = 64, b = 300, c = 5;
  std::vector<float> v(a * b * c);
  for (size_t i = 0; i < v.size(); i++) v[i] = static_cast<float>((i * 7919) % 101) * 0.01f;
  Tensor x = f32({a, b, c}, v);
  Tensor last = run1({"ReduceSum", 13, {f32({a * c, b}, v), ints({1})}, {{"keepdims", attrInt(0)}}});
  Tensor mid = run1({"ReduceMean", 18, {x, ints({1})}, {{"keepdims", attrInt(0)}}});
  for (int64_t i = 0; i < a * c; i++) {
    double s = 0;
    for (int64_t j = 0; j < b; j++) s += v[i * b + j];
    EXPECT_NEAR(last.ptr<float>()[i], s, 1e-3);
  }
  for (int64_t i = 0; i < a; i++) {
    for (int64_t k = 0; k < c; k++) {
      double s = 0;
      for (int64_t j = 0; j < b; j++) s += v[(i * b + j) * c + k];
      EXPECT_NEAR(mid.ptr<float>()[i * c + k], s / b, 1e-5);
    }
  }
}

KILN_TEST(elementwise_reduce, argmax_argmin) {
  Tensor x = f32({2, 3}, {1, 5, 5, 7, -1, 7});
  expectTensor(unary("ArgMax", x, {{"axis", attrInt(1)}}, 13), DType::Int64, {2, 1}, {1, 0});
  expectTensor(unary("ArgMax", x, {{"axis", attrInt(1)}, {"select_last_index", attrInt(1)}}, 13), DType::Int64, {2, 1}, {2, 2});
  expectTensor(unary("ArgMin", x, {{"axis", attrInt(0)}, {"keepdims", attrInt(0)}}, 13), DType::Int64, {3}, {0, 1, 0});
  expectTensor(unary("ArgMax", x, {{"axis", attrInt(-2)}, {"keepdims", attrInt(0)}}, 13), DType::Int64, {3}, {1, 0, 1});
  expectTensor(unary("ArgMax", f32({3}, {1, NAN, 2}), {}, 13), DType::Int64, {1}, {1});
  expectTensor(unary("ArgMin", make<uint8_t>({3}, {9, 3, 3}), {{"select_last_index", attrInt(1)}}, 13), DType::Int64, {1}, {2});
  EXPECT_THROWS_WITH(unary("ArgMax", f32({2, 0}, {}), {{"axis", attrInt(1)}}, 13), "empty axis");
  EXPECT_THROWS_WITH(unary("ArgMax", x, {{"axis", attrInt(2)}}, 13), "out of range");
}

KILN_TEST(elementwise_reduce, cumsum_modes) {
  Tensor x = f32({5}, {1, 2, 3, 4, 5});
  expectTensor(binary("CumSum", x, i64({}, {0}), {}, 14), DType::Float32, {5}, {1, 3, 6, 10, 15});
  expectTensor(binary("CumSum", x, i32({}, {0}), {{"exclusive", attrInt(1)}}, 14), DType::Float32, {5}, {0, 1, 3, 6, 10});
  expectTensor(binary("CumSum", x, i64({}, {0}), {{"reverse", attrInt(1)}}, 14), DType::Float32, {5}, {15, 14, 12, 9, 5});
  expectTensor(binary("CumSum", x, i64({}, {0}), {{"reverse", attrInt(1)}, {"exclusive", attrInt(1)}}, 14), DType::Float32, {5},
               {14, 12, 9, 5, 0});
  Tensor m = i32({2, 3}, {1, 2, 3, 4, 5, 6});
  expectTensor(binary("CumSum", m, i64({1}, {0}), {}, 14), DType::Int32, {2, 3}, {1, 2, 3, 5, 7, 9});
  expectTensor(binary("CumSum", m, i64({}, {-1}), {}, 14), DType::Int32, {2, 3}, {1, 3, 6, 4, 9, 15});
  EXPECT_THROWS_WITH(binary("CumSum", m, i64({2}, {0, 1}), {}, 14), "scalar");
  EXPECT_THROWS_WITH(binary("CumSum", m, i64({}, {2}), {}, 14), "out of range");
}

KILN_TEST(elementwise_reduce, det_batched_with_pivoting) {
  // [[0, 1], [2, 3]] needs a row swap: det = -2. [[2, 0, 0], [0, 3, 0], [0, 0, 4]] = 24 (as a
  // batch of one 3x3), singular matrices give 0.
  expectTensor(unary("Det", f32({2, 2, 2}, {0, 1, 2, 3, 1, 2, 2, 4}), {}, 22), DType::Float32, {2}, {-2, 0}, 1e-6);
  expectTensor(unary("Det", f64({3, 3}, {2, 0, 0, 0, 3, 0, 0, 0, 4}), {}, 22), DType::Float64, {}, {24}, 1e-12);
  EXPECT_THROWS_WITH(unary("Det", f32({2, 3}, {1, 2, 3, 4, 5, 6}), {}, 22), "square");
}
