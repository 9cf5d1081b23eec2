// kiln.Attention against a naive softmax(Q K^T * scale + mask) V: several key blocks (online
// softmax), Sq != Sk, Dv != D, broadcast masks, causal with and without a KV prefix, fully masked
// rows, and shape errors.
#include <cmath>
#include <limits>

#include "compute_harness.h"

using namespace kiln;
using namespace compute_test;

namespace {

std::vector<float> refAttention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* mask, float scale,
                                bool causal) {
  const int64_t B = q.shape[0], H = q.shape[1], Sq = q.shape[2], D = q.shape[3], Sk = k.shape[2], Dv = v.shape[3];
  std::vector<float> y(static_cast<size_t>(B * H * Sq * Dv));
  std::vector<double> s(static_cast<size_t>(Sk));
  for (int64_t b = 0; b < B; b++)
    for (int64_t h = 0; h < H; h++)
      for (int64_t i = 0; i < Sq; i++) {
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < Sk; j++) {
          double acc = 0;
          for (int64_t d = 0; d < D; d++) acc += double(q.ptr<float>()[((b * H + h) * Sq + i) * D + d]) * k.ptr<float>()[((b * H + h) * Sk + j) * D + d];
          acc *= scale;
          if (mask) {
            // mask is [B or 1, H or 1, Sq or 1, Sk] in these tests.
            const Shape& ms = mask->shape;
            int64_t mb = ms[0] == 1 ? 0 : b, mh = ms[1] == 1 ? 0 : h, mi = ms[2] == 1 ? 0 : i;
            acc += mask->ptr<float>()[((mb * ms[1] + mh) * ms[2] + mi) * ms[3] + j];
          }
          if (causal && j > i + (Sk - Sq)) acc = -std::numeric_limits<double>::infinity();
          s[size_t(j)] = acc;
          mx = std::max(mx, acc);
        }
        double sum = 0;
        for (int64_t j = 0; j < Sk; j++) {
          s[size_t(j)] = std::isinf(mx) ? 0.0 : std::exp(s[size_t(j)] - mx);
          sum += s[size_t(j)];
        }
        for (int64_t e = 0; e < Dv; e++) {
          double acc = 0;
          for (int64_t j = 0; j < Sk; j++) acc += s[size_t(j)] * v.ptr<float>()[((b * H + h) * Sk + j) * Dv + e];
          y[size_t(((b * H + h) * Sq + i) * Dv + e)] = sum > 0 ? float(acc / sum) : 0.f;
        }
      }
  return y;
}

}  // namespace

KILN_TEST(attention, matches_reference) {
  ThreadPool pool(2);
  struct Case {
    int64_t B, H, Sq, Sk, D, Dv;
    bool causal;
    Shape mask;  // empty: none
  };
  const Case cases[] = {
      {1, 2, 8, 8, 16, 16, false, {}},
      {2, 3, 70, 70, 32, 32, false, {2, 1, 1, 70}},     // BERT-style padding mask, two query blocks
      {1, 2, 5, 600, 16, 24, false, {1, 1, 1, 600}},    // three key blocks: online softmax rescales
      {1, 1, 130, 130, 8, 8, true, {}},                 // causal self-attention
      {2, 2, 4, 300, 16, 8, true, {2, 2, 4, 300}},      // causal with a 296-token prefix, full mask
      {1, 1, 3, 9, 4, 5, false, {1, 1, 3, 9}},
  };
  uint32_t seed = 1;
  for (const Case& c : cases) {
    Tensor q = randomFloats({c.B, c.H, c.Sq, c.D}, seed++), k = randomFloats({c.B, c.H, c.Sk, c.D}, seed++);
    Tensor v = randomFloats({c.B, c.H, c.Sk, c.Dv}, seed++);
    std::optional<Tensor> mask;
    if (!c.mask.empty()) {
      mask = randomFloats(c.mask, seed++, -2.f, 0.f);
      // Knock some keys out completely, as a padding mask does.
      for (int64_t i = 0; i < mask->numel(); i += 7) mask->ptr<float>()[i] = -10000.f;
    }
    const float scale = 0.3f;
    std::vector<float> want = refAttention(q, k, v, mask ? &*mask : nullptr, scale, c.causal);
    Call call{"Attention", "kiln", 1, {in(q), in(k), in(v), mask ? in(*mask) : none()}};
    call.attrs = {{"scale", attrFloat(scale)}, {"causal", attrInt(c.causal)}};
    call.fallbackShapes = {{c.B, c.H, c.Sq, c.Dv}};
    call.pool = &pool;
    expectClose(run1(call), {c.B, c.H, c.Sq, c.Dv}, want, 2e-5, 1e-4,
                "Attention Sq=" + std::to_string(c.Sq) + " Sk=" + std::to_string(c.Sk));
  }
}

KILN_TEST(attention, fully_masked_rows_are_zero) {
  Tensor q = randomFloats({1, 1, 3, 16}, 1), k = randomFloats({1, 1, 4, 16}, 2), v = randomFloats({1, 1, 4, 16}, 3);
  Tensor mask = floats({1, 1, 3, 4}, std::vector<float>(12, 0.f));
  for (int j = 0; j < 4; j++) mask.ptr<float>()[4 + j] = -std::numeric_limits<float>::infinity();  // row 1: no keys
  std::vector<float> want = refAttention(q, k, v, &mask, 0.25f, false);
  Call call{"Attention", "kiln", 1, {in(q), in(k), in(v), in(mask)}};
  call.attrs = {{"scale", attrFloat(0.25f)}};
  call.fallbackShapes = {{1, 1, 3, 16}};
  Tensor y = run1(call);
  expectClose(y, {1, 1, 3, 16}, want, 2e-5, 1e-4, "Attention masked row");
  for (int e = 0; e < 16; e++) EXPECT_EQ(y.ptr<float>()[16 + e], 0.f);
}

KILN_TEST(attention, shape_errors) {
  Call bad{"Attention", "kiln", 1, {in(randomFloats({1, 2, 3, 4}, 1)), in(randomFloats({1, 2, 5, 8}, 2)), in(randomFloats({1, 2, 5, 4}, 3))}};
  bad.attrs = {{"scale", attrFloat(0.5f)}};
  bad.fallbackShapes = {{1, 2, 3, 4}};
  EXPECT_THROWS_WITH(run1(bad), "Q [1,2,3,4]");  // the schema or the kernel rejects it
  Call badMask{"Attention", "kiln", 1, {in(randomFloats({1, 2, 3, 4}, 1)), in(randomFloats({1, 2, 5, 4}, 2)),
                                        in(randomFloats({1, 2, 5, 4}, 3)), in(randomFloats({1, 1, 3, 4}, 4))}};
  badMask.attrs = {{"scale", attrFloat(0.5f)}};
  badMask.fallbackShapes = {{1, 2, 3, 4}};
  EXPECT_THROWS_WITH(run1(badMask), "mask [1,1,3,4] does not broadcast to [1,2,3,5]");
}
