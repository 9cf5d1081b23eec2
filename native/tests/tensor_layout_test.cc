// Tests of the layout and join ops: Transpose, Concat, Split, Slice, Pad, CenterCropPad, Tile,
// DepthToSpace, SpaceToDepth, Trilu, ReverseSequence.
#include "tensor_test_harness.h"

using namespace kiln_test;

namespace {
// Reference transpose by index arithmetic.
std::vector<float> naiveTranspose(const Tensor& x, const std::vector<int64_t>& perm) {
  const size_t rank = x.shape.size();
  Shape outShape(rank);
  for (size_t i = 0; i < rank; i++) outShape[i] = x.shape[(size_t)perm[i]];
  auto inStrides = kiln::shapeStrides(x.shape);
  std::vector<float> out((size_t)x.numel());
  std::vector<int64_t> idx(rank, 0);
  for (size_t o = 0; o < out.size(); o++) {
    int64_t rest = (int64_t)o, src = 0;
    for (size_t i = rank; i-- > 0;) {
      int64_t v = rest % outShape[i];
      rest /= outShape[i];
      src += v * inStrides[(size_t)perm[i]];
    }
    out[o] = x.ptr<float>()[src];
  }
  return out;
}
}  // namespace

KILN_TEST(tensor_layout, transpose_all_perms_rank3) {
  Tensor x = iota<float>({2, 3, 4});
  std::vector<std::vector<int64_t>> perms = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
  for (auto& perm : perms) {
    Tensor out = run1({"Transpose", 13, {x}, {{"perm", attrInts(perm)}}});
    expectValues<float>(out, {x.shape[(size_t)perm[0]], x.shape[(size_t)perm[1]], x.shape[(size_t)perm[2]]},
                        naiveTranspose(x, perm));
  }
  // Default: reversed dims.
  expectValues<float>(run1({"Transpose", 13, {x}}), {4, 3, 2}, naiveTranspose(x, {2, 1, 0}));
}

KILN_TEST(tensor_layout, transpose_large_tiled_and_threaded) {
  // Large enough for the tiled path and several threads; odd sizes exercise partial tiles.
  Tensor x = iota<float>({3, 67, 131, 5});
  for (auto perm : std::vector<std::vector<int64_t>>{{0, 2, 1, 3}, {0, 3, 1, 2}, {3, 2, 1, 0}, {0, 1, 3, 2}}) {
    Tensor out = run1({"Transpose", 13, {x}, {{"perm", attrInts(perm)}}});
    EXPECT_TRUE(values<float>(out) == naiveTranspose(x, perm));
  }
}

KILN_TEST(tensor_layout, transpose_errors_and_strings) {
  EXPECT_THROWS_WITH(run1({"Transpose", 13, {iota<float>({2, 3})}, {{"perm", attrInts({0, 0})}}}), "not a permutation");
  EXPECT_THROWS_WITH(run1({"Transpose", 13, {iota<float>({2, 3})}, {{"perm", attrInts({0})}}}), "rank 2");
  Tensor s = make<std::string>({2, 2}, {"a", "b", "c", "d"});
  expectValues<std::string>(run1({"Transpose", 13, {s}}), {2, 2}, {"a", "c", "b", "d"});
}

KILN_TEST(tensor_layout, concat_axes_and_empty) {
  Tensor a = make<float>({2, 2}, {1, 2, 3, 4}), b = make<float>({2, 1}, {5, 6});
  expectValues<float>(run1({"Concat", 13, {a, b}, {{"axis", attrInt(-1)}}}), {2, 3}, {1, 2, 5, 3, 4, 6});
  expectValues<float>(run1({"Concat", 13, {a, a}, {{"axis", attrInt(0)}}}), {4, 2}, {1, 2, 3, 4, 1, 2, 3, 4});
  Tensor empty = iota<float>({2, 0});
  expectValues<float>(run1({"Concat", 13, {empty, b, empty}, {{"axis", attrInt(1)}}}), {2, 1}, {5, 6});
  EXPECT_THROWS_WITH(run1({"Concat", 13, {a, b}, {{"axis", attrInt(0)}}}), "incompatible");
  EXPECT_THROWS_WITH(run1({"Concat", 13, {a, b}}), "axis is required");
  EXPECT_THROWS_WITH(run1({"Concat", 13, {a, b}, {{"axis", attrInt(2)}}}), "out of range");
}

KILN_TEST(tensor_layout, concat_symbolic_sum) {
  auto r = inferOp("Concat", 13, {symShape({"b", "3"}), symShape({"b", "4"})}, {DType::Float32, DType::Float32}, {},
                   {{"axis", attrInt(1)}});
  EXPECT_EQ(r.shapes[0].toString(), "[b,7]");
}

KILN_TEST(tensor_layout, split_opsets) {
  Tensor x = iota<float>({2, 6});
  // Equal parts, no split given.
  auto outs = runOp({"Split", 13, {x}, {{"axis", attrInt(1)}}, 3});
  expectValues<float>(outs[1], {2, 2}, {2, 3, 8, 9});
  // Split-11: attribute; Split-13: input.
  outs = runOp({"Split", 11, {x}, {{"axis", attrInt(-1)}, {"split", attrInts({1, 5})}}, 2});
  expectValues<float>(outs[0], {2, 1}, {0, 6});
  outs = runOp({"Split", 13, {x, ints({4, 2})}, {{"axis", attrInt(1)}}, 2});
  expectValues<float>(outs[1], {2, 2}, {4, 5, 10, 11});
  // Split-18 num_outputs with an uneven last chunk: 7 -> 3, 3, 1.
  outs = runOp({"Split", 18, {iota<float>({7})}, {{"num_outputs", attrInt(3)}}, 3});
  expectValues<float>(outs[2], {1}, {6});
  expectValues<float>(outs[1], {3}, {3, 4, 5});
  // Zero-size parts.
  outs = runOp({"Split", 13, {iota<float>({0, 2}), ints({0, 0})}, {}, 2});
  EXPECT_EQ(kiln::shapeToString(outs[1].shape), "[0,2]");
  EXPECT_THROWS_WITH(runOp({"Split", 13, {x, ints({4, 3})}, {{"axis", attrInt(1)}}, 2}), "sums to 7");
  EXPECT_THROWS_WITH(runOp({"Split", 13, {x}, {{"axis", attrInt(1)}}, 4}), "evenly");
  EXPECT_THROWS_WITH(runOp({"Split", 18, {x}, {{"axis", attrInt(1)}}, 2}), "num_outputs");
}

KILN_TEST(tensor_layout, slice_steps_and_clamping) {
  Tensor x = iota<float>({3, 4});
  expectValues<float>(run1({"Slice", 13, {x, ints({0, 1}), ints({2, 3})}}), {2, 2}, {1, 2, 5, 6});
  // Negative step walks backwards; INT64_MAX-style ends clamp.
  expectValues<float>(run1({"Slice", 13, {x, ints({-1}), ints({INT64_MIN}), ints({1}), ints({-1})}}), {3, 4},
                      {3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8});
  expectValues<float>(run1({"Slice", 13, {x, ints({20, 0}), ints({INT64_MIN, INT64_MAX}), ints({0, 1}), ints({-2, 3})}}), {2, 2},
                      {8, 11, 0, 3});
  // Out-of-bounds start gives an empty axis.
  EXPECT_EQ(kiln::shapeToString(run1({"Slice", 13, {x, ints({10}), ints({20}), ints({1})}}).shape), "[3,0]");
  // Slice-1 attributes.
  expectValues<float>(run1({"Slice", 9, {x}, {{"starts", attrInts({1})}, {"ends", attrInts({2})}, {"axes", attrInts({0})}}}),
                      {1, 4}, {4, 5, 6, 7});
  EXPECT_THROWS_WITH(run1({"Slice", 13, {x, ints({0}), ints({1}), ints({0}), ints({0})}}), "contain 0");
  EXPECT_THROWS_WITH(run1({"Slice", 13, {x, ints({0, 0}), ints({1, 1}), ints({1, -1})}}), "twice");
  EXPECT_THROWS_WITH(run1({"Slice", 13, {x, ints({0}), ints({1}), ints({2})}}), "out of range");
}

KILN_TEST(tensor_layout, slice_symbolic_full_range) {
  Tensor starts = ints({0, 1}), ends = ints({INT64_MAX, 3}), axes = ints({0, 1});
  auto r = inferOp("Slice", 13, {symShape({"batch", "8"}), kiln::SymShape::of({2}), kiln::SymShape::of({2}), kiln::SymShape::of({2})},
                   {DType::Float32, DType::Int64, DType::Int64, DType::Int64}, {nullptr, &starts, &ends, &axes}, {});
  EXPECT_EQ(r.shapes[0].toString(), "[batch,2]");
}

KILN_TEST(tensor_layout, pad_modes) {
  Tensor x = make<float>({3, 2}, {1.0f, 1.2f, 2.3f, 3.4f, 4.5f, 5.7f});
  expectValues<float>(run1({"Pad", 13, {x, ints({0, 2, 0, 0}), make<float>({}, {9})}}), {3, 4},
                      {9, 9, 1.0f, 1.2f, 9, 9, 2.3f, 3.4f, 9, 9, 4.5f, 5.7f});
  expectValues<float>(run1({"Pad", 13, {x, ints({0, 2, 0, 0})}, {{"mode", attrString("reflect")}}}), {3, 4},
                      {1.0f, 1.2f, 1.0f, 1.2f, 2.3f, 3.4f, 2.3f, 3.4f, 4.5f, 5.7f, 4.5f, 5.7f});
  expectValues<float>(run1({"Pad", 13, {x, ints({0, 2, 0, 0})}, {{"mode", attrString("edge")}}}), {3, 4},
                      {1.0f, 1.0f, 1.0f, 1.2f, 2.3f, 2.3f, 2.3f, 3.4f, 4.5f, 4.5f, 4.5f, 5.7f});
  expectValues<float>(run1({"Pad", 19, {x, ints({2, 1, 1, 1})}, {{"mode", attrString("wrap")}}}), {6, 4},
                      {3.4f, 2.3f, 3.4f, 2.3f, 5.7f, 4.5f, 5.7f, 4.5f, 1.2f, 1.0f, 1.2f, 1.0f,
                       3.4f, 2.3f, 3.4f, 2.3f, 5.7f, 4.5f, 5.7f, 4.5f, 1.2f, 1.0f, 1.2f, 1.0f});
  EXPECT_THROWS_WITH(run1({"Pad", 18, {x, ints({0, 1, 0, 1})}, {{"mode", attrString("wrap")}}}), "wrap");
}

KILN_TEST(tensor_layout, pad_axes_negative_and_legacy) {
  Tensor x = iota<float>({2, 3});
  // Pad-18 axes: only axis -1, one before and one after.
  expectValues<float>(run1({"Pad", 18, {x, ints({1, 1}), std::nullopt, ints({-1})}}), {2, 5},
                      {0, 0, 1, 2, 0, 0, 3, 4, 5, 0});
  // Negative pads crop.
  expectValues<float>(run1({"Pad", 13, {x, ints({0, -1, 0, 0})}}), {2, 2}, {1, 2, 4, 5});
  // Pad-2 attributes.
  expectValues<float>(run1({"Pad", 2, {x}, {{"pads", attrInts({1, 0, 0, 0})}, {"value", attrFloat(-1)}}}), {3, 3},
                      {-1, -1, -1, 0, 1, 2, 3, 4, 5});
  EXPECT_THROWS_WITH(run1({"Pad", 13, {x, ints({0, -4, 0, 0})}}), "below zero");
  EXPECT_THROWS_WITH(run1({"Pad", 13, {x, ints({0, 1})}}), "2 * 2");
  // Reflect wider than the data reflects repeatedly: [0 1 2] padded by 4 on the left.
  expectValues<float>(run1({"Pad", 13, {iota<float>({3}), ints({4, 0})}, {{"mode", attrString("reflect")}}}), {7},
                      {0, 1, 2, 1, 0, 1, 2});
}

KILN_TEST(tensor_layout, center_crop_pad) {
  Tensor x = iota<float>({3, 4});
  // Crop rows 3 -> 1 (keep row 1), pad cols 4 -> 7 (1 before, 2 after).
  expectValues<float>(run1({"CenterCropPad", 18, {x, ints({1, 7})}}), {1, 7}, {0, 4, 5, 6, 7, 0, 0});
  expectValues<float>(run1({"CenterCropPad", 18, {x, ints({2})}, {{"axes", attrInts({-1})}}}), {3, 2},
                      {1, 2, 5, 6, 9, 10});
}

KILN_TEST(tensor_layout, tile) {
  Tensor x = make<int32_t>({2, 2}, {1, 2, 3, 4});
  expectValues<int32_t>(run1({"Tile", 13, {x, ints({1, 2})}}), {2, 4}, {1, 2, 1, 2, 3, 4, 3, 4});
  expectValues<int32_t>(run1({"Tile", 13, {x, ints({2, 1})}}), {4, 2}, {1, 2, 3, 4, 1, 2, 3, 4});
  EXPECT_EQ(kiln::shapeToString(run1({"Tile", 13, {x, ints({0, 3})}}).shape), "[0,6]");
  EXPECT_THROWS_WITH(run1({"Tile", 13, {x, ints({2})}}), "one entry per dim");
}

KILN_TEST(tensor_layout, depth_space_round_trip) {
  // Example from the ONNX spec: [1, 8, 2, 3], blocksize 2.
  Tensor x = iota<float>({1, 8, 2, 3});
  Tensor dcr = run1({"DepthToSpace", 13, {x}, {{"blocksize", attrInt(2)}, {"mode", attrString("DCR")}}});
  EXPECT_EQ(kiln::shapeToString(dcr.shape), "[1,2,4,6]");
  std::vector<float> first = {0, 12, 1, 13, 2, 14, 24, 36, 25, 37, 26, 38};
  EXPECT_TRUE(std::vector<float>(dcr.ptr<float>(), dcr.ptr<float>() + 12) == first);
  Tensor crd = run1({"DepthToSpace", 13, {x}, {{"blocksize", attrInt(2)}, {"mode", attrString("CRD")}}});
  std::vector<float> firstCrd = {0, 6, 1, 7, 2, 8, 12, 18, 13, 19, 14, 20};
  EXPECT_TRUE(std::vector<float>(crd.ptr<float>(), crd.ptr<float>() + 12) == firstCrd);
  // SpaceToDepth inverts DCR DepthToSpace.
  Tensor back = run1({"SpaceToDepth", 13, {dcr}, {{"blocksize", attrInt(2)}}});
  EXPECT_TRUE(values<float>(back) == values<float>(x));
  EXPECT_THROWS_WITH(run1({"DepthToSpace", 13, {iota<float>({1, 6, 2, 2})}, {{"blocksize", attrInt(2)}}}), "divisible");
  EXPECT_THROWS_WITH(run1({"SpaceToDepth", 13, {iota<float>({1, 1, 3, 2})}, {{"blocksize", attrInt(2)}}}), "divisible");
}

KILN_TEST(tensor_layout, trilu) {
  Tensor x = iota<int64_t>({3, 4});
  expectValues<int64_t>(run1({"Trilu", 14, {x}}), {3, 4}, {0, 1, 2, 3, 0, 5, 6, 7, 0, 0, 10, 11});
  expectValues<int64_t>(run1({"Trilu", 14, {x, scalarInt(-1)}, {{"upper", attrInt(0)}}}), {3, 4},
                        {0, 0, 0, 0, 4, 0, 0, 0, 8, 9, 0, 0});
  expectValues<int64_t>(run1({"Trilu", 14, {x, scalarInt(10)}}), {3, 4}, std::vector<int64_t>(12, 0));
  expectValues<int64_t>(run1({"Trilu", 14, {x, scalarInt(-10)}, {{"upper", attrInt(0)}}}), {3, 4}, std::vector<int64_t>(12, 0));
  EXPECT_THROWS_WITH(run1({"Trilu", 14, {iota<int64_t>({3})}}), "rank >= 2");
}

KILN_TEST(tensor_layout, reverse_sequence) {
  Tensor x = iota<float>({4, 2});  // [time, batch]
  expectValues<float>(run1({"ReverseSequence", 10, {x, ints({4, 2})}}), {4, 2}, {6, 3, 4, 1, 2, 5, 0, 7});
  Tensor y = iota<float>({2, 3});  // [batch, time]
  expectValues<float>(run1({"ReverseSequence", 10, {y, ints({3, 0})}, {{"batch_axis", attrInt(0)}, {"time_axis", attrInt(1)}}}),
                      {2, 3}, {2, 1, 0, 3, 4, 5});
  EXPECT_THROWS_WITH(run1({"ReverseSequence", 10, {x, ints({5, 1})}}), "sequence_lens[0]");
}
