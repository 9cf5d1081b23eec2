// QuantizeLinear and DequantizeLinear on the CPU backend.
#include "elementwise_test_util.h"

using namespace kiln;
using namespace kiln_test;

KILN_TEST(elementwise_quantize, per_tensor_rounds_half_to_even_and_saturates) {
  Tensor x = f32({6}, {0, 1, 3, 5, 1000, -1000});
  Tensor y = run1({"QuantizeLinear", 13, {x, scalarF(2), make<uint8_t>({}, {128})}});
  // 1/2 = 0.5 -> 0, 3/2 = 1.5 -> 2, 5/2 = 2.5 -> 2.
  expectTensor(y, DType::UInt8, {6}, {128, 128, 130, 130, 255, 0});
  Tensor s = run1({"QuantizeLinear", 13, {x, scalarF(2), make<int8_t>({}, {-1})}});
  expectTensor(s, DType::Int8, {6}, {-1, -1, 1, 1, 127, -128});
  // No zero point: uint8 with zero point 0.
  expectTensor(run1({"QuantizeLinear", 13, {f32({2}, {-3, 3}), scalarF(1)}}), DType::UInt8, {2}, {0, 3});
  // output_dtype (opset 21) without a zero point.
  expectTensor(run1({"QuantizeLinear", 21, {f32({2}, {-3, 3}), scalarF(1)}, {{"output_dtype", attrInt(5)}}}), DType::Int16, {2},
               {-3, 3});
}

KILN_TEST(elementwise_quantize, per_axis_and_blocked) {
  Tensor x = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor y = run1({"QuantizeLinear", 13, {x, f32({3}, {1, 2, 4}), make<uint8_t>({3}, {0, 10, 20})}, {{"axis", attrInt(1)}}});
  expectTensor(y, DType::UInt8, {2, 3}, {1, 11, 21, 4, 12, 22});  // 6/4 = 1.5 -> 2
  Tensor d = run1({"DequantizeLinear", 13, {y, f32({3}, {1, 2, 4}), make<uint8_t>({3}, {0, 10, 20})}, {{"axis", attrInt(1)}}});
  expectTensor(d, DType::Float32, {2, 3}, {1, 2, 4, 4, 4, 8});
  // Blocked along axis 1 with block_size 2: scale [2, 2] (ceil(3 / 2) = 2 blocks per row).
  Tensor b = run1({"QuantizeLinear", 21, {x, f32({2, 2}, {1, 10, 2, 20}), make<int8_t>({2, 2}, {0, 0, 0, 0})},
                   {{"axis", attrInt(1)}, {"block_size", attrInt(2)}}});
  expectTensor(b, DType::Int8, {2, 3}, {1, 2, 0, 2, 2, 0});  // 3/10 -> 0, 6/20 -> 0
  EXPECT_THROWS_WITH(run1({"QuantizeLinear", 13, {x, f32({2}, {1, 2}), make<uint8_t>({2}, {0, 0})}, {{"axis", attrInt(1)}}}),
                     "per-axis scale must have shape [3]");
  EXPECT_THROWS_WITH(run1({"QuantizeLinear", 21, {x, f32({2, 3}, {1, 1, 1, 1, 1, 1})}, {{"axis", attrInt(1)}, {"block_size", attrInt(2)}}}),
                     "blocked scale must have shape [2,2]");
}

KILN_TEST(elementwise_quantize, dequantize_types) {
  expectTensor(run1({"DequantizeLinear", 13, {make<int8_t>({3}, {-128, 0, 127}), scalarF(0.5f), make<int8_t>({}, {-1})}}),
               DType::Float32, {3}, {-63.5, 0.5, 64});
  expectTensor(run1({"DequantizeLinear", 13, {i32({2}, {-1000, 1000}), scalarF(0.25f)}}), DType::Float32, {2}, {-250, 250});
  // From opset 19 the output takes the scale's type.
  expectTensor(run1({"DequantizeLinear", 19, {make<uint8_t>({2}, {0, 4}), half({}, {0.5f})}}), DType::Float16, {2}, {0, 2});
  EXPECT_THROWS_WITH(run1({"DequantizeLinear", 13, {make<uint8_t>({1}, {1}), scalarF(1), make<int8_t>({}, {0})}}), "x_zero_point");
  EXPECT_THROWS_WITH(run1({"DequantizeLinear", 13, {f32({1}, {1}), scalarF(1)}}), "dtype float32");
}
