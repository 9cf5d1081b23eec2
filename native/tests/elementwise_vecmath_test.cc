// The vectorized float32 math in backends/cpu/vec_math.h (AVX2 when available, else scalar)
// against the C library over a dense range, special values and every tail length.
#include <cmath>
#include <vector>

#include "backends/cpu/vec_math.h"
#include "core/dtype.h"
#include "test.h"

using namespace kiln;
using namespace kiln::cpu;

namespace {

void checkAgainst(void (*vec)(const float*, float*, int64_t), double (*ref)(double), float lo, float hi, double relTol,
                  double absTol) {
  std::vector<float> x;
  for (int i = 0; i <= 20000; i++) x.push_back(lo + (hi - lo) * static_cast<float>(i) / 20000.0f);
  std::vector<float> y(x.size());
  vec(x.data(), y.data(), static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < x.size(); i++) {
    double want = ref(x[i]);
    EXPECT_NEAR(y[i], want, absTol + relTol * std::fabs(want));
  }
}

double sigmoidRef(double x) { return 1 / (1 + std::exp(-x)); }
double siluRef(double x) { return x * sigmoidRef(x); }
double geluRef(double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }
double geluTanhRef(double x) { return 0.5 * x * (1 + std::tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))); }
double expRef(double x) { return std::exp(x); }
double logRef(double x) { return std::log(x); }
double tanhRef(double x) { return std::tanh(x); }
double erfRef(double x) { return std::erf(x); }

}  // namespace

KILN_TEST(elementwise_vecmath, accuracy_over_ranges) {
  checkAgainst(vecExp, expRef, -87.0f, 88.0f, 2e-6, 0);
  checkAgainst(vecLog, logRef, 1e-30f, 1e30f, 1e-6, 1e-6);
  checkAgainst(vecLog, logRef, 0.01f, 3.0f, 1e-6, 1e-7);
  checkAgainst(vecTanh, tanhRef, -10.0f, 10.0f, 1e-6, 1e-7);
  checkAgainst(vecSigmoid, sigmoidRef, -30.0f, 30.0f, 2e-6, 1e-7);
  checkAgainst(vecErf, erfRef, -5.0f, 5.0f, 1e-6, 1e-7);
  checkAgainst(vecSilu, siluRef, -20.0f, 20.0f, 2e-6, 1e-7);
  checkAgainst(vecGelu, geluRef, -6.0f, 6.0f, 2e-6, 1e-6);
  checkAgainst(vecGeluTanh, geluTanhRef, -6.0f, 6.0f, 2e-6, 1e-6);
}

KILN_TEST(elementwise_vecmath, special_values) {
  const float inf = INFINITY;
  std::vector<float> x = {0.0f, -0.0f, inf, -inf, NAN, 100.0f, -100.0f, 1e-40f};
  std::vector<float> y(x.size());
  vecExp(x.data(), y.data(), 8);
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[2], inf);
  EXPECT_EQ(y[3], 0.0f);
  EXPECT_TRUE(std::isnan(y[4]));
  EXPECT_EQ(y[5], inf);
  EXPECT_NEAR(y[6], std::exp(-100.0), 1e-45);  // subnormal result
  vecLog(x.data(), y.data(), 8);
  EXPECT_EQ(y[0], -inf);
  EXPECT_EQ(y[2], inf);
  EXPECT_TRUE(std::isnan(y[3]));
  EXPECT_TRUE(std::isnan(y[4]));
  EXPECT_TRUE(std::isnan(y[6]));
  EXPECT_NEAR(y[7], std::log(1e-40), 1e-4);  // subnormal input
  vecTanh(x.data(), y.data(), 8);
  EXPECT_EQ(y[2], 1.0f);
  EXPECT_EQ(y[3], -1.0f);
  vecSigmoid(x.data(), y.data(), 8);
  EXPECT_EQ(y[0], 0.5f);
  EXPECT_EQ(y[2], 1.0f);
  EXPECT_EQ(y[3], 0.0f);
  std::vector<float> row = {1.0f, NAN, 3.0f};
  EXPECT_TRUE(std::isnan(vecMax(row.data(), 3)));
  EXPECT_EQ(vecMax(row.data(), 1), 1.0f);
  EXPECT_EQ(vecMax(row.data(), 0), -inf);
}

KILN_TEST(elementwise_vecmath, every_tail_length_and_in_place) {
  for (int n = 0; n <= 19; n++) {
    std::vector<float> x(n), y(n);
    for (int i = 0; i < n; i++) x[i] = 0.1f * static_cast<float>(i) - 0.7f;
    std::vector<float> inPlace = x;
    vecExp(x.data(), y.data(), n);
    vecExp(inPlace.data(), inPlace.data(), n);
    for (int i = 0; i < n; i++) {
      EXPECT_NEAR(y[i], std::exp(x[i]), 1e-6);
      EXPECT_EQ(inPlace[i], y[i]);
    }
    float s = vecExpShiftSum(x.data(), y.data(), n, 1.0f);
    double want = 0;
    for (int i = 0; i < n; i++) want += std::exp(x[i] - 1.0);
    EXPECT_NEAR(s, want, 1e-5);
    std::vector<uint16_t> h(n);
    std::vector<float> back(n);
    floatToHalfArray(x.data(), h.data(), n);
    halfToFloatArray(h.data(), back.data(), n);
    for (int i = 0; i < n; i++) {
      EXPECT_EQ(h[i], floatToHalf(x[i]));
      EXPECT_EQ(back[i], halfToFloat(h[i]));
    }
  }
}
