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
