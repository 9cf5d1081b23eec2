// Normalization kernels against double-precision references: BatchNormalization (inference and
// training_mode), InstanceNormalization, LayerNormalization (every axis, broadcast Scale, Mean /
// InvStdDev outputs, float16) and kiln.LayerNormalization, GroupNormalization 18/21, LRN, MVN.
#include <cmath>

#include "compute_harness.h"

using namespace kiln;
using namespace compute_test;

namespace {

// Mean and population variance of n values at stride.
void moments(const float* x, int64_t n, int64_t stride, double& mean, double& var) {
  double s = 0, q = 0;
  for (int64_t i = 0; i < n; i++) s += x[i * stride];
  mean = s / double(n);
  for (int64_t i = 0; i < n; i++) q += (x[i * stride] - mean) * (x[i * stride] - mean);
  var = q / double(n);
}

}  // namespace

KILN_TEST(norm, batchnorm_inference_and_training) {
  ThreadPool pool(2);
  const int64_t N = 2, C = 3, S = 10;
  Tensor x = randomFloats({N, C, 2, 5}, 1, -2.f, 2.f), scale = randomFloats({C}, 2), bias = randomFloats({C}, 3);
  Tensor mean = randomFloats({C}, 4), var = randomFloats({C}, 5, 0.5f, 2.f);
  std::vector<float> want(static_cast<size_t>(N * C * S));
  for (int64_t n = 0; n < N; n++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t i = 0; i < S; i++) {
        const size_t at = size_t((n * C + c) * S + i);
        want[at] = float((x.ptr<float>()[at] - mean.ptr<float>()[c]) / std::sqrt(var.ptr<float>()[c] + 1e-3) *
                             scale.ptr<float>()[c] + bias.ptr<float>()[c]);
      }
  Call call{"BatchNormalization", "", 15, {in(x), constant(scale), constant(bias), constant(mean), constant(var)}};
  call.attrs = {{"epsilon", attrFloat(1e-3f)}};
  call.pool = &pool;
  expectClose(run1(call), x.shape, want, 1e-5, 1e-5, "BatchNormalization inference");

  // Training mode: batch statistics normalize; running stats blend with momentum 0.8.
  Call train = call;
  train.attrs["training_mode"] = attrInt(1);
  train.attrs["momentum"] = attrFloat(0.8f);
  train.numOutputs = 3;
  Result r = run(train);
  for (int64_t c = 0; c < C; c++) {
    double s = 0, q = 0;
    for (int64_t n = 0; n < N; n++)
      for (int64_t i = 0; i < S; i++) s += x.ptr<float>()[(n * C + c) * S + i];
    const double bm = s / double(N * S);
    for (int64_t n = 0; n < N; n++)
      for (int64_t i = 0; i < S; i++) {
        double d = x.ptr<float>()[(n * C + c) * S + i] - bm;
        q += d * d;
      }
    const double bv = q / double(N * S);
    for (int64_t n = 0; n < N; n++)
      for (int64_t i = 0; i < S; i++) {
        const size_t at = size_t((n * C + c) * S + i);
        const double y = (x.ptr<float>()[at] - bm) / std::sqrt(bv + 1e-3) * scale.ptr<float>()[c] + bias.ptr<float>()[c];
        EXPECT_NEAR(r.outputs[0].ptr<float>()[at], y, 1e-4);
      }
    EXPECT_NEAR(r.outputs[1].ptr<float>()[c], mean.ptr<float>()[c] * 0.8 + bm * 0.2, 1e-5);
    EXPECT_NEAR(r.outputs[2].ptr<float>()[c], var.ptr<float>()[c] * 0.8 + bv * 0.2, 1e-5);
  }

  Call bad = call;
  bad.inputs[1] = in(randomFloats({4}, 9));
  EXPECT_THROWS_WITH(run1(bad), "scale [4] must be 1-D with 3 values");
  Call old{"BatchNormalization", "", 9, {in(x), in(scale), in(bias), in(mean), in(var)}};
  old.numOutputs = 5;
  EXPECT_THROWS_WITH(run1(old), "training outputs (opset < 14) are not supported");
}

KILN_TEST(norm, layer_normalization_every_axis) {
  ThreadPool pool(2);
  const Shape shape = {2, 3, 4, 37};
  Tensor x = randomFloats(shape, 11, -3.f, 3.f);
  for (int64_t axis = -4; axis < 4; axis++) {
    const int64_t a = axis < 0 ? axis + 4 : axis;
    Shape norm(shape.begin() + a, shape.end());
    const int64_t n = shapeNumel(norm), rows = x.numel() / n;
    Tensor scale = randomFloats(norm, 12), bias = randomFloats(norm, 13);
    std::vector<float> want(size_t(x.numel())), wantMean(static_cast<size_t>(rows)), wantInv(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; r++) {
      double m, v;
      moments(x.ptr<float>() + r * n, n, 1, m, v);
      const double inv = 1.0 / std::sqrt(v + 1e-5);
      wantMean[size_t(r)] = float(m);
      wantInv[size_t(r)] = float(inv);
      for (int64_t i = 0; i < n; i++) {
        want[size_t(r * n + i)] =
            float((x.ptr<float>()[r * n + i] - m) * inv * scale.ptr<float>()[i] + bias.ptr<float>()[i]);
      }
    }
    Shape statShape = shape;
    for (int64_t d = a; d < 4; d++) statShape[size_t(d)] = 1;
    for (const char* domain : {"", "kiln"}) {
      Call call{"LayerNormalization", domain, std::string(domain).empty() ? 17 : 1, {in(x), constant(scale), in(bias)}};
      call.attrs = {{"axis", attrInt(axis)}};
      call.numOutputs = 3;
      call.fallbackShapes = {shape, statShape, statShape};
      call.pool = &pool;
      Result r = run(call);
      expectClose(r.outputs[0], shape, want, 2e-5, 1e-5, "LayerNorm axis " + std::to_string(axis));
      if (std::string(domain).empty()) {
        expectClose(r.outputs[1], statShape, wantMean, 1e-5, 1e-5, "LayerNorm mean");
        expectClose(r.outputs[2], statShape, wantInv, 1e-5, 1e-4, "LayerNorm inv std");
      }
    }
  }
}

KILN_TEST(norm, layer_normalization_broadcast_scale_and_float16) {
  Tensor x = randomFloats({3, 4, 6}, 21);
  Tensor scale = randomFloats({6}, 22);  // broadcast over the normalized [4, 6]
  std::vector<float> want(72);
  for (int r = 0; r < 3; r++) {
    double m, v;
    moments(x.ptr<float>() + r * 24, 24, 1, m, v);
    for (int i = 0; i < 24; i++) {
      want[size_t(r * 24 + i)] = float((x.ptr<float>()[r * 24 + i] - m) / std::sqrt(v + 1e-5) * scale.ptr<float>()[i % 6]);
    }
  }
  Call call{"LayerNormalization", "", 17, {in(x), in(scale)}};
  call.attrs = {{"axis", attrInt(1)}};
  expectClose(run1(call), {3, 4, 6}, want, 2e-5, 1e-5, "LayerNorm broadcast scale");

  Tensor xh = Tensor::allocate(DType::Float16, {3, 4, 6}), sh = Tensor::allocate(DType::Float16, {6});
  for (int i = 0; i < 72; i++) xh.ptr<uint16_t>()[i] = floatToHalf(x.ptr<float>()[i]);
  for (int i = 0; i < 6; i++) sh.ptr<uint16_t>()[i] = floatToHalf(scale.ptr<float>()[i]);
  Call half{"LayerNormalization", "", 17, {in(xh), in(sh)}};
  half.attrs = call.attrs;
  Tensor yh = run1(half);
  EXPECT_TRUE(yh.dtype == DType::Float16);
  for (int i = 0; i < 72; i++) EXPECT_NEAR(halfToFloat(yh.ptr<uint16_t>()[i]), want[size_t(i)], 5e-3 * (1 + std::fabs(want[size_t(i)])));

  Call bad{"LayerNormalization", "", 17, {in(x), in(randomFloats({5}, 1))}};
  EXPECT_THROWS_WITH(run1(bad), "does not broadcast");
}

KILN_TEST(norm, instance_and_group_normalization) {
  ThreadPool pool(2);
  const int64_t N = 2, C = 6, S = 15;
  Tensor x = randomFloats({N, C, 3, 5}, 31, -2.f, 2.f);
  Tensor scaleC = randomFloats({C}, 32), biasC = randomFloats({C}, 33);
  for (int64_t groups : {int64_t(1), int64_t(2), int64_t(3), int64_t(6)}) {
    const int64_t Cg = C / groups;
    for (int64_t opset : {int64_t(18), int64_t(21)}) {
      Tensor scale = opset == 21 ? scaleC : randomFloats({groups}, 34), bias = opset == 21 ? biasC : randomFloats({groups}, 35);
      std::vector<float> want(size_t(x.numel()));
      for (int64_t n = 0; n < N; n++)
        for (int64_t g = 0; g < groups; g++) {
          double m, v;
          moments(x.ptr<float>() + (n * C + g * Cg) * S, Cg * S, 1, m, v);
          for (int64_t c = g * Cg; c < (g + 1) * Cg; c++) {
            const int64_t pi = opset == 21 ? c : g;
            for (int64_t i = 0; i < S; i++) {
              const size_t at = size_t((n * C + c) * S + i);
              want[at] = float((x.ptr<float>()[at] - m) / std::sqrt(v + 1e-4) * scale.ptr<float>()[pi] + bias.ptr<float>()[pi]);
            }
          }
        }
      Call call{"GroupNormalization", "", opset, {in(x), in(scale), in(bias)}};
      call.attrs = {{"num_groups", attrInt(groups)}, {"epsilon", attrFloat(1e-4f)}};
      call.pool = &pool;
      expectClose(run1(call), x.shape, want, 2e-5, 1e-5, "GroupNormalization groups " + std::to_string(groups));
      if (groups == C && opset == 21) {
        Call inst{"InstanceNormalization", "", 6, {in(x), in(scale), in(bias)}};
        inst.attrs = {{"epsilon", attrFloat(1e-4f)}};
        expectClose(run1(inst), x.shape, want, 2e-5, 1e-5, "InstanceNormalization");
      }
    }
  }
  Call bad{"GroupNormalization", "", 21, {in(x), in(scaleC), in(biasC)}};
  bad.attrs = {{"num_groups", attrInt(4)}};
  EXPECT_THROWS_WITH(run1(bad), "not divisible by num_groups 4");
}

KILN_TEST(norm, lrn_and_mvn) {
  Tensor x = randomFloats({2, 5, 3, 2}, 41, -2.f, 2.f);
  const float alpha = 2e-3f, beta = 0.6f, bias = 1.5f;
  const int64_t size = 4;
  std::vector<float> want(size_t(x.numel()));
  for (int64_t n = 0; n < 2; n++)
    for (int64_t c = 0; c < 5; c++)
      for (int64_t i = 0; i < 6; i++) {
        double sq = 0;
        for (int64_t cc = std::max<int64_t>(0, c - 1); cc <= std::min<int64_t>(4, c + 2); cc++) {
          double v = x.ptr<float>()[(n * 5 + cc) * 6 + i];
          sq += v * v;
        }
        const size_t at = size_t((n * 5 + c) * 6 + i);
        want[at] = float(x.ptr<float>()[at] / std::pow(bias + alpha / size * sq, beta));
      }
  Call lrn{"LRN", "", 13, {in(x)}};
  lrn.attrs = {{"alpha", attrFloat(alpha)}, {"beta", attrFloat(beta)}, {"bias", attrFloat(bias)}, {"size", attrInt(size)}};
  expectClose(run1(lrn), x.shape, want, 1e-6, 1e-5, "LRN");

  // MVN over the default axes [0, 2, 3]: one group per channel.
  std::vector<float> mvn(size_t(x.numel()));
  for (int64_t c = 0; c < 5; c++) {
    double s = 0, q = 0;
    for (int64_t n = 0; n < 2; n++)
      for (int64_t i = 0; i < 6; i++) {
        double v = x.ptr<float>()[(n * 5 + c) * 6 + i];
        s += v;
        q += v * v;
      }
    const double m = s / 12, sd = std::sqrt(q / 12 - m * m);
    for (int64_t n = 0; n < 2; n++)
      for (int64_t i = 0; i < 6; i++) {
        const size_t at = size_t((n * 5 + c) * 6 + i);
        mvn[at] = float((x.ptr<float>()[at] - m) / (sd + 1e-9));
      }
  }
  expectClose(run1(Call{"MeanVarianceNormalization", "", 13, {in(x)}}), x.shape, mvn, 1e-5, 1e-5, "MVN");
}
