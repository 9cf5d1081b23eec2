// Tests of the indexing ops: Gather, GatherElements, GatherND, Scatter, ScatterElements, ScatterND,
// OneHot, Compress, NonZero.
#include "tensor_test_harness.h"

using namespace kiln_test;

KILN_TEST(tensor_index, gather_axes) {
  Tensor data = make<float>({3, 2}, {1.0f, 1.2f, 2.3f, 3.4f, 4.5f, 5.7f});
  expectValues<float>(run1({"Gather", 13, {data, make<int64_t>({2, 2}, {0, 1, 1, 2})}}), {2, 2, 2},
                      {1.0f, 1.2f, 2.3f, 3.4f, 2.3f, 3.4f, 4.5f, 5.7f});
  Tensor d3 = make<float>({3, 3}, {1.0f, 1.2f, 1.9f, 2.3f, 3.4f, 3.9f, 4.5f, 5.7f, 5.9f});
  expectValues<float>(run1({"Gather", 13, {d3, make<int32_t>({1, 2}, {0, 2})}, {{"axis", attrInt(1)}}}), {3, 1, 2},
                      {1.0f, 1.9f, 2.3f, 3.9f, 4.5f, 5.9f});
  // Negative indices and a scalar index (removes the axis).
  expectValues<float>(run1({"Gather", 13, {d3, scalarInt(-1)}, {{"axis", attrInt(-2)}}}), {3}, {4.5f, 5.7f, 5.9f});
  // Empty indices.
  EXPECT_EQ(kiln::shapeToString(run1({"Gather", 13, {d3, make<int64_t>({0}, {})}}).shape), "[0,3]");
}

KILN_TEST(tensor_index, gather_rejects_out_of_range) {
  Tensor data = iota<float>({3, 2});
  EXPECT_THROWS_WITH(run1({"Gather", 13, {data, ints({0, 3})}}), "indices[1] = 3 is out of range [-3, 3)");
  EXPECT_THROWS_WITH(run1({"Gather", 13, {data, ints({-4})}}), "Gather node 'n0'");
  EXPECT_THROWS_WITH(run1({"Gather", 13, {data, ints({0})}, {{"axis", attrInt(2)}}}), "out of range");
}

KILN_TEST(tensor_index, gather_elements) {
  Tensor data = make<int32_t>({2, 2}, {1, 2, 3, 4});
  expectValues<int32_t>(run1({"GatherElements", 13, {data, make<int64_t>({2, 2}, {0, 0, 1, 0})}, {{"axis", attrInt(1)}}}),
                        {2, 2}, {1, 1, 4, 3});
  Tensor d3 = iota<int32_t>({3, 3});
  expectValues<int32_t>(run1({"GatherElements", 13, {d3, make<int64_t>({2, 3}, {1, 2, 0, 2, 0, -3})}}), {2, 3},
                        {3, 7, 2, 6, 1, 2});
  EXPECT_THROWS_WITH(run1({"GatherElements", 13, {data, make<int64_t>({1, 1}, {2})}}), "out of range");
}

KILN_TEST(tensor_index, gather_nd_batch_dims) {
  Tensor data = make<int32_t>({2, 2}, {0, 1, 2, 3});
  expectValues<int32_t>(run1({"GatherND", 13, {data, make<int64_t>({2, 2}, {0, 0, 1, 1})}}), {2}, {0, 3});
  expectValues<int32_t>(run1({"GatherND", 13, {data, make<int64_t>({2, 1}, {1, 0})}}), {2, 2}, {2, 3, 0, 1});
  Tensor d3 = iota<int32_t>({2, 2, 2});
  expectValues<int32_t>(run1({"GatherND", 13, {d3, make<int64_t>({2, 1}, {1, 0})}, {{"batch_dims", attrInt(1)}}}), {2, 2},
                        {2, 3, 4, 5});
  EXPECT_THROWS_WITH(run1({"GatherND", 13, {data, make<int64_t>({1, 2}, {0, 2})}}), "out of range");
  EXPECT_THROWS_WITH(run1({"GatherND", 13, {data, make<int64_t>({1, 3}, {0, 0, 0})}}), "[1, 2]");
}

KILN_TEST(tensor_index, scatter_elements_reductions) {
  Tensor data = make<float>({1, 5}, {1, 2, 3, 4, 5});
  Tensor upd = make<float>({1, 2}, {1.1f, 2.1f});
  expectValues<float>(run1({"ScatterElements", 18, {data, make<int64_t>({1, 2}, {1, 3}), upd}, {{"axis", attrInt(1)}}}),
                      {1, 5}, {1, 1.1f, 3, 2.1f, 5});
  Tensor dup = make<int64_t>({1, 2}, {1, 1});
  expectValues<float>(run1({"ScatterElements", 18, {data, dup, upd}, {{"axis", attrInt(1)}, {"reduction", attrString("add")}}}),
                      {1, 5}, {1, 5.2f, 3, 4, 5});
  expectValues<float>(run1({"ScatterElements", 18, {data, dup, upd}, {{"axis", attrInt(1)}, {"reduction", attrString("mul")}}}),
                      {1, 5}, {1, 2 * 1.1f * 2.1f, 3, 4, 5}, 1e-5);
  expectValues<float>(run1({"ScatterElements", 18, {data, dup, upd}, {{"axis", attrInt(1)}, {"reduction", attrString("max")}}}),
                      {1, 5}, {1, 2.1f, 3, 4, 5});
  expectValues<float>(run1({"ScatterElements", 18, {data, dup, upd}, {{"axis", attrInt(1)}, {"reduction", attrString("min")}}}),
                      {1, 5}, {1, 1.1f, 3, 4, 5});
  // Negative index; the deprecated Scatter name; max/min do not exist before opset 18.
  expectValues<float>(run1({"ScatterElements", 13, {data, make<int64_t>({1, 1}, {-1}), make<float>({1, 1}, {9})}, {{"axis", attrInt(1)}}}),
                      {1, 5}, {1, 2, 3, 4, 9});
  expectValues<float>(run1({"Scatter", 9, {data, make<int64_t>({1, 1}, {0}), make<float>({1, 1}, {9})}, {{"axis", attrInt(1)}}}),
                      {1, 5}, {9, 2, 3, 4, 5});
  EXPECT_THROWS_WITH(run1({"ScatterElements", 16, {data, dup, upd}, {{"axis", attrInt(1)}, {"reduction", attrString("max")}}}),
                     "reduction");
  EXPECT_THROWS_WITH(run1({"ScatterElements", 18, {data, make<int64_t>({1, 2}, {1, 5}), upd}, {{"axis", attrInt(1)}}}),
                     "indices[1] = 5");
}

KILN_TEST(tensor_index, scatter_nd) {
  Tensor data = make<int32_t>({8}, {1, 2, 3, 4, 5, 6, 7, 8});
  Tensor idx = make<int64_t>({4, 1}, {4, 3, 1, 7});
  Tensor upd = make<int32_t>({4}, {9, 10, 11, 12});
  expectValues<int32_t>(run1({"ScatterND", 18, {data, idx, upd}}), {8}, {1, 11, 3, 10, 9, 6, 7, 12});
  expectValues<int32_t>(run1({"ScatterND", 18, {data, idx, upd}, {{"reduction", attrString("add")}}}), {8},
                        {1, 13, 3, 14, 14, 6, 7, 20});
  // Slices: indices address rows of a matrix.
  Tensor m = iota<float>({3, 2});
  expectValues<float>(run1({"ScatterND", 13, {m, make<int64_t>({1, 1}, {-1}), make<float>({1, 2}, {7, 8})}}), {3, 2},
                      {0, 1, 2, 3, 7, 8});
  EXPECT_THROWS_WITH(run1({"ScatterND", 13, {data, make<int64_t>({1, 1}, {8}), make<int32_t>({1}, {0})}}), "out of range");
  EXPECT_THROWS_WITH(run1({"ScatterND", 13, {data, idx, make<int32_t>({3}, {0, 0, 0})}}), "updates must have shape");
  // Integer overflow under add wraps rather than being undefined.
  Tensor big = make<int32_t>({1}, {INT32_MAX});
  expectValues<int32_t>(run1({"ScatterND", 16, {big, make<int64_t>({1, 1}, {0}), make<int32_t>({1}, {1})}, {{"reduction", attrString("add")}}}),
                        {1}, {INT32_MIN});
}

KILN_TEST(tensor_index, one_hot) {
  Tensor idx = make<int64_t>({3}, {0, 2, -1});
  Tensor vals = make<float>({2}, {0, 5});
  expectValues<float>(run1({"OneHot", 11, {idx, scalarInt(3), vals}}), {3, 3}, {5, 0, 0, 0, 0, 5, 0, 0, 5});
  expectValues<float>(run1({"OneHot", 11, {idx, scalarInt(3), vals}, {{"axis", attrInt(0)}}}), {3, 3}, {5, 0, 0, 0, 0, 0, 0, 5, 5});
  // Out of range: all off. Float indices truncate.
  expectValues<float>(run1({"OneHot", 11, {make<float>({2}, {7.0f, 1.5f}), make<float>({1}, {3}), vals}}), {2, 3},
                      {0, 0, 0, 0, 5, 0});
  EXPECT_THROWS_WITH(run1({"OneHot", 11, {idx, scalarInt(0), vals}}), "depth");
}

KILN_TEST(tensor_index, compress_and_nonzero) {
  Tensor x = make<float>({3, 2}, {1, 2, 3, 4, 5, 6});
  expectValues<float>(run1({"Compress", 11, {x, makeBool({3}, {0, 1, 1})}, {{"axis", attrInt(0)}}}), {2, 2}, {3, 4, 5, 6});
  expectValues<float>(run1({"Compress", 11, {x, makeBool({2}, {0, 1})}, {{"axis", attrInt(-1)}}}), {3, 1}, {2, 4, 6});
  expectValues<float>(run1({"Compress", 11, {x, makeBool({5}, {0, 1, 0, 0, 1})}}), {2}, {2, 5});
  EXPECT_THROWS_WITH(run1({"Compress", 11, {x, makeBool({4}, {0, 0, 0, 1})}, {{"axis", attrInt(0)}}}), "selects index 3");
  expectValues<int64_t>(run1({"NonZero", 13, {make<float>({2, 2}, {1, 0, 1, -0.0f})}}), {2, 2}, {0, 1, 0, 0});
  expectValues<int64_t>(run1({"NonZero", 13, {makeBool({2, 2}, {1, 0, 1, 1})}}), {2, 3}, {0, 1, 1, 0, 0, 1});
  EXPECT_EQ(kiln::shapeToString(run1({"NonZero", 13, {iota<int32_t>({0, 3})}}).shape), "[2,0]");
}
