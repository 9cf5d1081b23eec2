// Tests of the generator ops (Constant, ConstantOfShape, Range, EyeLike), TopK and Unique.
#include "tensor_test_harness.h"

using namespace kiln_test;

KILN_TEST(tensor_generate, constant_attributes) {
  expectValues<int64_t>(run1({"Constant", 13, {}, {{"value_ints", attrInts({3, 4})}}}), {2}, {3, 4});
  expectValues<float>(run1({"Constant", 13, {}, {{"value_float", attrFloat(2.5f)}}}), {}, {2.5f});
  expectValues<std::string>(run1({"Constant", 13, {}, {{"value_strings", attrStrings({"a", "b"})}}}), {2}, {"a", "b"});
  expectValues<int32_t>(run1({"Constant", 13, {}, {{"value", attrTensor(make<int32_t>({2, 1}, {5, 6}))}}}), {2, 1}, {5, 6});
  EXPECT_THROWS_WITH(run1({"Constant", 13, {}, {{"value_int", attrInt(1)}, {"value_float", attrFloat(1)}}}), "has both");
  EXPECT_THROWS_WITH(run1({"Constant", 13, {}, {}}), "no value attribute");
  auto r = inferOp("Constant", 13, {}, {}, {}, {{"value_int", attrInt(7)}});
  EXPECT_TRUE(r.values[0] != nullptr && r.values[0]->ptr<int64_t>()[0] == 7);
}

KILN_TEST(tensor_generate, constant_of_shape_and_range) {
  expectValues<int32_t>(run1({"ConstantOfShape", 20, {ints({2, 3})}, {{"value", attrTensor(make<int32_t>({1}, {7}))}}}), {2, 3},
                        std::vector<int32_t>(6, 7));
  expectValues<float>(run1({"ConstantOfShape", 20, {ints({0})}}), {0}, {});
  expectValues<float>(run1({"ConstantOfShape", 20, {make<int64_t>({0}, {})}}), {}, {0});
  EXPECT_THROWS_WITH(run1({"ConstantOfShape", 20, {ints({2, -1})}}), "negative");
  expectValues<int64_t>(run1({"Range", 11, {scalarInt(1), scalarInt(5), scalarInt(2)}}), {2}, {1, 3});
  expectValues<int32_t>(run1({"Range", 11, {make<int32_t>({}, {10}), make<int32_t>({}, {6}), make<int32_t>({}, {-3})}}), {2}, {10, 7});
  expectValues<float>(run1({"Range", 11, {make<float>({}, {0}), make<float>({}, {1}), make<float>({}, {0.3f})}}), {4},
                      {0, 0.3f, 0.6f, 0.9f}, 1e-6);
  expectValues<int64_t>(run1({"Range", 11, {scalarInt(5), scalarInt(1), scalarInt(2)}}), {0}, {});
  EXPECT_THROWS_WITH(run1({"Range", 11, {scalarInt(1), scalarInt(5), scalarInt(0)}}), "delta");
}

KILN_TEST(tensor_generate, eye_like) {
  expectValues<float>(run1({"EyeLike", 9, {iota<float>({3, 4})}, {{"k", attrInt(1)}}}), {3, 4}, {0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1});
  expectValues<int32_t>(run1({"EyeLike", 9, {iota<float>({3, 2})}, {{"k", attrInt(-1)}, {"dtype", attrInt(6)}}}), {3, 2},
                        {0, 0, 1, 0, 0, 1});
  expectValues<float>(run1({"EyeLike", 9, {iota<float>({2, 2})}, {{"k", attrInt(INT64_MAX)}}}), {2, 2}, {0, 0, 0, 0});
  EXPECT_THROWS_WITH(run1({"EyeLike", 9, {iota<float>({2})}}), "2-D");
}

KILN_TEST(tensor_topk, largest_smallest_and_ties) {
  Tensor x = iota<float>({3, 4});
  auto outs = runOp({"TopK", 11, {x, ints({3})}, {}, 2});
  expectValues<float>(outs[0], {3, 3}, {3, 2, 1, 7, 6, 5, 11, 10, 9});
  expectValues<int64_t>(outs[1], {3, 3}, {3, 2, 1, 3, 2, 1, 3, 2, 1});
  outs = runOp({"TopK", 11, {x, ints({2})}, {{"largest", attrInt(0)}, {"axis", attrInt(0)}}, 2});
  expectValues<float>(outs[0], {2, 4}, {0, 1, 2, 3, 4, 5, 6, 7});
  outs = runOp({"TopK", 11, {make<float>({4}, {1, 1, 2, 2}), ints({3})}, {}, 2});
  expectValues<float>(outs[0], {3}, {2, 2, 1});
  expectValues<int64_t>(outs[1], {3}, {2, 3, 0});
  // TopK-1: k attribute. NaN ranks above every number.
  outs = runOp({"TopK", 1, {make<float>({3}, {1, NAN, 3})}, {{"k", attrInt(1)}}, 2});
  expectValues<int64_t>(outs[1], {1}, {1});
  outs = runOp({"TopK", 11, {make<uint64_t>({3}, {5, UINT64_MAX, 7}), ints({2})}, {}, 2});
  expectValues<uint64_t>(outs[0], {2}, {UINT64_MAX, 7});
  EXPECT_THROWS_WITH(runOp({"TopK", 11, {x, ints({5})}, {}, 2}), "k = 5");
}

KILN_TEST(tensor_unique, flat_and_axis) {
  Tensor x = make<float>({6}, {2, 1, 1, 3, 4, 3});
  auto outs = runOp({"Unique", 11, {x}, {{"sorted", attrInt(0)}}, 4});
  expectValues<float>(outs[0], {4}, {2, 1, 3, 4});
  expectValues<int64_t>(outs[1], {4}, {0, 1, 3, 4});
  expectValues<int64_t>(outs[2], {6}, {0, 1, 1, 2, 3, 2});
  expectValues<int64_t>(outs[3], {4}, {1, 2, 2, 1});
  outs = runOp({"Unique", 11, {x}, {}, 4});
  expectValues<float>(outs[0], {4}, {1, 2, 3, 4});
  expectValues<int64_t>(outs[1], {4}, {1, 0, 3, 4});
  expectValues<int64_t>(outs[2], {6}, {1, 0, 0, 2, 3, 2});
  expectValues<int64_t>(outs[3], {4}, {2, 1, 2, 1});
  Tensor m = make<int32_t>({3, 3}, {1, 0, 0, 1, 0, 0, 2, 3, 4});
  outs = runOp({"Unique", 11, {m}, {{"axis", attrInt(0)}}, 4});
  expectValues<int32_t>(outs[0], {2, 3}, {1, 0, 0, 2, 3, 4});
  expectValues<int64_t>(outs[2], {3}, {0, 0, 1});
  outs = runOp({"Unique", 11, {m}, {{"axis", attrInt(-1)}}, 4});
  // Columns [1,1,2], [0,0,3], [0,0,4] are distinct; sorted lexicographically.
  expectValues<int32_t>(outs[0], {3, 3}, {0, 0, 1, 0, 0, 1, 3, 4, 2});
  expectValues<int64_t>(outs[1], {3}, {1, 2, 0});
  Tensor dupCols = make<int32_t>({2, 3}, {1, 0, 1, 2, 5, 2});
  outs = runOp({"Unique", 11, {dupCols}, {{"axis", attrInt(-1)}}, 4});
  expectValues<int32_t>(outs[0], {2, 2}, {0, 1, 5, 2});
  expectValues<int64_t>(outs[3], {2}, {1, 2});
  outs = runOp({"Unique", 11, {make<std::string>({3}, {"b", "a", "b"})}, {}, 4});
  expectValues<std::string>(outs[0], {2}, {"a", "b"});
}

KILN_TEST(tensor_einsum, common_equations) {
  Tensor a = iota<float>({2, 3});
  expectValues<float>(run1({"Einsum", 12, {a}, {{"equation", attrString("ij->ji")}}}), {3, 2}, {0, 3, 1, 4, 2, 5});
  expectValues<float>(run1({"Einsum", 12, {a}, {{"equation", attrString("ij->i")}}}), {2}, {3, 12});
  expectValues<float>(run1({"Einsum", 12, {a}, {{"equation", attrString("ij->")}}}), {}, {15});
  Tensor v = make<float>({3}, {1, 2, 3});
  expectValues<float>(run1({"Einsum", 12, {v, v}, {{"equation", attrString("i,i")}}}), {}, {14});
  expectValues<float>(run1({"Einsum", 12, {v, v}, {{"equation", attrString("i,j->ij")}}}), {3, 3}, {1, 2, 3, 2, 4, 6, 3, 6, 9});
  // Implicit output: "ij,jk" means "ij,jk->ik".
  Tensor b = iota<float>({3, 2});
  expectValues<float>(run1({"Einsum", 12, {a, b}, {{"equation", attrString("ij,jk")}}}), {2, 2}, {10, 13, 28, 40});
  Tensor x = iota<float>({2, 2, 3}), y = iota<float>({2, 3, 2});
  Tensor bmm = run1({"Einsum", 12, {x, y}, {{"equation", attrString("bij, bjk -> bik")}}});
  expectValues<float>(bmm, {2, 2, 2}, {10, 13, 28, 40, 172, 193, 244, 274});
}

KILN_TEST(tensor_einsum, ellipsis_diagonal_and_errors) {
  Tensor m = iota<float>({2, 3, 3});
  expectValues<float>(run1({"Einsum", 12, {m}, {{"equation", attrString("...ii->...i")}}}), {2, 3}, {0, 4, 8, 9, 13, 17});
  expectValues<float>(run1({"Einsum", 12, {m}, {{"equation", attrString("bii->b")}}}), {2}, {12, 39});
  // Ellipsis dims broadcast: [2,2,3] x [3,4].
  Tensor x = iota<float>({2, 2, 3}), w = make<float>({3, 1}, {1, 1, 1});
  expectValues<float>(run1({"Einsum", 12, {x, w}, {{"equation", attrString("...ij,jk->...ik")}}}), {2, 2, 1}, {3, 12, 21, 30});
  Tensor xi = iota<int32_t>({2, 2});
  expectValues<int32_t>(run1({"Einsum", 12, {xi, xi}, {{"equation", attrString("ij,ij->ij")}}}), {2, 2}, {0, 1, 4, 9});
  EXPECT_THROWS_WITH(run1({"Einsum", 12, {x, w}, {{"equation", attrString("ij,jk->ik")}}}), "does not match input rank");
  EXPECT_THROWS_WITH(run1({"Einsum", 12, {w}, {{"equation", attrString("ij->iz")}}}), "does not appear");
  EXPECT_THROWS_WITH(run1({"Einsum", 12, {iota<float>({2, 3}), iota<float>({4, 2})}, {{"equation", attrString("ij,jk->ik")}}}), "disagree");
}

KILN_TEST(tensor_detection, non_max_suppression) {
  Tensor boxes = make<float>({1, 6, 4}, {0, 0, 1, 1, 0, 0.1f, 1, 1.1f, 0, -0.1f, 1, 0.9f, 0, 10, 1, 11, 0, 10.1f, 1, 11.1f, 0, 100, 1, 101});
  Tensor scores = make<float>({1, 1, 6}, {0.9f, 0.75f, 0.6f, 0.95f, 0.5f, 0.3f});
  Tensor out = run1({"NonMaxSuppression", 11, {boxes, scores, ints({3}), make<float>({1}, {0.5f}), make<float>({1}, {0})}});
  expectValues<int64_t>(out, {3, 3}, {0, 0, 3, 0, 0, 0, 0, 0, 5});
  // Score threshold drops candidates; no max_output_boxes_per_class means none.
  out = run1({"NonMaxSuppression", 11, {boxes, scores, ints({3}), make<float>({1}, {0.5f}), make<float>({1}, {0.92f})}});
  expectValues<int64_t>(out, {1, 3}, {0, 0, 3});
  out = run1({"NonMaxSuppression", 11, {boxes, scores}});
  EXPECT_EQ(kiln::shapeToString(out.shape), "[0,3]");
  // Center-point format: same boxes as centres.
  Tensor centers = make<float>({1, 2, 4}, {0.5f, 0.5f, 1, 1, 0.5f, 0.6f, 1, 1});
  out = run1({"NonMaxSuppression", 11, {centers, make<float>({1, 1, 2}, {0.9f, 0.8f}), ints({2}), make<float>({1}, {0.5f})},
              {{"center_point_box", attrInt(1)}}});
  expectValues<int64_t>(out, {1, 3}, {0, 0, 0});
  EXPECT_THROWS_WITH(run1({"NonMaxSuppression", 11, {boxes, make<float>({1, 1, 5}, {1, 1, 1, 1, 1})}}), "differ");
}

KILN_TEST(tensor_detection, roi_align) {
  Tensor x = iota<float>({1, 1, 4, 4});
  Tensor rois = make<float>({1, 4}, {0, 0, 3, 3});
  Tensor idx = ints({0});
  Attrs attrs = {{"sampling_ratio", attrInt(1)}};
  expectValues<float>(run1({"RoiAlign", 10, {x, rois, idx}, attrs}), {1, 1, 1, 1}, {7.5f});
  expectValues<float>(run1({"RoiAlign", 16, {x, rois, idx}, attrs}), {1, 1, 1, 1}, {5.0f});
  Attrs two = {{"sampling_ratio", attrInt(2)}, {"output_height", attrInt(2)}, {"output_width", attrInt(2)}, {"mode", attrString("max")}};
  EXPECT_EQ(kiln::shapeToString(run1({"RoiAlign", 16, {x, rois, idx}, two}).shape), "[1,1,2,2]");
  EXPECT_THROWS_WITH(run1({"RoiAlign", 16, {x, rois, ints({1})}, attrs}), "batch_indices[0] = 1");
}

KILN_TEST(tensor_image, grid_sample_identity_and_padding) {
  Tensor x = iota<float>({1, 1, 2, 3});
  // An identity grid with align_corners reproduces the input, in every mode.
  std::vector<float> g;
  for (int h = 0; h < 2; h++)
    for (int w = 0; w < 3; w++) g.insert(g.end(), {-1.0f + w, -1.0f + 2.0f * h});
  Tensor grid = make<float>({1, 2, 3, 2}, g);
  for (const char* mode : {"linear", "nearest", "cubic"}) {
    Tensor out = run1({"GridSample", 20, {x, grid}, {{"mode", attrString(mode)}, {"align_corners", attrInt(1)}}});
    expectValues<float>(out, {1, 1, 2, 3}, {0, 1, 2, 3, 4, 5}, 1e-5);
  }
  Tensor far = make<float>({1, 1, 1, 2}, {3.0f, 3.0f});
  expectValues<float>(run1({"GridSample", 16, {x, far}, {{"mode", attrString("bilinear")}}}), {1, 1, 1, 1}, {0});
  expectValues<float>(run1({"GridSample", 16, {x, far}, {{"padding_mode", attrString("border")}}}), {1, 1, 1, 1}, {5});
  // Midpoint between (0,0) and (0,1) with align_corners: 0.5.
  expectValues<float>(run1({"GridSample", 16, {x, make<float>({1, 1, 1, 2}, {-0.5f, -1.0f})}, {{"align_corners", attrInt(1)}}}),
                      {1, 1, 1, 1}, {0.5f});
  EXPECT_THROWS_WITH(run1({"GridSample", 16, {x, make<float>({1, 1, 1, 3}, {0, 0, 0})}}), "grid");
}

KILN_TEST(tensor_image, col2im_sums_overlaps) {
  Tensor cols = make<float>({1, 2, 4}, std::vector<float>(8, 1));
  expectValues<float>(run1({"Col2Im", 18, {cols, ints({2, 3}), ints({1, 2})}}), {1, 1, 2, 3}, {1, 2, 1, 1, 2, 1});
  EXPECT_THROWS_WITH(run1({"Col2Im", 18, {make<float>({1, 2, 5}, std::vector<float>(10, 1)), ints({2, 3}), ints({1, 2})}}),
                     "does not match");
}
