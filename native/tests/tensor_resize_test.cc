// Tests of Resize and Upsample: every coordinate mode family, nearest modes, linear, cubic,
// antialias, tf_crop_and_resize with extrapolation, axes and aspect-ratio policies.
#include "tensor_test_harness.h"

using namespace kiln_test;

namespace {
Tensor floats(const std::vector<float>& v) { return make<float>({(int64_t)v.size()}, v); }
const std::optional<Tensor> kNone = std::nullopt;
}  // namespace

KILN_TEST(tensor_resize, nearest_upsample_half_pixel) {
  Tensor x = make<float>({1, 1, 2, 2}, {1, 2, 3, 4});
  Tensor out = run1({"Resize", 13, {x, kNone, floats({1, 1, 2, 3})}, {{"mode", attrString("nearest")}}});
  expectValues<float>(out, {1, 1, 4, 6}, {1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4});
  // Upsample-9 (asymmetric, floor) gives the same repeat pattern for integer scales.
  Tensor up = run1({"Upsample", 9, {x, floats({1, 1, 2, 3})}, {{"mode", attrString("nearest")}}});
  EXPECT_TRUE(values<float>(up) == values<float>(out));
  Tensor up7 = run1({"Upsample", 7, {x}, {{"scales", attrFloats({1, 1, 2, 3})}}});
  EXPECT_TRUE(values<float>(up7) == values<float>(out));
}

KILN_TEST(tensor_resize, nearest_modes_and_policy) {
  Tensor x = make<float>({1, 1, 2, 2}, {1, 2, 3, 4});
  // not_larger: scale min(7/2, 8/2) = 3.5 on both axes -> 7x7.
  Tensor out = run1({"Resize", 18, {x, kNone, kNone, ints({7, 8})},
                     {{"axes", attrInts({2, 3})}, {"keep_aspect_ratio_policy", attrString("not_larger")}}});
  EXPECT_EQ(kiln::shapeToString(out.shape), "[1,1,7,7]");
  std::vector<float> row0 = {1, 1, 1, 1, 2, 2, 2};
  EXPECT_TRUE(std::vector<float>(out.ptr<float>(), out.ptr<float>() + 7) == row0);
  Tensor big = run1({"Resize", 18, {x, kNone, kNone, ints({7, 8})},
                     {{"axes", attrInts({2, 3})}, {"keep_aspect_ratio_policy", attrString("not_smaller")}}});
  EXPECT_EQ(kiln::shapeToString(big.shape), "[1,1,8,8]");
  // round_prefer_ceil with asymmetric coordinates: x/2 for 1-D [0, 1, 2] -> 6 outputs.
  Tensor v = floats({10, 20, 30});
  expectValues<float>(run1({"Resize", 13, {v, kNone, floats({2})},
                            {{"coordinate_transformation_mode", attrString("asymmetric")}, {"nearest_mode", attrString("round_prefer_ceil")}}}),
                      {6}, {10, 20, 20, 30, 30, 30});
  expectValues<float>(run1({"Resize", 13, {v, kNone, floats({2})},
                            {{"coordinate_transformation_mode", attrString("asymmetric")}, {"nearest_mode", attrString("floor")}}}),
                      {6}, {10, 10, 20, 20, 30, 30});
  // Nearest moves any element type, strings included.
  Tensor s = make<std::string>({2}, {"a", "b"});
  expectValues<std::string>(run1({"Resize", 13, {s, kNone, floats({2})}}), {4}, {"a", "a", "b", "b"});
}

KILN_TEST(tensor_resize, linear_downsample_and_align_corners) {
  Tensor x = make<float>({1, 1, 2, 4}, {1, 2, 3, 4, 5, 6, 7, 8});
  expectValues<float>(run1({"Resize", 13, {x, kNone, floats({1, 1, 0.6f, 0.6f})}, {{"mode", attrString("linear")}}}), {1, 1, 1, 2},
                      {2.6666665f, 4.3333333f}, 1e-5);
  expectValues<float>(run1({"Resize", 13, {x, kNone, floats({1, 1, 0.6f, 0.6f})},
                            {{"mode", attrString("linear")}, {"coordinate_transformation_mode", attrString("align_corners")}}}),
                      {1, 1, 1, 2}, {1.0f, 3.142857f}, 1e-5);
}

KILN_TEST(tensor_resize, cubic_reproduces_linear_functions) {
  // Keys' cubic convolution with a = -0.5 is exact on linear data away from the borders.
  Tensor ramp = iota<float>({10});
  Tensor out = run1({"Resize", 13, {ramp, kNone, floats({2})}, {{"mode", attrString("cubic")}, {"cubic_coeff_a", attrFloat(-0.5f)}}});
  EXPECT_EQ(out.numel(), 20);
  for (int x = 4; x < 16; x++) EXPECT_NEAR(out.ptr<float>()[x], (x + 0.5) / 2 - 0.5, 1e-5);
  // The default a = -0.75 is not: at x = 4 (coordinate 1.75, taps 0..3 weighted w(1.75), w(0.75),
  // w(0.25), w(1.25)) the value is 1.703125 by hand.
  out = run1({"Resize", 13, {ramp, kNone, floats({2})}, {{"mode", attrString("cubic")}}});
  EXPECT_NEAR(out.ptr<float>()[4], 1.703125, 1e-5);
  // Antialiased downsampling (a wider, normalised filter) also keeps ramps in the interior and
  // constants everywhere.
  Tensor down = run1({"Resize", 18, {iota<float>({40}), kNone, floats({0.25f})}, {{"mode", attrString("linear")}, {"antialias", attrInt(1)}}});
  for (int x = 2; x < 8; x++) EXPECT_NEAR(down.ptr<float>()[x], (x + 0.5) / 0.25 - 0.5, 1e-4);
  Tensor flat = run1({"Resize", 18, {make<float>({8}, std::vector<float>(8, 3)), kNone, floats({0.5f})},
                      {{"mode", attrString("cubic")}, {"antialias", attrInt(1)}, {"exclude_outside", attrInt(1)}}});
  expectValues<float>(flat, {4}, {3, 3, 3, 3}, 1e-5);
}

KILN_TEST(tensor_resize, tf_crop_and_resize) {
  Tensor x = iota<float>({1, 1, 4, 4});
  for (int64_t i = 0; i < 16; i++) x.ptr<float>()[i] += 1;
  Tensor roi = floats({0, 0, 0.4f, 0.6f, 1, 1, 0.6f, 0.8f});
  Tensor out = run1({"Resize", 13, {x, roi, kNone, ints({1, 1, 3, 3})},
                     {{"mode", attrString("linear")}, {"coordinate_transformation_mode", attrString("tf_crop_and_resize")}}});
  expectValues<float>(out, {1, 1, 3, 3}, {7.6f, 7.9f, 8.2f, 8.8f, 9.1f, 9.4f, 10.0f, 10.3f, 10.6f}, 1e-4);
  Tensor roi2 = floats({0, 0, 0.4f, 0.6f, 1, 1, 1.2f, 1.7f});
  out = run1({"Resize", 13, {x, roi2, kNone, ints({1, 1, 3, 3})},
              {{"mode", attrString("linear")}, {"coordinate_transformation_mode", attrString("tf_crop_and_resize")},
               {"extrapolation_value", attrFloat(10)}}});
  expectValues<float>(out, {1, 1, 3, 3}, {7.6f, 10, 10, 12.4f, 10, 10, 10, 10, 10}, 1e-4);
}

KILN_TEST(tensor_resize, integer_and_half_types) {
  Tensor x = make<uint8_t>({2}, {0, 255});
  expectValues<uint8_t>(run1({"Resize", 13, {x, kNone, floats({2})}, {{"mode", attrString("linear")}}}), {4}, {0, 64, 191, 255});
}

KILN_TEST(tensor_resize, errors) {
  Tensor x = iota<float>({1, 1, 2, 2});
  EXPECT_THROWS_WITH(run1({"Resize", 13, {x, kNone, floats({1, 1, 2})}}), "scales has 3 entries");
  EXPECT_THROWS_WITH(run1({"Resize", 13, {x, kNone, floats({1, 1, 0, 2})}}), "must be positive");
  EXPECT_THROWS_WITH(run1({"Resize", 13, {x, kNone, floats({1, 1, 2, 2}), ints({1, 1, 4, 4})}}), "only one");
  EXPECT_THROWS_WITH(run1({"Resize", 13, {x}}), "one of scales and sizes");
  EXPECT_THROWS_WITH(run1({"Resize", 13, {x, kNone, floats({1, 1, 2, 2})}, {{"mode", attrString("area")}}}), "unsupported mode");
  EXPECT_THROWS_WITH(run1({"Resize", 18, {x, kNone, floats({1, 1, 2, 2})}, {{"antialias", attrInt(1)}}}), "antialias");
}
