// The SGEMM engine against a double-precision reference: odd shapes (M/N/K off the block sizes),
// transposed and strided operands, alpha/beta, pre-packed operands, every epilogue part, both the
// AVX2 and the portable kernels, single- and multi-threaded.
#include <cmath>
#include <random>
#include <vector>

#include "backends/cpu/gemm/kernels.h"
#include "backends/cpu/gemm/sgemm.h"
#include "core/error.h"
#include "test.h"

using namespace kiln;
using namespace kiln::cpu;

namespace {

std::vector<float> randomVector(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

double refActivation(double x, const ActivationSpec& a) {
  switch (a.kind) {
    case Activation::None: return x;
    case Activation::Relu: return x < 0 ? 0 : x;
    case Activation::LeakyRelu: return x < 0 ? x * a.alpha : x;
    case Activation::Sigmoid: return 1 / (1 + std::exp(-x));
    case Activation::Tanh: return std::tanh(x);
    case Activation::Clip: return std::min<double>(std::max<double>(x, a.alpha), a.beta);
    case Activation::HardSigmoid: return std::min(std::max(x * a.alpha + a.beta, 0.0), 1.0);
    case Activation::HardSwish: return x * std::min(std::max(x / 6 + 0.5, 0.0), 1.0);
    case Activation::Gelu: return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
    case Activation::GeluTanh: return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
    case Activation::Silu: return x / (1 + std::exp(-x));
  }
  return x;
}

struct Case {
  int64_t M, N, K;
  bool transA = false, transB = false;
  float alpha = 1.f, beta = 0.f;
  bool packA = false, packB = false;
  bool rowBias = false, colBias = false, residual = false;
  ActivationSpec act;
};

// Runs one case with the given kernels and compares with the reference; returns max abs error.
void runCase(const Case& c, const GemmKernelTable& kt, ThreadPool* pool) {
  const int64_t lda = c.transA ? c.M + 3 : c.K + 5;  // padded leading dimensions catch stride bugs
  const int64_t ldb = c.transB ? c.K + 2 : c.N + 7;
  const int64_t ldc = c.N + 4;
  auto A = randomVector(size_t(std::max<int64_t>(1, (c.transA ? c.K : c.M) * lda)), 1 + uint32_t(c.M));
  auto B = randomVector(size_t(std::max<int64_t>(1, (c.transB ? c.N : c.K) * ldb)), 2 + uint32_t(c.N));
  auto C0 = randomVector(size_t(c.M * ldc), 3);
  auto rb = randomVector(size_t(c.M), 4), cb = randomVector(size_t(c.N), 5);
  auto R = randomVector(size_t(c.M * c.N), 6);
  auto a = [&](int64_t i, int64_t k) { return double(c.transA ? A[k * lda + i] : A[i * lda + k]); };
  auto b = [&](int64_t k, int64_t j) { return double(c.transB ? B[j * ldb + k] : B[k * ldb + j]); };

  GemmArgs g;
  g.M = c.M, g.N = c.N, g.K = c.K, g.alpha = c.alpha, g.beta = c.beta;
  g.A = c.transA ? GemmOperand::colMajor(A.data(), lda) : GemmOperand::rowMajor(A.data(), lda);
  g.B = c.transB ? GemmOperand::colMajor(B.data(), ldb) : GemmOperand::rowMajor(B.data(), ldb);
  std::shared_ptr<PackedMatrix> pa, pb;
  if (c.packA) {
    pa = PackedMatrix::pack(PackedMatrix::Side::A, A.data(), c.M, c.K, g.A.rowStride, g.A.colStride);
    g.A = GemmOperand::prepacked(pa.get());
  }
  if (c.packB) {
    pb = PackedMatrix::pack(PackedMatrix::Side::B, B.data(), c.K, c.N, g.B.rowStride, g.B.colStride);
    g.B = GemmOperand::prepacked(pb.get());
  }
  std::vector<float> C = C0;
  g.C = C.data();
  g.ldc = ldc;
  if (c.rowBias) g.epilogue.rowBias = rb.data();
  if (c.colBias) g.epilogue.colBias = cb.data();
  if (c.residual) {
    g.epilogue.residual = R.data();
    g.epilogue.residualRowStride = c.N;
    g.epilogue.residualScale = 0.5f;
  }
  g.epilogue.activation = c.act;
  sgemmWith(kt, g, pool);

  for (int64_t i = 0; i < c.M; i++) {
    for (int64_t j = 0; j < c.N; j++) {
      double acc = 0;
      for (int64_t k = 0; k < c.K; k++) acc += a(i, k) * b(k, j);
      double y = c.alpha * acc + (c.beta != 0 ? c.beta * C0[i * ldc + j] : 0.0);
      if (c.rowBias) y += rb[i];
      if (c.colBias) y += cb[j];
      if (c.residual) y += 0.5 * R[i * c.N + j];
      y = refActivation(y, c.act);
      const double tol = 1e-5 * (c.K + 4) + 1e-5 * std::fabs(y);
      if (!(std::fabs(C[i * ldc + j] - y) <= tol)) {
        throw kiln_test::Failure(std::string(kt.name) + " M=" + std::to_string(c.M) + " N=" + std::to_string(c.N) +
                                 " K=" + std::to_string(c.K) + " at (" + std::to_string(i) + "," +
                                 std::to_string(j) + "): got " + std::to_string(C[i * ldc + j]) +
                                 " want " + std::to_string(y));
      }
    }
    // Padding columns of C past N must be untouched.
    for (int64_t j = c.N; j < ldc; j++) EXPECT_EQ(C[i * ldc + j], C0[i * ldc + j]);
  }
}

std::vector<const GemmKernelTable*> tables() {
  std::vector<const GemmKernelTable*> t{&genericGemmKernels()};
  if (avx2GemmKernelsOrNull() && cpuHasAvx2Fma()) t.push_back(avx2GemmKernelsOrNull());
  if (avx512GemmKernelsOrNull() && cpuHasAvx512()) t.push_back(avx512GemmKernelsOrNull());
  return t;
}

}  // namespace

KILN_TEST(gemm, odd_shapes_all_transposes) {
  ThreadPool pool(3);
  const int64_t sizes[][3] = {{1, 1, 1},   {1, 17, 5},   {7, 1, 3},    {6, 16, 8},    {5, 15, 7},
                              {13, 33, 1}, {37, 41, 29}, {64, 64, 64}, {19, 200, 300}, {150, 23, 513},
                              {1, 300, 64}, {145, 49, 260}};
  for (auto* kt : tables()) {
    for (auto& s : sizes) {
      for (int t = 0; t < 4; t++) {
        Case c{s[0], s[1], s[2]};
        c.transA = t & 1;
        c.transB = t & 2;
        runCase(c, *kt, &pool);
      }
    }
  }
}

KILN_TEST(gemm, alpha_beta_and_prepacked) {
  ThreadPool pool(2);
  for (auto* kt : tables()) {
    for (int variant = 0; variant < 8; variant++) {
      Case c{31 + variant, 45 + 3 * variant, 270 + variant};
      c.alpha = variant % 2 ? 0.5f : 1.f;
      c.beta = variant % 3 == 0 ? 0.f : (variant % 3 == 1 ? 1.f : -2.f);
      c.packA = variant & 2;
      c.packB = variant & 4;
      c.transA = variant & 1;
      c.transB = variant & 2;
      runCase(c, *kt, &pool);
      runCase(c, *kt, nullptr);
    }
  }
}

KILN_TEST(gemm, epilogues_every_activation) {
  ThreadPool pool(2);
  const Activation acts[] = {Activation::None, Activation::Relu, Activation::LeakyRelu, Activation::Sigmoid,
                             Activation::Tanh, Activation::Clip, Activation::HardSigmoid, Activation::HardSwish,
                             Activation::Gelu, Activation::GeluTanh, Activation::Silu};
  for (auto* kt : tables()) {
    int n = 0;
    for (Activation a : acts) {
      Case c{23 + n, 37 + 2 * n, 300};
      c.act.kind = a;
      c.act.alpha = a == Activation::Clip ? -0.5f : (a == Activation::HardSigmoid ? 0.2f : 0.1f);
      c.act.beta = a == Activation::Clip ? 0.7f : 0.5f;
      c.rowBias = n % 2 == 0;
      c.colBias = n % 3 != 0;
      c.residual = n % 2 == 1;
      c.packA = n % 4 == 1;
      c.beta = n % 5 == 0 ? 1.f : 0.f;
      runCase(c, *kt, &pool);
      n++;
    }
  }
}

KILN_TEST(gemm, zero_k_applies_beta_and_epilogue) {
  for (auto* kt : tables()) {
    Case c{5, 9, 0};
    c.beta = 2.f;
    c.colBias = true;
    c.act.kind = Activation::Relu;
    runCase(c, *kt, nullptr);
  }
}

KILN_TEST(gemm, large_multithreaded_matches_single) {
  ThreadPool pool(4);
  for (auto* kt : tables()) {
    Case c{300, 520, 700};
    c.packB = true;
    c.colBias = true;
    c.act.kind = Activation::Gelu;
    runCase(c, *kt, &pool);
  }
}

KILN_TEST(gemm, rejects_mismatched_packed_operand) {
  auto W = randomVector(12, 1);
  auto packed = PackedMatrix::pack(PackedMatrix::Side::B, W.data(), 3, 4, 4, 1);
  std::vector<float> A(6), C(8);
  GemmArgs g;
  g.M = 2, g.N = 4, g.K = 2;  // packed B is 3x4, the problem says K=2
  g.A = GemmOperand::rowMajor(A.data(), 2);
  g.B = GemmOperand::prepacked(packed.get());
  g.C = C.data();
  g.ldc = 4;
  EXPECT_THROWS_WITH(sgemm(g, nullptr), "pre-packed B");
}

KILN_TEST(gemm, vector_activations_match_libm) {
  // The AVX2 exp/tanh/erf approximations over a dense range, against double-precision libm.
  const Activation acts[] = {Activation::Sigmoid, Activation::Tanh, Activation::Gelu, Activation::GeluTanh,
                             Activation::Silu};
  std::vector<float> xs;
  for (float x = -30.f; x <= 30.f; x += 0.0137f) xs.push_back(x);
  for (float x = -1e-3f; x <= 1e-3f; x += 1.3e-6f) xs.push_back(x);
  xs.push_back(90.f);
  xs.push_back(-90.f);
  for (auto* kt : tables()) {
    for (Activation a : acts) {
      ActivationSpec spec{a, 0, 0};
      std::vector<float> y = xs;
      kt->activation(y.data(), int64_t(y.size()), spec);
      for (size_t i = 0; i < xs.size(); i++) {
        double want = refActivation(xs[i], spec);
        double err = std::fabs(y[i] - want);
        // 1e-6 absolute: GELU's 1 + erf(x) cancels in float for x << 0 (erf's few ulp near -1,
        // times x/2), as in every float implementation.
        if (!(err <= 2e-6 * std::fabs(want) + 1e-6)) {
          throw kiln_test::Failure(std::string(kt->name) + " " + activationName(a) + "(" + std::to_string(xs[i]) +
                                   ") = " + std::to_string(y[i]) + " want " + std::to_string(want) + " err " + std::to_string(err * 1e9) + "e-9");
        }
      }
    }
  }
}

// ---- MatMul / Gemm / FusedMatMul / FusedGemm ops ------------------------------------------------

#include "compute_harness.h"

namespace {

using namespace compute_test;

// numpy.matmul reference over float32 tensors (any batch broadcasting, 1-D promotion).
std::vector<float> refMatMul(const Tensor& a, const Tensor& b, Shape& outShape) {
  Shape pa = a.shape, pb = b.shape;
  if (pa.size() == 1) pa.insert(pa.begin(), 1);
  if (pb.size() == 1) pb.push_back(1);
  const int64_t M = pa[pa.size() - 2], K = pa.back(), N = pb.back();
  const size_t br = std::max(pa.size(), pb.size()) - 2;
  Shape batch(br);
  for (size_t k = 0; k < br; k++) {
    int64_t ad = k + 2 < pa.size() ? pa[pa.size() - 3 - k] : 1, bd = k + 2 < pb.size() ? pb[pb.size() - 3 - k] : 1;
    batch[br - 1 - k] = std::max(ad, bd);
  }
  outShape = batch;
  if (a.shape.size() != 1) outShape.push_back(M);
  if (b.shape.size() != 1) outShape.push_back(N);
  const int64_t batches = shapeNumel(batch);
  std::vector<float> out(static_cast<size_t>(batches * M * N));
  for (int64_t t = 0; t < batches; t++) {
    // Decompose t into batch indices, map into each operand with broadcasting.
    int64_t ao = 0, bo = 0, rem = t, as = M * K, bs = K * N;
    for (size_t k = 0; k < br; k++) {
      const size_t d = br - 1 - k;
      const int64_t idx = rem % batch[d];
      rem /= batch[d];
      int64_t ad = k + 2 < pa.size() ? pa[pa.size() - 3 - k] : 1, bd = k + 2 < pb.size() ? pb[pb.size() - 3 - k] : 1;
      if (ad != 1) ao += idx * as;
      if (bd != 1) bo += idx * bs;
      as *= ad;
      bs *= bd;
    }
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) {
        double acc = 0;
        for (int64_t k = 0; k < K; k++) acc += double(a.ptr<float>()[ao + i * K + k]) * b.ptr<float>()[bo + k * N + j];
        out[size_t((t * M + i) * N + j)] = float(acc);
      }
  }
  return out;
}

}  // namespace

KILN_TEST(gemm, matmul_op_broadcasting_and_promotion) {
  ThreadPool pool(2);
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{3}, {3}},          {{3}, {3, 4}},          {{2, 3}, {3}},           {{5, 7}, {7, 9}},
      {{2, 5, 7}, {7, 9}}, {{7}, {2, 7, 3}},       {{2, 1, 4, 6}, {3, 6, 5}}, {{1, 3, 4, 6}, {2, 1, 6, 5}},
      {{4, 2, 3}, {4, 3, 2}}, {{2, 130, 70}, {70, 33}}, {{0, 4}, {4, 3}},     {{12, 16, 8}, {12, 8, 16}},
  };
  uint32_t seed = 1;
  for (auto& [sa, sb] : cases) {
    Tensor a = randomFloats(sa, seed++), b = randomFloats(sb, seed++);
    Shape outShape;
    std::vector<float> want = refMatMul(a, b, outShape);
    for (bool constB : {false, true}) {
      Call call{"MatMul", "", 13, {in(a), constB ? constant(b) : in(b)}};
      call.pool = &pool;
      expectClose(run1(call), outShape, want, 1e-4, 1e-4, "MatMul " + shapeToString(sa) + "x" + shapeToString(sb));
    }
  }
}

KILN_TEST(gemm, matmul_op_integer_and_double) {
  Tensor a = Tensor::allocate(DType::Int64, {2, 3}), b = Tensor::allocate(DType::Int64, {3, 2});
  for (int i = 0; i < 6; i++) {
    a.ptr<int64_t>()[i] = i - 2;
    b.ptr<int64_t>()[i] = 3 * i + 1;
  }
  Tensor y = run1(Call{"MatMul", "", 13, {in(a), in(b)}});
  // [[-2,-1,0],[1,2,3]] x [[1,4],[7,10],[13,16]]
  const int64_t want[] = {-9, -18, 54, 72};
  for (int i = 0; i < 4; i++) EXPECT_EQ(y.ptr<int64_t>()[i], want[i]);

  Tensor da = Tensor::allocate(DType::Float64, {2, 2}), db = Tensor::allocate(DType::Float64, {2, 1});
  double av[] = {1.5, -2, 0.25, 4}, bv[] = {2, 0.5};
  for (int i = 0; i < 4; i++) da.ptr<double>()[i] = av[i];
  for (int i = 0; i < 2; i++) db.ptr<double>()[i] = bv[i];
  Tensor dy = run1(Call{"MatMul", "", 13, {in(da), constant(db)}});
  EXPECT_TRUE(dy.dtype == DType::Float64);
  EXPECT_NEAR(dy.ptr<double>()[0], 2.0, 1e-6);
  EXPECT_NEAR(dy.ptr<double>()[1], 2.5, 1e-6);
}

KILN_TEST(gemm, matmul_op_errors_name_node_and_shapes) {
  Call call{"MatMul", "", 13, {in(randomFloats({2, 3}, 1)), in(randomFloats({4, 5}, 2))}};
  call.nodeName = "proj";
  EXPECT_THROWS_WITH(run1(call), "node 'proj' (MatMul): inner dimensions differ: A [2,3]");
  Call batch{"MatMul", "", 13, {in(randomFloats({2, 3, 4}, 1)), in(randomFloats({3, 4, 5}, 2))}};
  EXPECT_THROWS_WITH(run1(batch), "broadcast");
}

KILN_TEST(gemm, gemm_op_all_attributes_and_c_broadcasts) {
  ThreadPool pool(2);
  const int64_t M = 7, N = 19, K = 33;
  uint32_t seed = 10;
  const std::vector<Shape> cShapes = {{}, {1}, {N}, {1, N}, {M, 1}, {M, N}, {1, 1}};
  for (int variant = 0; variant < 4 * int(cShapes.size() + 1); variant++) {
    const bool transA = variant & 1, transB = variant & 2;
    const size_t ci = size_t(variant / 4);
    const float alpha = 0.75f, beta = ci % 2 ? 1.f : -1.5f;
    Tensor a = randomFloats(transA ? Shape{K, M} : Shape{M, K}, seed++);
    Tensor b = randomFloats(transB ? Shape{N, K} : Shape{K, N}, seed++);
    std::optional<Tensor> c;
    if (ci < cShapes.size()) c = randomFloats(cShapes[ci], seed++);
    std::vector<float> want(static_cast<size_t>(M * N));
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) {
        double acc = 0;
        for (int64_t k = 0; k < K; k++) {
          acc += double(a.ptr<float>()[transA ? k * M + i : i * K + k]) * b.ptr<float>()[transB ? j * K + k : k * N + j];
        }
        double y = alpha * acc;
        if (c) {
          const Shape& cs = c->shape;
          int64_t cm = cs.size() == 2 ? cs[0] : 1, cn = cs.empty() ? 1 : cs.back();
          y += beta * c->ptr<float>()[(cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j)];
        }
        want[size_t(i * N + j)] = float(y);
      }
    for (bool constB : {false, true}) {
      Call call{"Gemm", "", 13, {in(a), constB ? constant(b) : in(b), c ? in(*c) : none()}};
      call.attrs = {{"alpha", attrFloat(alpha)}, {"beta", attrFloat(beta)}, {"transA", attrInt(transA)},
                    {"transB", attrInt(transB)}};
      call.pool = &pool;
      expectClose(run1(call), {M, N}, want, 1e-4, 1e-4, "Gemm variant " + std::to_string(variant));
    }
  }
}

KILN_TEST(gemm, gemm_op_rejects_bad_c) {
  Call call{"Gemm", "", 13, {in(randomFloats({2, 3}, 1)), in(randomFloats({3, 4}, 2)), in(randomFloats({3, 4}, 3))}};
  EXPECT_THROWS_WITH(run1(call), "does not broadcast");
}

KILN_TEST(gemm, fused_matmul_and_gemm_epilogues) {
  ThreadPool pool(2);
  Tensor a = randomFloats({2, 9, 40}, 1), w = randomFloats({40, 23}, 2), bias = randomFloats({23}, 3);
  Shape outShape;
  std::vector<float> want = refMatMul(a, w, outShape);
  for (size_t i = 0; i < want.size(); i++) {
    float v = want[i] + bias.ptr<float>()[i % 23];
    want[i] = 0.5f * v * (1.f + std::erf(v / std::sqrt(2.f)));
  }
  for (bool constW : {false, true}) {
    Call call{"FusedMatMul", "kiln", 1, {in(a), constW ? constant(w) : in(w), in(bias)}};
    call.attrs = {{"activation", attrString("Gelu")}};
    call.fallbackShapes = {outShape};
    call.pool = &pool;
    expectClose(run1(call), outShape, want, 1e-4, 1e-4, "FusedMatMul");
  }
  // FusedGemm with transB, C as a column bias, LeakyRelu with a custom alpha.
  Tensor x = randomFloats({5, 12}, 4), wt = randomFloats({8, 12}, 5), c = randomFloats({8}, 6);
  std::vector<float> wantG(40);
  for (int i = 0; i < 5; i++)
    for (int j = 0; j < 8; j++) {
      double acc = 0;
      for (int k = 0; k < 12; k++) acc += double(x.ptr<float>()[i * 12 + k]) * wt.ptr<float>()[j * 12 + k];
      float v = float(acc) + c.ptr<float>()[j];
      wantG[size_t(i * 8 + j)] = v < 0 ? 0.2f * v : v;
    }
  Call g{"FusedGemm", "kiln", 1, {in(x), constant(wt), in(c)}};
  g.attrs = {{"transB", attrInt(1)}, {"activation", attrString("LeakyRelu")}, {"activation_params", attrFloats({0.2f})}};
  g.fallbackShapes = {{5, 8}};
  expectClose(run1(g), {5, 8}, wantG, 1e-4, 1e-4, "FusedGemm");
}

// ---- MatMulInteger / QLinearMatMul (ONNX examples) ---------------------------------------------

namespace {

template <class T>
Tensor quantized(DType t, const Shape& shape, const std::vector<int>& v) {
  Tensor x = Tensor::allocate(t, shape);
  for (size_t i = 0; i < v.size(); i++) x.ptr<T>()[i] = T(v[i]);
  return x;
}

}  // namespace

KILN_TEST(gemm, matmul_integer_and_qlinear_matmul) {
  Tensor a = quantized<uint8_t>(DType::UInt8, {4, 3}, {11, 7, 3, 10, 6, 2, 9, 5, 1, 8, 4, 0});
  Tensor b = quantized<uint8_t>(DType::UInt8, {3, 2}, {1, 4, 2, 5, 3, 6});
  Tensor az = quantized<uint8_t>(DType::UInt8, {}, {12}), bz = quantized<uint8_t>(DType::UInt8, {}, {0});
  Tensor y = run1(Call{"MatMulInteger", "", 10, {in(a), in(b), in(az), in(bz)}});
  EXPECT_TRUE(y.dtype == DType::Int32);
  const int32_t want[] = {-38, -83, -44, -98, -50, -113, -56, -128};
  for (int i = 0; i < 8; i++) EXPECT_EQ(y.ptr<int32_t>()[i], want[i]);

  Tensor qa = quantized<uint8_t>(DType::UInt8, {2, 4}, {208, 236, 0, 238, 3, 214, 255, 29});
  Tensor qb = quantized<uint8_t>(DType::UInt8, {4, 3}, {152, 51, 244, 60, 26, 255, 0, 127, 246, 127, 254, 247});
  auto scalar = [](float v) {
    Tensor t = Tensor::allocate(DType::Float32, {});
    t.ptr<float>()[0] = v;
    return t;
  };
  Call q{"QLinearMatMul", "", 10,
         {in(qa), in(scalar(0.0066f)), in(quantized<uint8_t>(DType::UInt8, {}, {113})), in(qb), in(scalar(0.00705f)),
          in(quantized<uint8_t>(DType::UInt8, {}, {114})), in(scalar(0.0107f)), in(quantized<uint8_t>(DType::UInt8, {}, {118}))}};
  Tensor qy = run1(q);
  const int wantQ[] = {168, 115, 255, 1, 66, 151};
  for (int i = 0; i < 6; i++) EXPECT_EQ(int(qy.ptr<uint8_t>()[i]), wantQ[i]);

  Call bad{"MatMulInteger", "", 10, {in(a), in(b), in(quantized<uint8_t>(DType::UInt8, {2}, {1, 2}))}};
  EXPECT_THROWS_WITH(run1(bad), "a_zero_point [2] must be a scalar or have 4 values");
}
