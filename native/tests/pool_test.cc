// MaxPool / AveragePool / LpPool / global pools / MaxUnpool: ONNX's documented examples (exact
// values), then randomized shapes against a naive reference (pads, auto_pad, ceil_mode,
// dilations, count_include_pad, storage_order, 1-D/2-D/3-D, int8/uint8 MaxPool).
#include <cmath>
#include <functional>
#include <limits>

#include "compute_harness.h"
#include "ops/nn_geometry.h"

using namespace kiln;
using namespace compute_test;

namespace {

std::vector<float> iota(int n, float start = 1.f) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int i = 0; i < n; i++) v[size_t(i)] = start + float(i);
  return v;
}

}  // namespace

KILN_TEST(pool, onnx_examples) {
  Tensor x4 = floats({1, 1, 4, 4}, iota(16));
  Call ceilMax{"MaxPool", "", 12, {in(x4)}};
  ceilMax.attrs = {{"kernel_shape", attrInts({3, 3})}, {"strides", attrInts({2, 2})}, {"ceil_mode", attrInt(1)}};
  expectClose(run1(ceilMax), {1, 1, 2, 2}, {11, 12, 15, 16}, 0, 0, "maxpool_2d_ceil");
  Call ceilAvg = ceilMax;
  ceilAvg.op = "AveragePool";
  expectClose(run1(ceilAvg), {1, 1, 2, 2}, {6, 7.5f, 12, 13.5f}, 1e-6, 0, "averagepool_2d_ceil");
  Call dil{"MaxPool", "", 12, {in(x4)}};
  dil.attrs = {{"kernel_shape", attrInts({2, 2})}, {"dilations", attrInts({2, 2})}};
  expectClose(run1(dil), {1, 1, 2, 2}, {11, 12, 15, 16}, 0, 0, "maxpool_2d_dilations");

  Tensor x5 = floats({1, 1, 5, 5}, iota(25));
  Call argmax{"MaxPool", "", 12, {in(x5)}};
  argmax.attrs = {{"kernel_shape", attrInts({5, 5})}, {"pads", attrInts({2, 2, 2, 2})}};
  argmax.numOutputs = 2;
  Result r = run(argmax);
  expectClose(r.outputs[0], {1, 1, 5, 5},
              {13, 14, 15, 15, 15, 18, 19, 20, 20, 20, 23, 24, 25, 25, 25, 23, 24, 25, 25, 25, 23, 24, 25, 25, 25}, 0, 0,
              "maxpool_with_argmax_2d_precomputed_pads");
  const int64_t wantIdx[] = {12, 13, 14, 14, 14, 17, 18, 19, 19, 19, 22, 23, 24, 24, 24, 22, 23, 24, 24, 24, 22, 23, 24, 24, 24};
  for (int i = 0; i < 25; i++) EXPECT_EQ(r.outputs[1].ptr<int64_t>()[i], wantIdx[i]);

  Call order{"MaxPool", "", 12, {in(x5)}};
  order.attrs = {{"kernel_shape", attrInts({2, 2})}, {"strides", attrInts({2, 2})}, {"storage_order", attrInt(1)}};
  order.numOutputs = 2;
  Result ro = run(order);
  expectClose(ro.outputs[0], {1, 1, 2, 2}, {7, 9, 17, 19}, 0, 0, "maxpool_with_argmax_2d_precomputed_strides");
  const int64_t wantOrder[] = {6, 16, 8, 18};
  for (int i = 0; i < 4; i++) EXPECT_EQ(ro.outputs[1].ptr<int64_t>()[i], wantOrder[i]);

  Call padsAvg{"AveragePool", "", 11, {in(x5)}};
  padsAvg.attrs = {{"kernel_shape", attrInts({5, 5})}, {"pads", attrInts({2, 2, 2, 2})}, {"count_include_pad", attrInt(1)}};
  Tensor pa = run1(padsAvg);
  EXPECT_NEAR(pa.ptr<float>()[0], 2.52f, 1e-4);  // (1+2+3+6+7+8+11+12+13) / 25
  EXPECT_NEAR(pa.ptr<float>()[12], 13.0f, 1e-4);
  padsAvg.attrs["count_include_pad"] = attrInt(0);
  EXPECT_NEAR(run1(padsAvg).ptr<float>()[0], 7.0f, 1e-4);  // 63 / 9
}

namespace {

struct PoolCase {
  Shape x;
  std::map<std::string, Attribute> attrs;
};

// Naive pooling: every output scans its kernel window tap by tap.
void refPool(const std::string& op, const PoolCase& c, const Tensor& x, Shape& yShape, std::vector<float>& y,
             std::vector<int64_t>& indices) {
  Node node;
  node.name = "ref";
  node.opType = op;
  node.attrs = c.attrs;
  const size_t r = c.x.size() - 2;
  WindowParams p = readWindowParams(node, r, {});
  std::vector<WindowDim> dims;
  yShape = {c.x[0], c.x[1]};
  for (size_t d = 0; d < r; d++) {
    dims.push_back(forwardWindowDim(node, p, d, c.x[d + 2]));
    yShape.push_back(dims.back().out);
  }
  const bool includePad = node.getInt("count_include_pad", 0) != 0;
  const double pw = double(node.getInt("p", 2));
  const int64_t inPixels = shapeNumel(Shape(c.x.begin() + 2, c.x.end()));
  const int64_t outPixels = shapeNumel(Shape(yShape.begin() + 2, yShape.end()));
  const int64_t kernelSize = shapeNumel(Shape(p.kernel.begin(), p.kernel.end()));
  y.assign(size_t(c.x[0] * c.x[1] * outPixels), 0.f);
  indices.assign(y.size(), 0);
  for (int64_t plane = 0; plane < c.x[0] * c.x[1]; plane++) {
    for (int64_t o = 0; o < outPixels; o++) {
      std::vector<int64_t> opos(r);
      int64_t rem = o;
      for (size_t d = r; d-- > 0;) {
        opos[d] = rem % yShape[d + 2];
        rem /= yShape[d + 2];
      }
      double acc = 0, best = -std::numeric_limits<double>::infinity();
      int64_t count = 0, padCount = 0, at = 0;
      for (int64_t k = 0; k < kernelSize; k++) {
        int64_t krem = k, off = 0;
        bool inside = true, insidePad = true;
        std::vector<int64_t> kidx(r);
        for (size_t d = r; d-- > 0;) {
          kidx[d] = krem % p.kernel[d];
          krem /= p.kernel[d];
        }
        for (size_t d = 0; d < r; d++) {
          int64_t i = opos[d] * p.strides[d] - dims[d].padBegin + kidx[d] * p.dilations[d];
          inside &= i >= 0 && i < c.x[d + 2];
          insidePad &= i >= -dims[d].padBegin && i < c.x[d + 2] + dims[d].padEnd;
          off = off * c.x[d + 2] + i;
        }
        padCount += insidePad;
        if (!inside) continue;
        const double v = x.ptr<float>()[plane * inPixels + off];
        count++;
        if (op == "LpPool") acc += std::pow(std::fabs(v), pw);
        else acc += v;
        if (v > best) {
          best = v;
          at = off;
        }
      }
      double out;
      if (op == "MaxPool") out = best;
      else if (op == "LpPool") out = std::pow(acc, 1.0 / pw);
      else out = acc / double(includePad ? padCount : count);
      y[size_t(plane * outPixels + o)] = float(out);
      indices[size_t(plane * outPixels + o)] = plane * inPixels + at;
    }
  }
}

}  // namespace

KILN_TEST(pool, randomized_against_reference) {
  ThreadPool pool(2);
  const std::vector<PoolCase> cases = {
      {{1, 2, 9, 11}, {{"kernel_shape", attrInts({3, 3})}}},
      {{2, 3, 10, 9}, {{"kernel_shape", attrInts({3, 2})}, {"strides", attrInts({2, 2})}, {"pads", attrInts({1, 0, 1, 1})}}},
      {{1, 2, 11, 10}, {{"kernel_shape", attrInts({3, 3})}, {"strides", attrInts({2, 3})}, {"ceil_mode", attrInt(1)}}},
      {{1, 2, 12, 12}, {{"kernel_shape", attrInts({2, 3})}, {"dilations", attrInts({2, 2})}, {"pads", attrInts({1, 1, 2, 2})}}},
      {{1, 1, 7, 8}, {{"kernel_shape", attrInts({3, 3})}, {"strides", attrInts({2, 2})}, {"auto_pad", attrString("SAME_UPPER")}}},
      {{1, 1, 7, 8}, {{"kernel_shape", attrInts({2, 2})}, {"strides", attrInts({2, 2})}, {"auto_pad", attrString("SAME_LOWER")}}},
      {{1, 1, 8, 8}, {{"kernel_shape", attrInts({3, 3})}, {"auto_pad", attrString("VALID")}}},
      {{2, 3, 15}, {{"kernel_shape", attrInts({4})}, {"strides", attrInts({3})}, {"pads", attrInts({2, 1})}}},
      {{1, 2, 5, 6, 7}, {{"kernel_shape", attrInts({2, 3, 2})}, {"strides", attrInts({1, 2, 2})}, {"pads", attrInts({1, 0, 1, 0, 1, 1})}}},
      {{1, 1, 6, 6, 6}, {{"kernel_shape", attrInts({2, 2, 2})}, {"dilations", attrInts({2, 2, 2})}, {"ceil_mode", attrInt(1)}, {"strides", attrInts({2, 2, 2})}}},
  };
  uint32_t seed = 5;
  for (const PoolCase& base : cases) {
    Tensor x = randomFloats(base.x, seed++, -3.f, 3.f);
    for (const char* op : {"MaxPool", "AveragePool", "LpPool"}) {
      for (int includePad = 0; includePad < (std::string(op) == "AveragePool" ? 2 : 1); includePad++) {
        PoolCase c = base;
        if (includePad) c.attrs["count_include_pad"] = attrInt(1);
        Shape yShape;
        std::vector<float> want;
        std::vector<int64_t> wantIdx;
        refPool(op, c, x, yShape, want, wantIdx);
        Call call{op, "", 19, {in(x)}};
        call.attrs = c.attrs;
        call.pool = &pool;
        call.numOutputs = std::string(op) == "MaxPool" ? 2 : 1;
        Result r = run(call);
        expectClose(r.outputs[0], yShape, want, 1e-5, 1e-5, std::string(op) + " " + shapeToString(c.x));
        if (call.numOutputs == 2) {
          for (size_t i = 0; i < wantIdx.size(); i++) EXPECT_EQ(r.outputs[1].ptr<int64_t>()[i], wantIdx[i]);
        }
      }
    }
  }
}

KILN_TEST(pool, maxpool_uint8_and_int8) {
  Tensor x = Tensor::allocate(DType::UInt8, {1, 1, 3, 3});
  const uint8_t v[] = {1, 200, 3, 4, 5, 6, 7, 8, 255};
  for (int i = 0; i < 9; i++) x.ptr<uint8_t>()[i] = v[i];
  Call call{"MaxPool", "", 12, {in(x)}};
  call.attrs = {{"kernel_shape", attrInts({2, 2})}};
  Tensor y = run1(call);
  EXPECT_TRUE(y.dtype == DType::UInt8);
  const uint8_t want[] = {200, 200, 8, 255};
  for (int i = 0; i < 4; i++) EXPECT_EQ(int(y.ptr<uint8_t>()[i]), int(want[i]));
  Tensor s = Tensor::allocate(DType::Int8, {1, 1, 1, 3});
  const int8_t sv[] = {-100, -7, -50};
  for (int i = 0; i < 3; i++) s.ptr<int8_t>()[i] = sv[i];
  Call sc{"MaxPool", "", 12, {in(s)}};
  sc.attrs = {{"kernel_shape", attrInts({1, 2})}};
  Tensor sy = run1(sc);
  EXPECT_EQ(int(sy.ptr<int8_t>()[0]), -7);
  EXPECT_EQ(int(sy.ptr<int8_t>()[1]), -7);
}

KILN_TEST(pool, global_pools) {
  Tensor x = randomFloats({2, 3, 4, 5}, 9);
  std::vector<float> avg(6), mx(6), lp(6);
  for (int plane = 0; plane < 6; plane++) {
    double s = 0, m = -1e30, l = 0;
    for (int i = 0; i < 20; i++) {
      double v = x.ptr<float>()[plane * 20 + i];
      s += v;
      m = std::max(m, v);
      l += v * v;
    }
    avg[size_t(plane)] = float(s / 20);
    mx[size_t(plane)] = float(m);
    lp[size_t(plane)] = float(std::sqrt(l));
  }
  expectClose(run1(Call{"GlobalAveragePool", "", 1, {in(x)}}), {2, 3, 1, 1}, avg, 1e-6, 1e-5, "GlobalAveragePool");
  expectClose(run1(Call{"GlobalMaxPool", "", 1, {in(x)}}), {2, 3, 1, 1}, mx, 0, 0, "GlobalMaxPool");
  expectClose(run1(Call{"GlobalLpPool", "", 2, {in(x)}}), {2, 3, 1, 1}, lp, 1e-6, 1e-5, "GlobalLpPool");
}

KILN_TEST(pool, max_unpool_inverts_maxpool) {
  Tensor x = floats({1, 1, 2, 2}, {5, 6, 7, 8});
  Tensor idx = Tensor::allocate(DType::Int64, {1, 1, 2, 2});
  const int64_t iv[] = {5, 7, 13, 15};
  for (int i = 0; i < 4; i++) idx.ptr<int64_t>()[i] = iv[i];
  Call call{"MaxUnpool", "", 11, {in(x), in(idx)}};
  call.attrs = {{"kernel_shape", attrInts({2, 2})}, {"strides", attrInts({2, 2})}};
  std::vector<float> want(16, 0.f);
  want[5] = 5, want[7] = 6, want[13] = 7, want[15] = 8;
  expectClose(run1(call), {1, 1, 4, 4}, want, 0, 0, "MaxUnpool");
  // output_shape larger than the unpooled shape: the 4x4 result sits in the top-left corner.
  Call bigger = call;
  Tensor shape = Tensor::allocate(DType::Int64, {4});
  const int64_t sv[] = {1, 1, 5, 5};
  for (int i = 0; i < 4; i++) shape.ptr<int64_t>()[i] = sv[i];
  bigger.inputs.push_back(constant(shape));
  std::vector<float> want5(25, 0.f);
  want5[6] = 5, want5[8] = 6, want5[16] = 7, want5[18] = 8;
  expectClose(run1(bigger), {1, 1, 5, 5}, want5, 0, 0, "MaxUnpool with output_shape");
  idx.ptr<int64_t>()[0] = 99;
  EXPECT_THROWS_WITH(run1(call), "index 99 is outside the unpooled shape [1,1,4,4]");
}

KILN_TEST(pool, errors) {
  Call noKernel{"MaxPool", "", 12, {in(randomFloats({1, 1, 4, 4}, 1))}};
  EXPECT_THROWS_WITH(run1(noKernel), "kernel_shape is required");
  Call tooBig{"AveragePool", "", 12, {in(randomFloats({1, 1, 2, 2}, 1))}};
  tooBig.attrs = {{"kernel_shape", attrInts({3, 3})}};
  EXPECT_THROWS_WITH(run1(tooBig), "larger than the padded input");
  Call rank{"MaxPool", "", 12, {in(randomFloats({1, 1, 4, 4}, 1))}};
  rank.attrs = {{"kernel_shape", attrInts({2})}};
  EXPECT_THROWS_WITH(run1(rank), "kernel_shape");
}
