// Comparisons, boolean logic, bitwise ops and Where on the CPU backend.
#include "elementwise_test_util.h"

using namespace kiln;
using namespace kiln_test;

KILN_TEST(elementwise_logic, comparisons_broadcast) {
  Tensor a = f32({2, 3}, {1, 2, 3, 4, 5, NAN}), b = f32({3}, {2, 2, 2});
  expectTensor(binary("Equal", a, b), DType::Bool, {2, 3}, {0, 1, 0, 0, 0, 0});
  expectTensor(binary("Less", a, b), DType::Bool, {2, 3}, {1, 0, 0, 0, 0, 0});
  expectTensor(binary("Greater", a, b), DType::Bool, {2, 3}, {0, 0, 1, 1, 1, 0});
  expectTensor(binary("LessOrEqual", a, b), DType::Bool, {2, 3}, {1, 1, 0, 0, 0, 0});
  expectTensor(binary("GreaterOrEqual", a, b), DType::Bool, {2, 3}, {0, 1, 1, 1, 1, 0});
  // Full 64-bit range: no conversion through double.
  Tensor u = make<uint64_t>({2}, {UINT64_MAX, UINT64_MAX - 1});
  expectTensor(binary("Equal", u, make<uint64_t>({1}, {UINT64_MAX})), DType::Bool, {2}, {1, 0});
  expectTensor(binary("Less", make<int8_t>({2}, {-128, 127}), make<int8_t>({2}, {0, 0})), DType::Bool, {2}, {1, 0});
  expectTensor(binary("Equal", makeBool({2}, {1, 0}), makeBool({2}, {1, 1})), DType::Bool, {2}, {1, 0});
  EXPECT_THROWS_WITH(binary("Less", makeBool({1}, {1}), makeBool({1}, {1})), "dtype bool");
}

KILN_TEST(elementwise_logic, equal_strings) {
  Tensor a = make<std::string>({3}, {"a", "bc", ""});
  expectTensor(binary("Equal", a, make<std::string>({}, {"bc"}), {}, 19), DType::Bool, {3}, {0, 1, 0});
}

KILN_TEST(elementwise_logic, and_or_xor_not) {
  Tensor a = makeBool({2, 2}, {0, 0, 1, 1}), b = makeBool({2}, {0, 1});
  expectTensor(binary("And", a, b), DType::Bool, {2, 2}, {0, 0, 0, 1});
  expectTensor(binary("Or", a, b), DType::Bool, {2, 2}, {0, 1, 1, 1});
  expectTensor(binary("Xor", a, b), DType::Bool, {2, 2}, {0, 1, 1, 0});
  expectTensor(unary("Not", a), DType::Bool, {2, 2}, {1, 1, 0, 0});
  EXPECT_THROWS_WITH(binary("And", f32({1}, {1}), f32({1}, {1})), "bool");
}

KILN_TEST(elementwise_logic, bit_shift_and_bitwise) {
  Tensor x = make<uint8_t>({4}, {16, 4, 1, 255});
  Tensor s = make<uint8_t>({4}, {1, 2, 8, 9});
  expectTensor(binary("BitShift", x, s, {{"direction", attrString("LEFT")}}), DType::UInt8, {4}, {32, 16, 0, 0});
  expectTensor(binary("BitShift", x, s, {{"direction", attrString("RIGHT")}}), DType::UInt8, {4}, {8, 1, 0, 0});
  expectTensor(binary("BitShift", make<uint64_t>({1}, {1}), make<uint64_t>({1}, {63}), {{"direction", attrString("LEFT")}}),
               DType::UInt64, {1}, {9223372036854775808.0});
  EXPECT_THROWS_WITH(binary("BitShift", x, s, {{"direction", attrString("UP")}}), "direction");
  Tensor a = i32({3}, {0b1100, -1, 5}), b = i32({1}, {0b1010});
  expectTensor(binary("BitwiseAnd", a, b), DType::Int32, {3}, {0b1000, 0b1010, 0});
  expectTensor(binary("BitwiseOr", a, b), DType::Int32, {3}, {0b1110, -1, 0b1111});
  expectTensor(binary("BitwiseXor", a, b), DType::Int32, {3}, {0b0110, ~0b1010, 0b1111});
  expectTensor(unary("BitwiseNot", make<uint8_t>({2}, {0, 0xF0})), DType::UInt8, {2}, {255, 0x0F});
  EXPECT_THROWS_WITH(binary("BitwiseAnd", f32({1}, {1}), f32({1}, {1})), "dtype float32");
}

KILN_TEST(elementwise_logic, where_broadcasts_all_three) {
  Tensor c = makeBool({2, 1}, {1, 0});
  Tensor x = f32({3}, {1, 2, 3});
  Tensor y = scalarF(-1);
  expectTensor(run1({"Where", 16, {c, x, y}}), DType::Float32, {2, 3}, {1, 2, 3, -1, -1, -1});
  expectTensor(run1({"Where", 16, {makeBool({3}, {0, 1, 0}), i64({3}, {1, 2, 3}), i64({3}, {4, 5, 6})}}), DType::Int64, {3},
               {4, 2, 6});
  Tensor s = run1({"Where", 16, {makeBool({2}, {1, 0}), make<std::string>({2}, {"a", "b"}), make<std::string>({}, {"z"})}});
  EXPECT_EQ(s.ptr<std::string>()[0], std::string("a"));
  EXPECT_EQ(s.ptr<std::string>()[1], std::string("z"));
  EXPECT_THROWS_WITH(run1({"Where", 16, {f32({1}, {1}), x, y}}), "condition");
}
