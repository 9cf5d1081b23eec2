// Hostile parameters for the data-movement ops: extreme integers, NaNs, absurd sizes. Each must end
// in a KilnError naming the node (or a correct result), never a crash, overflow or huge allocation.
#include <cmath>

#include "tensor_test_harness.h"

using namespace kiln_test;

namespace {
const std::optional<Tensor> kNone = std::nullopt;
// Runs the call and requires either success or a KilnError (anything else fails the test).
void survives(const OpCall& call) {
  try {
    runOp(call);
  } catch (const kiln::KilnError&) {
  }
}
}  // namespace

KILN_TEST(tensor_hostile, extreme_integers) {
  Tensor x = iota<float>({2, 3});
  EXPECT_THROWS_WITH(run1({"Reshape", 14, {x, ints({INT64_MAX, 2})}}), "n0");
  EXPECT_THROWS_WITH(run1({"Tile", 13, {x, ints({INT64_MAX, 2})}}), "n0");
  EXPECT_THROWS_WITH(run1({"Pad", 13, {x, ints({INT64_MAX, 0, INT64_MAX, 0})}}), "overflow");
  EXPECT_THROWS_WITH(run1({"Pad", 13, {x, ints({INT64_MIN, 0, 0, 0})}}), "n0");
  EXPECT_THROWS_WITH(run1({"DepthToSpace", 13, {iota<float>({1, 4, 1, 1})}, {{"blocksize", attrInt(int64_t(1) << 33)}}}), "blocksize");
  EXPECT_THROWS_WITH(runOp({"Split", 13, {iota<float>({4}), ints({INT64_MAX, INT64_MAX})}, {}, 2}), "split");
  EXPECT_THROWS_WITH(run1({"Range", 11, {scalarInt(INT64_MIN), scalarInt(INT64_MAX), scalarInt(1)}}), "too large");
  EXPECT_THROWS_WITH(run1({"Gather", 13, {x, make<int32_t>({1}, {INT32_MIN})}}), "out of range");
  EXPECT_THROWS_WITH(run1({"OneHot", 11, {ints({0}), make<float>({}, {NAN}), make<float>({2}, {0, 1})}}), "depth");
  EXPECT_THROWS_WITH(run1({"Unsqueeze", 13, {x, ints({INT64_MIN})}}), "out of range");
  expectValues<int64_t>(run1({"Shape", 15, {x}, {{"start", attrInt(INT64_MIN)}, {"end", attrInt(INT64_MAX)}}}), {2}, {2, 3});
  // Extreme slice steps are exact, not overflowing.
  expectValues<float>(run1({"Slice", 13, {iota<float>({5}), ints({INT64_MAX}), ints({INT64_MIN}), ints({0}), ints({INT64_MIN})}}), {1}, {4});
  expectValues<float>(run1({"Slice", 13, {iota<float>({5}), ints({INT64_MIN}), ints({INT64_MAX}), ints({0}), ints({INT64_MAX})}}), {1}, {0});
  // Range over a full int8 span: indices beyond int8 must not wrap the values.
  Tensor r = run1({"Range", 11, {make<int8_t>({}, {-128}), make<int8_t>({}, {127}), make<int8_t>({}, {1})}});
  EXPECT_EQ(r.numel(), 255);
  EXPECT_EQ((int)r.ptr<int8_t>()[254], 126);
  Tensor big = run1({"Trilu", 14, {iota<float>({2, 2}), scalarInt(INT64_MIN)}});
  expectValues<float>(big, {2, 2}, {0, 1, 2, 3});
}

KILN_TEST(tensor_hostile, nan_and_absurd_floats) {
  Tensor x = iota<float>({1, 1, 2, 2});
  EXPECT_THROWS_WITH(run1({"Resize", 13, {x, kNone, make<float>({4}, {1, 1, NAN, 2})}}), "positive");
  EXPECT_THROWS_WITH(run1({"Resize", 13, {x, kNone, make<float>({4}, {1, 1, 1e30f, 2})}}), "too large");
  // NaN / huge ROIs extrapolate instead of converting garbage to indices.
  Tensor out = run1({"Resize", 13, {x, make<float>({8}, {0, 0, NAN, -1e30f, 1, 1, NAN, 1e30f}), kNone, ints({1, 1, 2, 2})},
                     {{"mode", attrString("linear")}, {"coordinate_transformation_mode", attrString("tf_crop_and_resize")},
                      {"extrapolation_value", attrFloat(-1)}}});
  EXPECT_EQ(out.numel(), 4);
  Tensor grid = make<float>({1, 1, 2, 2}, {NAN, INFINITY, -INFINITY, 1e30f});
  for (const char* pad : {"zeros", "border", "reflection"}) {
    for (const char* mode : {"linear", "nearest", "cubic"}) {
      Tensor g = run1({"GridSample", 20, {x, grid}, {{"mode", attrString(mode)}, {"padding_mode", attrString(pad)}}});
      EXPECT_EQ(g.numel(), 2);
    }
  }
  Tensor rois = make<float>({2, 4}, {NAN, 0, 1, 1, 0, 0, 1e30f, 1e30f});
  survives({"RoiAlign", 16, {x, rois, ints({0, 0})}});
  survives({"RoiAlign", 16, {x, rois, ints({0, 0})}, {{"sampling_ratio", attrInt(2)}}});
  Tensor boxes = make<float>({1, 2, 4}, {NAN, 0, 1, 1, 0, 0, INFINITY, 1});
  survives({"NonMaxSuppression", 11, {boxes, make<float>({1, 1, 2}, {NAN, 1}), ints({5}), make<float>({1}, {0.5f})}});
  Tensor vals = run1({"TopK", 11, {make<float>({4}, {NAN, 1, NAN, -INFINITY}), ints({4})}});
  EXPECT_TRUE(std::isnan(vals.ptr<float>()[0]) && std::isnan(vals.ptr<float>()[1]));
}

KILN_TEST(tensor_hostile, malformed_attributes) {
  Tensor x = iota<float>({2, 3});
  EXPECT_THROWS_WITH(run1({"Einsum", 12, {x}, {{"equation", attrString("i.j->ij")}}}), "ellipsis");
  EXPECT_THROWS_WITH(run1({"Einsum", 12, {x}, {{"equation", attrString("ij->ii")}}}), "repeats");
  EXPECT_THROWS_WITH(run1({"Einsum", 12, {x}, {{"equation", attrString("i$->i")}}}), "invalid character");
  EXPECT_THROWS_WITH(run1({"Einsum", 12, {x, x}, {{"equation", attrString("ij->ij")}}}), "terms");
  EXPECT_THROWS_WITH(run1({"Transpose", 13, {x}, {{"perm", attrInts({5, 0})}}}), "permutation");
  EXPECT_THROWS_WITH(run1({"Col2Im", 18, {iota<float>({1, 1, 1}), ints({1}), ints({1})}, {{"strides", attrInts({0})}}}), "positive");
  EXPECT_THROWS_WITH(run1({"GatherND", 13, {x, make<int64_t>({1, 1}, {0})}, {{"batch_dims", attrInt(-1)}}}), "batch_dims");
  EXPECT_THROWS_WITH(run1({"ScatterND", 13, {x, make<int64_t>({1, 3}, {0, 0, 0}), make<float>({1}, {1})}}), "exceeds");
  EXPECT_THROWS_WITH(run1({"ConstantOfShape", 20, {ints({2})}, {{"value", attrTensor(make<float>({2}, {1, 2}))}}}), "one-element");
  EXPECT_THROWS_WITH(runOp({"Scan", 11, {x}, {{"num_scan_inputs", attrInt(5)}}, 1}), "graph attribute 'body'");
  EXPECT_THROWS_WITH(runOp({"If", 13, {makeBool({}, {1})}, {}, 1}), "then_branch");
}
