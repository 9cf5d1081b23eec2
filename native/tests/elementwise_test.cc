// Unary math, binary arithmetic, variadic ops and Dropout on the CPU backend; the broadcasting
// iterator they share.
#include <random>

#include "backends/cpu/broadcast.h"
#include "elementwise_test_util.h"

using namespace kiln;
using namespace kiln_test;

// ---- broadcast.h --------------------------------------------------------------------------------

KILN_TEST(elementwise, broadcast_collapses_dims) {
  cpu::Broadcast same = cpu::makeBroadcast({2, 3, 4}, {{2, 3, 4}, {2, 3, 4}});
  EXPECT_EQ(same.dims.size(), size_t(1));
  EXPECT_EQ(same.dims[0], 24);
  cpu::Broadcast scalar = cpu::makeBroadcast({2, 3, 4}, {{2, 3, 4}, {}});
  EXPECT_EQ(scalar.dims.size(), size_t(1));
  EXPECT_EQ(scalar.innerStride(1), 0);
  cpu::Broadcast row = cpu::makeBroadcast({2, 3, 4}, {{2, 3, 4}, {4}});
  EXPECT_EQ(row.dims.size(), size_t(2));  // [6, 4]: rows of 4 with the bias repeated
  EXPECT_EQ(row.dims[0], 6);
  EXPECT_EQ(row.strides[1][0], 0);
  EXPECT_EQ(row.innerStride(1), 1);
  cpu::Broadcast channel = cpu::makeBroadcast({2, 3, 5, 5}, {{2, 3, 5, 5}, {1, 3, 1, 1}});
  EXPECT_EQ(channel.dims.size(), size_t(3));  // [2, 3, 25]
  EXPECT_EQ(channel.innerStride(1), 0);
}

KILN_TEST(elementwise, broadcast_shapes_rejects_mismatch) {
  EXPECT_TRUE(cpu::broadcastShapes({{2, 1, 3}, {4, 1}}, "t") == (Shape{2, 4, 3}));
  EXPECT_TRUE(cpu::broadcastShapes({{0, 3}, {1, 3}}, "t") == (Shape{0, 3}));
  EXPECT_THROWS_WITH(cpu::broadcastShapes({{2, 3}, {4}}, "Add node 'x'"), "Add node 'x': shapes [2,3] and [4]");
}

// forEachRun over any sub-range visits exactly the offsets a naive multi-index walk computes.
KILN_TEST(elementwise, broadcast_runs_match_naive_indexing) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; trial++) {
    int rank = 1 + rng() % 4;
    Shape out(rank), a(rank), b;
    for (int d = 0; d < rank; d++) {
      out[d] = 1 + rng() % 4;
      a[d] = rng() % 3 == 0 ? 1 : out[d];
    }
    int rb = rng() % (rank + 1);
    for (int d = rank - rb; d < rank; d++) b.push_back(rng() % 2 ? 1 : out[d]);
    cpu::Broadcast bc = cpu::makeBroadcast(out, {a, b});
    int64_t n = shapeNumel(out);
    int64_t begin = n ? rng() % n : 0, end = begin + (n - begin ? rng() % (n - begin + 1) : 0);
    std::vector<int64_t> gotA(n, -1), gotB(n, -1);
    cpu::forEachRun(bc, begin, end, [&](int64_t pos, const int64_t* off, int64_t count) {
      for (int64_t i = 0; i < count; i++) {
        gotA[pos + i] = off[0] + i * bc.innerStride(0);
        gotB[pos + i] = off[1] + i * bc.innerStride(1);
      }
    });
    auto sa = shapeStrides(a), sb = shapeStrides(b);
    for (int64_t e = 0; e < n; e++) {
      int64_t rem = e, oa = 0, ob = 0;
      for (int d = rank - 1; d >= 0; d--) {
        int64_t idx = rem % out[d];
        rem /= out[d];
        if (a[d] != 1) oa += idx * sa[d];
        int db = d - (rank - (int)b.size());
        if (db >= 0 && b[db] != 1) ob += idx * sb[db];
      }
      bool inRange = e >= begin && e < end;
      EXPECT_EQ(gotA[e], inRange ? oa : -1);
      EXPECT_EQ(gotB[e], inRange ? ob : -1);
    }
  }
}

// ---- unary math -----------------------------------------------------------------------------------

KILN_TEST(elementwise, unary_float_math) {
  Tensor x = f32({5}, {-2.5f, -0.5f, 0.5f, 1.5f, 2.5f});
  expectTensor(unary("Abs", x), DType::Float32, {5}, {2.5, 0.5, 0.5, 1.5, 2.5});
  expectTensor(unary("Neg", x), DType::Float32, {5}, {2.5, 0.5, -0.5, -1.5, -2.5});
  expectTensor(unary("Floor", x), DType::Float32, {5}, {-3, -1, 0, 1, 2});
  expectTensor(unary("Ceil", x), DType::Float32, {5}, {-2, -0.0, 1, 2, 3});
  expectTensor(unary("Round", x), DType::Float32, {5}, {-2, -0.0, 0, 2, 2});  // half to even
  expectTensor(unary("Sign", x), DType::Float32, {5}, {-1, -1, 1, 1, 1});
  expectTensor(unary("Reciprocal", x), DType::Float32, {5}, {-0.4, -2, 2, 1 / 1.5, 0.4}, 1e-6);
  Tensor p = f32({4}, {0.0f, 0.25f, 1.0f, 4.0f});
  expectTensor(unary("Sqrt", p), DType::Float32, {4}, {0, 0.5, 1, 2});
  expectTensor(unary("Exp", p), DType::Float32, {4}, {1, std::exp(0.25), std::exp(1.0), std::exp(4.0)}, 1e-4);
  expectTensor(unary("Log", p), DType::Float32, {4}, {-kInf, std::log(0.25), 0, std::log(4.0)}, 1e-6);
  expectTensor(unary("Erf", p), DType::Float32, {4}, {0, std::erf(0.25), std::erf(1.0), std::erf(4.0)}, 1e-6);
  Tensor t = f32({3}, {-0.5f, 0.0f, 0.5f});
  for (auto [op, fn] : std::vector<std::pair<std::string, double (*)(double)>>{
           {"Sin", std::sin}, {"Cos", std::cos}, {"Tan", std::tan}, {"Asin", std::asin}, {"Acos", std::acos},
           {"Atan", std::atan}, {"Sinh", std::sinh}, {"Cosh", std::cosh}, {"Asinh", std::asinh}, {"Atanh", std::atanh}}) {
    expectTensor(unary(op, t), DType::Float32, {3}, {fn(-0.5), fn(0.0), fn(0.5)}, 1e-6);
  }
  expectTensor(unary("Acosh", f32({2}, {1, 2})), DType::Float32, {2}, {0, std::acosh(2.0)}, 1e-6);
  expectTensor(unary("Sqrt", f32({1}, {-1})), DType::Float32, {1}, {kNaN});
}

KILN_TEST(elementwise, unary_other_types) {
  // Integer Abs/Neg wrap at the most negative value instead of overflowing.
  expectTensor(unary("Abs", make<int8_t>({3}, {-128, -5, 7})), DType::Int8, {3}, {-128, 5, 7});
  expectTensor(unary("Neg", make<int32_t>({2}, {INT32_MIN, 3})), DType::Int32, {2}, {INT32_MIN, -3});
  expectTensor(unary("Sign", make<int64_t>({3}, {-9, 0, 4})), DType::Int64, {3}, {-1, 0, 1});
  expectTensor(unary("Abs", make<uint32_t>({1}, {7})), DType::UInt32, {1}, {7});
  expectTensor(unary("Log", f64({2}, {1.0, std::exp(2.0)})), DType::Float64, {2}, {0, 2}, 1e-12);
  // float16 and bfloat16 compute in float32 and round back.
  expectTensor(unary("Exp", half({3}, {0.0f, 1.0f, -1.0f})), DType::Float16, {3}, {1, 2.71875, 0.36792}, 1e-3);
  expectTensor(unary("Sqrt", bf16({2}, {4.0f, 9.0f})), DType::BFloat16, {2}, {2, 3});
  Tensor big = Tensor::allocate(DType::Float16, {2000});  // exercises the block conversion loop
  for (int i = 0; i < 2000; i++) big.ptr<uint16_t>()[i] = floatToHalf(static_cast<float>(i % 7));
  Tensor r = unary("Neg", big);
  for (int i = 0; i < 2000; i++) EXPECT_EQ(halfToFloat(r.ptr<uint16_t>()[i]), -static_cast<float>(i % 7));
}

KILN_TEST(elementwise, unary_rejects_unsupported_types) {
  EXPECT_THROWS_WITH(unary("Sqrt", i32({1}, {4})), "unsupported operator Sqrt (opset 18) at node 'n0': dtype int32");
  EXPECT_THROWS_WITH(unary("Neg", make<uint32_t>({1}, {4})), "dtype uint32");
  EXPECT_THROWS_WITH(unary("Exp", makeBool({1}, {1})), "dtype bool");
}

KILN_TEST(elementwise, isnan_isinf) {
  Tensor x = f32({4}, {1.0f, NAN, INFINITY, -INFINITY});
  expectTensor(unary("IsNaN", x), DType::Bool, {4}, {0, 1, 0, 0});
  expectTensor(unary("IsInf", x), DType::Bool, {4}, {0, 0, 1, 1});
  expectTensor(unary("IsInf", x, {{"detect_negative", attrInt(0)}}), DType::Bool, {4}, {0, 0, 1, 0});
  expectTensor(unary("IsInf", x, {{"detect_positive", attrInt(0)}}), DType::Bool, {4}, {0, 0, 0, 1});
  expectTensor(unary("IsNaN", half({2}, {NAN, 0.0f})), DType::Bool, {2}, {1, 0});
}

// ---- binary arithmetic ----------------------------------------------------------------------------

KILN_TEST(elementwise, add_broadcast_shapes) {
  Tensor a = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  expectTensor(binary("Add", a, f32({2, 3}, {10, 20, 30, 40, 50, 60})), DType::Float32, {2, 3}, {11, 22, 33, 44, 55, 66});
  expectTensor(binary("Add", a, scalarF(1)), DType::Float32, {2, 3}, {2, 3, 4, 5, 6, 7});
  expectTensor(binary("Add", scalarF(1), a), DType::Float32, {2, 3}, {2, 3, 4, 5, 6, 7});
  expectTensor(binary("Add", a, f32({3}, {10, 20, 30})), DType::Float32, {2, 3}, {11, 22, 33, 14, 25, 36});
  expectTensor(binary("Sub", a, f32({2, 1}, {1, 2})), DType::Float32, {2, 3}, {0, 1, 2, 2, 3, 4});
  // Both operands broadcast: [2,1,3] - [4,1] -> [2,4,3].
  Tensor l = f32({2, 1, 3}, {1, 2, 3, 4, 5, 6});
  Tensor r = f32({4, 1}, {0, 10, 20, 30});
  Tensor o = binary("Sub", l, r);
  std::vector<double> want;
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 4; j++)
      for (int k = 0; k < 3; k++) want.push_back((i * 3 + k + 1) - 10.0 * j);
  expectTensor(o, DType::Float32, {2, 4, 3}, want);
  // Zero-sized broadcast.
  expectTensor(binary("Mul", f32({0, 3}, {}), f32({3}, {1, 2, 3})), DType::Float32, {0, 3}, {});
  EXPECT_THROWS_WITH(binary("Add", a, f32({2}, {1, 2})), "cannot broadcast");
  EXPECT_THROWS_WITH(binary("Add", a, i32({1}, {1})), "type");
}

KILN_TEST(elementwise, add_large_tensor_runs_in_parallel) {
  const int64_t rows = 300, cols = 257;  // > kGrain elements, row length not a multiple of 8
  std::vector<float> x(rows * cols), bias(cols);
  for (size_t i = 0; i < x.size(); i++) x[i] = static_cast<float>(i % 1000) * 0.5f;
  for (int64_t j = 0; j < cols; j++) bias[j] = static_cast<float>(j);
  Tensor o = binary("Add", f32({rows, cols}, x), f32({cols}, bias));
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = 0; j < cols; j++) EXPECT_EQ(o.ptr<float>()[i * cols + j], x[i * cols + j] + bias[j]);
}

KILN_TEST(elementwise, integer_arithmetic_wraps_and_never_traps) {
  expectTensor(binary("Add", make<uint8_t>({2}, {250, 1}), make<uint8_t>({2}, {10, 2})), DType::UInt8, {2}, {4, 3});
  expectTensor(binary("Mul", u16({1}, {65535}), u16({1}, {65535})), DType::UInt16, {1}, {1});
  expectTensor(binary("Add", i32({1}, {INT32_MAX}), i32({1}, {1})), DType::Int32, {1}, {INT32_MIN});
  expectTensor(binary("Sub", make<int8_t>({1}, {-128}), make<int8_t>({1}, {1})), DType::Int8, {1}, {127});
  // Integer Div truncates toward zero; /0 gives 0; INT_MIN / -1 wraps.
  expectTensor(binary("Div", i32({4}, {7, -7, 5, INT32_MIN}), i32({4}, {2, 2, 0, -1})), DType::Int32, {4},
               {3, -3, 0, INT32_MIN});
  expectTensor(binary("Div", make<uint64_t>({1}, {UINT64_MAX}), make<uint64_t>({1}, {2})), DType::UInt64, {1},
               {static_cast<double>(UINT64_MAX / 2)});
}

KILN_TEST(elementwise, mod_sign_conventions) {
  Tensor a = i32({4}, {-4, 7, 5, -3}), b = i32({4}, {3, -3, 0, -1});
  expectTensor(binary("Mod", a, b), DType::Int32, {4}, {2, -2, 0, 0});  // sign of the divisor
  expectTensor(binary("Mod", a, b, {{"fmod", attrInt(1)}}), DType::Int32, {4}, {-1, 1, 0, 0});  // of the dividend
  Tensor fa = f32({3}, {-4.5f, 7.0f, 5.5f}), fb = f32({3}, {3.0f, -3.0f, 2.0f});
  expectTensor(binary("Mod", fa, fb, {{"fmod", attrInt(1)}}), DType::Float32, {3}, {-1.5, 1, 1.5});
  expectTensor(binary("Mod", fa, fb), DType::Float32, {3}, {1.5, -2, 1.5});
}

KILN_TEST(elementwise, pow_mixed_types) {
  expectTensor(binary("Pow", f32({3}, {1, 2, 3}), f32({3}, {4, 5, 6})), DType::Float32, {3}, {1, 32, 729});
  expectTensor(binary("Pow", f32({3}, {1.5f, -2, 3}), scalarF(2)), DType::Float32, {3}, {2.25, 4, 9});  // x*x path
  expectTensor(binary("Pow", f32({2}, {2, 4}), i64({2}, {3, -1})), DType::Float32, {2}, {8, 0.25});
  expectTensor(binary("Pow", i32({3}, {2, -3, 5}), i32({3}, {10, 3, -1})), DType::Int32, {3}, {1024, -27, 0});
  expectTensor(binary("Pow", i64({2}, {2, 9}), f32({2}, {0.5f, 0.5f})), DType::Int64, {2}, {1, 3});
  expectTensor(binary("Pow", f64({1}, {2}), f64({1}, {0.5})), DType::Float64, {1}, {std::sqrt(2.0)}, 1e-15);
  EXPECT_THROWS_WITH(binary("Pow", makeBool({1}, {1}), f32({1}, {1})), "dtype bool");
}

KILN_TEST(elementwise, legacy_broadcast_axis_before_opset_7) {
  // Add-6 with broadcast=1, axis=1: B [3] aligns with A's dim 1 of [2,3,2].
  Tensor a = f32({2, 3, 2}, {0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1});
  Tensor b = f32({3}, {10, 20, 30});
  Tensor o = binary("Add", a, b, {{"broadcast", attrInt(1)}, {"axis", attrInt(1)}}, 6);
  expectTensor(o, DType::Float32, {2, 3, 2}, {10, 10, 20, 20, 30, 30, 11, 11, 21, 21, 31, 31});
}

KILN_TEST(elementwise, variadic_sum_mean_max_min) {
  Tensor a = f32({2, 2}, {1, 2, 3, 4}), b = f32({2}, {10, 20}), c = scalarF(100);
  expectTensor(run1({"Sum", 13, {a, b, c}}), DType::Float32, {2, 2}, {111, 122, 113, 124});
  expectTensor(run1({"Mean", 13, {a, b, c}}), DType::Float32, {2, 2}, {37, 122.0 / 3, 113.0 / 3, 124.0 / 3}, 1e-5);
  expectTensor(run1({"Max", 13, {a, f32({2}, {2, NAN})}}), DType::Float32, {2, 2}, {2, kNaN, 3, kNaN});
  expectTensor(run1({"Min", 13, {i32({3}, {5, -1, 7}), i32({1}, {3})}}), DType::Int32, {3}, {3, -1, 3});
  expectTensor(run1({"Max", 13, {make<uint8_t>({2}, {1, 200})}}), DType::UInt8, {2}, {1, 200});
  // A later input may be the one that sets the output shape.
  expectTensor(run1({"Sum", 13, {scalarF(1), scalarF(2), f32({3}, {1, 2, 3})}}), DType::Float32, {3}, {4, 5, 6});
  EXPECT_THROWS_WITH(run1({"Sum", 13, {i32({1}, {1}), i32({1}, {2})}}), "dtype int32");
}

KILN_TEST(elementwise, dropout_is_identity_at_inference) {
  Tensor x = f32({2, 2}, {1, -2, 3, -4});
  std::vector<Tensor> out = runOp({"Dropout", 13, {x, scalarF(0.3f)}, {}, 2});
  expectTensor(out[0], DType::Float32, {2, 2}, {1, -2, 3, -4});
  expectTensor(out[1], DType::Bool, {2, 2}, {1, 1, 1, 1});
  // Training mode with ratio 0 keeps everything.
  out = runOp({"Dropout", 13, {x, scalarF(0.0f), makeBool({}, {1})}, {}, 2});
  expectTensor(out[0], DType::Float32, {2, 2}, {1, -2, 3, -4});
  // Training mode with a seed: kept elements are scaled by 1 / (1 - ratio), the mask says which.
  out = runOp({"Dropout", 13, {f32({64}, std::vector<float>(64, 1.0f)), scalarF(0.5f), makeBool({}, {1})},
               {{"seed", attrInt(3)}}, 2});
  int kept = 0;
  for (int i = 0; i < 64; i++) {
    bool k = out[1].ptr<uint8_t>()[i] != 0;
    kept += k;
    EXPECT_EQ(out[0].ptr<float>()[i], k ? 2.0f : 0.0f);
  }
  EXPECT_TRUE(kept > 10 && kept < 54);
  // Opset 7: the mask has the data's type.
  out = runOp({"Dropout", 7, {x}, {{"ratio", attrFloat(0.5f)}}, 2});
  expectTensor(out[1], DType::Float32, {2, 2}, {1, 1, 1, 1});
}

// The float32 AVX2 loops for every operand pattern against a double reference.
KILN_TEST(elementwise, float32_arithmetic_every_stride_pattern) {
  std::vector<float> x(37), y(37);
  for (int i = 0; i < 37; i++) {
    x[i] = 0.5f * static_cast<float>(i) - 7.0f;
    y[i] = 0.25f * static_cast<float>(i) + 1.0f;
  }
  struct Case { const char* op; double (*f)(double, double); };
  const Case cases[] = {{"Add", [](double a, double b) { return a + b; }}, {"Sub", [](double a, double b) { return a - b; }},
                        {"Mul", [](double a, double b) { return a * b; }}, {"Div", [](double a, double b) { return a / b; }}};
  for (const Case& c : cases) {
    std::vector<double> both, left, right, scalars;
    for (int i = 0; i < 37; i++) {
      both.push_back(static_cast<float>(c.f(x[i], y[i])));
      left.push_back(static_cast<float>(c.f(x[i], y[0])));
      right.push_back(static_cast<float>(c.f(x[0], y[i])));
    }
    expectTensor(binary(c.op, f32({37}, x), f32({37}, y)), DType::Float32, {37}, both, 0);
    expectTensor(binary(c.op, f32({37}, x), f32({1}, {y[0]})), DType::Float32, {37}, left, 0);
    expectTensor(binary(c.op, f32({}, {x[0]}), f32({37}, y)), DType::Float32, {37}, right, 0);
    expectTensor(binary(c.op, f32({1}, {x[0]}), f32({}, {y[0]})), DType::Float32, {1}, {static_cast<float>(c.f(x[0], y[0]))}, 0);
  }
}
