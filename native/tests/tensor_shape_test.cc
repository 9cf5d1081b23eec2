// Tests of the shape ops: Reshape, Flatten, Squeeze, Unsqueeze, Shape, Size, Identity, Expand.
#include "tensor_test_harness.h"

using namespace kiln_test;
using kiln::SymShape;

KILN_TEST(tensor_shape, reshape_zero_and_minus_one) {
  Tensor out = run1({"Reshape", 14, {iota<float>({2, 3, 4}), ints({0, -1, 2})}});
  expectValues<float>(out, {2, 6, 2}, values<float>(iota<float>({2, 3, 4})));
}

KILN_TEST(tensor_shape, reshape_allowzero_keeps_zero) {
  Tensor out = run1({"Reshape", 14, {iota<float>({0, 3}), ints({3, 0})}, {{"allowzero", attrInt(1)}}});
  EXPECT_EQ(kiln::shapeToString(out.shape), "[3,0]");
}

KILN_TEST(tensor_shape, reshape_opset1_attribute) {
  Tensor out = run1({"Reshape", 1, {iota<int32_t>({6})}, {{"shape", attrInts({3, 2})}}});
  expectValues<int32_t>(out, {3, 2}, {0, 1, 2, 3, 4, 5});
}

KILN_TEST(tensor_shape, reshape_incompatible_names_both_shapes) {
  EXPECT_THROWS_WITH(run1({"Reshape", 14, {iota<float>({2, 3}), ints({4, 2})}}), "[2,3]");
  EXPECT_THROWS_WITH(run1({"Reshape", 14, {iota<float>({2, 3}), ints({4, 2})}}), "[4,2]");
  EXPECT_THROWS_WITH(run1({"Reshape", 14, {iota<float>({2, 3}), ints({-1, 4})}}), "cannot reshape");
  EXPECT_THROWS_WITH(run1({"Reshape", 14, {iota<float>({2, 3}), ints({-1, -1})}}), "more than one -1");
}

KILN_TEST(tensor_shape, reshape_symbolic) {
  Tensor target = ints({0, 0, 12, 64});
  auto r = inferOp("Reshape", 14, {symShape({"batch", "seq", "768"}), SymShape::of({4})},
                   {DType::Float32, DType::Int64}, {nullptr, &target}, {});
  EXPECT_EQ(r.shapes[0].toString(), "[batch,seq,12,64]");
  Tensor target2 = ints({-1, 768});
  r = inferOp("Reshape", 14, {symShape({"batch", "seq", "12", "64"}), SymShape::of({2})},
              {DType::Float32, DType::Int64}, {nullptr, &target2}, {});
  EXPECT_EQ(r.shapes[0].dims[1].value, 768);
  Tensor target3 = ints({-1, 3, 64});
  r = inferOp("Reshape", 14, {symShape({"batch", "192"}), SymShape::of({3})}, {DType::Float32, DType::Int64},
              {nullptr, &target3}, {});
  EXPECT_EQ(r.shapes[0].toString(), "[batch,3,64]");
}

KILN_TEST(tensor_shape, reshape_strings) {
  Tensor out = run1({"Reshape", 14, {make<std::string>({2, 2}, {"a", "b", "c", "d"}), ints({4})}});
  expectValues<std::string>(out, {4}, {"a", "b", "c", "d"});
}

KILN_TEST(tensor_shape, flatten_axes) {
  EXPECT_EQ(kiln::shapeToString(run1({"Flatten", 13, {iota<float>({2, 3, 4, 5})}, {{"axis", attrInt(0)}}}).shape), "[1,120]");
  EXPECT_EQ(kiln::shapeToString(run1({"Flatten", 13, {iota<float>({2, 3, 4, 5})}, {{"axis", attrInt(-1)}}}).shape), "[24,5]");
  EXPECT_EQ(kiln::shapeToString(run1({"Flatten", 13, {iota<float>({2, 3, 4, 5})}, {{"axis", attrInt(4)}}}).shape), "[120,1]");
  EXPECT_EQ(kiln::shapeToString(run1({"Flatten", 13, {iota<float>({2, 3, 4, 5})}}).shape), "[2,60]");
  EXPECT_THROWS_WITH(run1({"Flatten", 9, {iota<float>({2, 3})}, {{"axis", attrInt(-1)}}}), "out of range");
  EXPECT_THROWS_WITH(run1({"Flatten", 13, {iota<float>({2, 3})}, {{"axis", attrInt(3)}}}), "out of range");
}

KILN_TEST(tensor_shape, squeeze_unsqueeze) {
  EXPECT_EQ(kiln::shapeToString(run1({"Squeeze", 13, {iota<float>({1, 3, 1, 2}), ints({-2})}}).shape), "[1,3,2]");
  EXPECT_EQ(kiln::shapeToString(run1({"Squeeze", 13, {iota<float>({1, 3, 1, 2}), std::nullopt}}).shape), "[3,2]");
  EXPECT_EQ(kiln::shapeToString(run1({"Squeeze", 11, {iota<float>({1, 3, 1, 2})}, {{"axes", attrInts({0})}}}).shape), "[3,1,2]");
  EXPECT_THROWS_WITH(run1({"Squeeze", 13, {iota<float>({1, 3}), ints({1})}}), "cannot squeeze axis 1");
  EXPECT_EQ(kiln::shapeToString(run1({"Unsqueeze", 13, {iota<float>({3, 4}), ints({2, 0})}}).shape), "[1,3,1,4]");
  EXPECT_EQ(kiln::shapeToString(run1({"Unsqueeze", 13, {iota<float>({3, 4}), ints({-1})}}).shape), "[3,4,1]");
  EXPECT_EQ(kiln::shapeToString(run1({"Unsqueeze", 11, {iota<float>({3})}, {{"axes", attrInts({0, 2})}}}).shape), "[1,3,1]");
  EXPECT_THROWS_WITH(run1({"Unsqueeze", 13, {iota<float>({3}), ints({0, 0})}}), "twice");
  EXPECT_THROWS_WITH(run1({"Unsqueeze", 13, {iota<float>({3}), ints({5})}}), "out of range");
}

KILN_TEST(tensor_shape, shape_with_start_end) {
  Tensor x = iota<float>({2, 3, 4, 5});
  expectValues<int64_t>(run1({"Shape", 13, {x}}), {4}, {2, 3, 4, 5});
  expectValues<int64_t>(run1({"Shape", 15, {x}, {{"start", attrInt(1)}, {"end", attrInt(-1)}}}), {2}, {3, 4});
  expectValues<int64_t>(run1({"Shape", 15, {x}, {{"start", attrInt(-10)}}}), {4}, {2, 3, 4, 5});
  expectValues<int64_t>(run1({"Shape", 15, {x}, {{"start", attrInt(3)}, {"end", attrInt(1)}}}), {0}, {});
  // Before opset 15 the attributes do not exist and are ignored.
  expectValues<int64_t>(run1({"Shape", 13, {x}, {{"start", attrInt(1)}}}), {4}, {2, 3, 4, 5});
  auto r = inferOp("Shape", 15, {symShape({"batch", "3"})}, {DType::Float32}, {}, {{"start", attrInt(1)}});
  EXPECT_TRUE(r.values[0] != nullptr);
  EXPECT_EQ(r.values[0]->ptr<int64_t>()[0], 3);
}

KILN_TEST(tensor_shape, size_and_identity) {
  Tensor s = run1({"Size", 13, {iota<float>({2, 0, 4})}});
  expectValues<int64_t>(s, {}, {0});
  expectValues<int64_t>(run1({"Identity", 16, {iota<int64_t>({3})}}), {3}, {0, 1, 2});
}

KILN_TEST(tensor_shape, expand_bidirectional) {
  Tensor out = run1({"Expand", 13, {make<float>({3, 1}, {1, 2, 3}), ints({2, 1, 4})}});
  expectValues<float>(out, {2, 3, 4}, {1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3});
  // A 1 in the shape keeps the input's dim (bidirectional broadcast).
  out = run1({"Expand", 13, {make<float>({1, 2}, {5, 6}), ints({3, 1})}});
  expectValues<float>(out, {3, 2}, {5, 6, 5, 6, 5, 6});
  EXPECT_THROWS_WITH(run1({"Expand", 13, {iota<float>({3}), ints({4})}}), "broadcast");
  EXPECT_THROWS_WITH(run1({"Expand", 13, {iota<float>({3}), ints({-3})}}), "negative");
}
