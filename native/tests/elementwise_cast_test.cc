// Cast and CastLike on the CPU backend.
#include "elementwise_test_util.h"

using namespace kiln;
using namespace kiln_test;

namespace {
Tensor cast(const Tensor& x, DType to, int64_t opset = 21) {
  return unary("Cast", x, {{"to", attrInt(static_cast<int64_t>(to))}}, opset);
}
}  // namespace

KILN_TEST(elementwise_cast, numeric_conversions) {
  Tensor x = f32({6}, {1.9f, -1.9f, 300.0f, -300.0f, NAN, 0.0f});
  expectTensor(cast(x, DType::Int32), DType::Int32, {6}, {1, -1, 300, -300, 0, 0});
  // Out of range saturates, NaN becomes 0 (never undefined behaviour).
  expectTensor(cast(x, DType::Int8), DType::Int8, {6}, {1, -1, 127, -128, 0, 0});
  expectTensor(cast(x, DType::Bool), DType::Bool, {6}, {1, 1, 1, 1, 1, 0});
  expectTensor(cast(makeBool({2}, {1, 0}), DType::Float32), DType::Float32, {2}, {1, 0});
  // Integer to integer wraps like numpy's astype.
  expectTensor(cast(i32({3}, {256, 257, -1}), DType::UInt8), DType::UInt8, {3}, {0, 1, 255});
  expectTensor(cast(i64({1}, {INT64_MAX}), DType::Float64), DType::Float64, {1}, {9223372036854775807.0});
  expectTensor(cast(f32({2}, {1.0f, 65520.0f}), DType::Float16), DType::Float16, {2}, {1, kInf});
  expectTensor(cast(half({2}, {0.5f, -2.0f}), DType::Float32), DType::Float32, {2}, {0.5, -2});
  expectTensor(cast(f32({1}, {1.00390625f}), DType::BFloat16), DType::BFloat16, {1}, {1.0});  // ties to even
  expectTensor(cast(bf16({1}, {3.0f}), DType::Int64), DType::Int64, {1}, {3});
}

KILN_TEST(elementwise_cast, double_to_half_rounds_once) {
  // 1 + 2^-11 + 2^-40 is just above the midpoint between two halves: correct rounding goes up;
  // rounding to float first would land exactly on the midpoint and round to even (down).
  double d = 1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40);
  Tensor h = cast(f64({1}, {d}), DType::Float16);
  EXPECT_EQ(h.ptr<uint16_t>()[0], floatToHalf(1.0f + std::ldexp(1.0f, -10)));
}

KILN_TEST(elementwise_cast, strings) {
  Tensor s = make<std::string>({4}, {"1.5", "-inf", "NaN", "1e3"});
  expectTensor(cast(s, DType::Float32), DType::Float32, {4}, {1.5, -kInf, kNaN, 1000});
  expectTensor(cast(make<std::string>({2}, {"9007199254740993", "-7"}), DType::Int64), DType::Int64, {2},
               {9007199254740993.0, -7});
  EXPECT_EQ(cast(make<std::string>({1}, {"9007199254740993"}), DType::Int64).ptr<int64_t>()[0], 9007199254740993LL);
  Tensor back = cast(f32({3}, {0.5f, INFINITY, 3.0f}), DType::String);
  EXPECT_EQ(back.ptr<std::string>()[0], std::string("0.5"));
  EXPECT_EQ(back.ptr<std::string>()[1], std::string("INF"));
  EXPECT_EQ(back.ptr<std::string>()[2], std::string("3"));
  EXPECT_EQ(cast(i32({1}, {-42}), DType::String).ptr<std::string>()[0], std::string("-42"));
  EXPECT_THROWS_WITH(cast(make<std::string>({1}, {"abc"}), DType::Float32), "cannot convert string 'abc'");
}

KILN_TEST(elementwise_cast, castlike_and_versions) {
  expectTensor(binary("CastLike", f32({2}, {1.5f, 2.5f}), i64({0}, {}), {}, 15), DType::Int64, {2}, {1, 2});
  // Opset 1 names the target type as a string.
  expectTensor(unary("Cast", f32({1}, {2.0f}), {{"to", attrString("DOUBLE")}}, 1), DType::Float64, {1}, {2});
  // Float8 and friends have no storage in the engine: a clear UnsupportedOp, not a crash.
  EXPECT_THROWS_WITH(unary("Cast", f32({1}, {2.0f}), {{"to", attrInt(17)}}, 19), "target dtype code 17");
}

KILN_TEST(elementwise_cast, bitcast_reinterprets_bytes) {
  Tensor x = f32({2}, {1.0f, -2.0f});
  Tensor y = unary("BitCast", x, {{"to", attrInt(static_cast<int64_t>(DType::Int32))}}, 26);
  EXPECT_TRUE(y.dtype == DType::Int32);
  EXPECT_EQ(y.ptr<int32_t>()[0], 0x3f800000);
  EXPECT_EQ(static_cast<uint32_t>(y.ptr<int32_t>()[1]), 0xc0000000u);
  EXPECT_THROWS_WITH(unary("BitCast", x, {{"to", attrInt(static_cast<int64_t>(DType::Int64))}}, 26), "element size");
}
