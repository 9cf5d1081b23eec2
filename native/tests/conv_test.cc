// Conv / FusedConv / ConvTranspose against naive reference loops: 1-D/2-D/3-D, strides, pads
// (explicit and auto_pad), dilations, groups, depthwise, pointwise, batch > 1, constant and
// run-time weights, fused bias + residual + activation, and the error messages.
#include <cmath>
#include <algorithm>
#include <functional>
#include <random>

#include "backends/cpu/gemm/sgemm.h"
#include "backends/cpu/ops/conv_depthwise.h"
#include "backends/cpu/ops/conv_im2col.h"
#include "compute_harness.h"
#include "ops/nn_geometry.h"

using namespace kiln;
using namespace compute_test;

namespace {

struct ConvCase {
  Shape x, w;  // [N, C, spatial...], [M, C/group, k...]
  int64_t group = 1;
  std::vector<int64_t> strides, pads, dilations;  // empty: defaults
  std::string autoPad;
  bool bias = true;
};

// Iterates every multi-index of `shape` (row-major).
void forEachIndex(const Shape& shape, const std::function<void(const std::vector<int64_t>&)>& fn) {
  std::vector<int64_t> idx(shape.size(), 0);
  if (shapeNumel(shape) == 0) return;
  for (;;) {
    fn(idx);
    size_t d = shape.size();
    while (d > 0) {
      if (++idx[d - 1] < shape[d - 1]) break;
      idx[--d] = 0;
    }
    if (d == 0) return;
  }
}

int64_t flat(const Shape& shape, const std::vector<int64_t>& idx) {
  int64_t o = 0;
  for (size_t d = 0; d < shape.size(); d++) o = o * shape[d] + idx[d];
  return o;
}

// Reference forward conv with the geometry computed independently from the kernel's planner
// (only the shared window rules of ops/nn_geometry are reused, and they are tested separately).
std::vector<float> refConv(const ConvCase& c, const Tensor& x, const Tensor& w, const Tensor* b, Shape& yShape,
                           const Node& node) {
  const size_t r = c.x.size() - 2;
  std::vector<int64_t> kernel(c.w.begin() + 2, c.w.end());
  WindowParams p = readWindowParams(node, r, kernel);
  std::vector<int64_t> out(r), padBegin(r);
  for (size_t d = 0; d < r; d++) {
    WindowDim wd = forwardWindowDim(node, p, d, c.x[d + 2]);
    out[d] = wd.out;
    padBegin[d] = wd.padBegin;
  }
  const int64_t N = c.x[0], C = c.x[1], M = c.w[0], Cg = C / c.group, Mg = M / c.group;
  yShape = {N, M};
  for (int64_t o : out) yShape.push_back(o);
  std::vector<float> y(size_t(shapeNumel(yShape)));
  forEachIndex(yShape, [&](const std::vector<int64_t>& yi) {
    const int64_t n = yi[0], m = yi[1], g = m / Mg;
    double acc = b ? b->ptr<float>()[m] : 0.0;
    for (int64_t ci = 0; ci < Cg; ci++) {
      forEachIndex(Shape(kernel.begin(), kernel.end()), [&](const std::vector<int64_t>& ki) {
        std::vector<int64_t> xi = {n, g * Cg + ci};
        for (size_t d = 0; d < r; d++) {
          int64_t i = yi[d + 2] * p.strides[d] - padBegin[d] + ki[d] * p.dilations[d];
          if (i < 0 || i >= c.x[d + 2]) return;
          xi.push_back(i);
        }
        std::vector<int64_t> wi = {m, ci};
        wi.insert(wi.end(), ki.begin(), ki.end());
        acc += double(x.ptr<float>()[flat(c.x, xi)]) * w.ptr<float>()[flat(c.w, wi)];
      });
    }
    y[size_t(flat(yShape, yi))] = float(acc);
  });
  return y;
}

std::map<std::string, Attribute> convAttrs(const ConvCase& c) {
  std::map<std::string, Attribute> a;
  a["group"] = attrInt(c.group);
  if (!c.strides.empty()) a["strides"] = attrInts(c.strides);
  if (!c.pads.empty()) a["pads"] = attrInts(c.pads);
  if (!c.dilations.empty()) a["dilations"] = attrInts(c.dilations);
  if (!c.autoPad.empty()) a["auto_pad"] = attrString(c.autoPad);
  return a;
}

void checkConv(const ConvCase& c, uint32_t seed, ThreadPool* pool) {
  Tensor x = randomFloats(c.x, seed), w = randomFloats(c.w, seed + 1), b = randomFloats({c.w[0]}, seed + 2);
  Node node;
  node.name = "ref";
  node.opType = "Conv";
  node.attrs = convAttrs(c);
  Shape yShape;
  std::vector<float> want = refConv(c, x, w, c.bias ? &b : nullptr, yShape, node);
  for (bool constW : {false, true}) {
    Call call{"Conv", "", 11, {in(x), constW ? constant(w) : in(w), c.bias ? (constW ? constant(b) : in(b)) : none()}};
    call.attrs = convAttrs(c);
    call.pool = pool;
    Result r = run(call);
    expectClose(r.outputs[0], yShape, want, 1e-4, 1e-4,
                "Conv x" + shapeToString(c.x) + " w" + shapeToString(c.w) + " group " + std::to_string(c.group) +
                    (constW ? " (const W)" : ""));
  }
}

}  // namespace

KILN_TEST(conv, two_d_shapes_strides_pads_dilations) {
  ThreadPool pool(2);
  const ConvCase cases[] = {
      {{1, 3, 7, 9}, {4, 3, 3, 3}},
      {{2, 3, 10, 11}, {5, 3, 3, 2}, 1, {2, 1}, {1, 0, 2, 1}},
      {{1, 4, 9, 9}, {6, 4, 3, 3}, 1, {1, 1}, {2, 2, 2, 2}, {2, 2}},
      {{1, 8, 13, 12}, {16, 4, 3, 3}, 2, {2, 2}, {1, 1, 1, 1}},
      {{1, 6, 8, 8}, {6, 2, 1, 1}, 3},                          // grouped pointwise
      {{2, 16, 12, 12}, {24, 16, 1, 1}},                         // pointwise, batch 2
      {{1, 16, 12, 12}, {24, 16, 1, 1}, 1, {2, 2}},              // 1x1 stride 2: im2col subsample
      {{1, 3, 30, 28}, {8, 3, 7, 7}, 1, {2, 2}, {3, 3, 3, 3}},   // ResNet stem-like
      {{1, 64, 14, 14}, {32, 64, 3, 3}, 1, {1, 1}, {1, 1, 1, 1}},  // many channels: KC slices
      {{1, 2, 5, 5}, {3, 2, 3, 3}, 1, {}, {}, {}, "SAME_UPPER"},
      {{1, 2, 6, 5}, {3, 2, 4, 2}, 1, {2, 2}, {}, {}, "SAME_LOWER", false},
      {{1, 2, 6, 7}, {3, 2, 3, 3}, 1, {}, {}, {}, "VALID"},
  };
  uint32_t seed = 100;
  for (const ConvCase& c : cases) checkConv(c, seed += 3, &pool);
}

KILN_TEST(conv, depthwise_strides_pads_dilations) {
  ThreadPool pool(2);
  const ConvCase cases[] = {
      {{1, 8, 17, 19}, {8, 1, 3, 3}, 8, {1, 1}, {1, 1, 1, 1}},
      {{2, 5, 16, 45}, {5, 1, 3, 3}, 5, {2, 2}, {1, 1, 1, 1}},
      {{1, 4, 9, 40}, {4, 1, 5, 5}, 4, {1, 2}, {2, 2, 2, 2}},
      {{1, 3, 11, 12}, {3, 1, 3, 3}, 3, {1, 1}, {2, 2, 2, 2}, {2, 2}},
      {{1, 3, 11, 12}, {3, 1, 3, 3}, 3, {3, 3}, {0, 1, 1, 0}},   // stride 3: portable loop
      {{1, 6, 70, 3}, {6, 1, 3, 3}, 6, {1, 1}, {1, 1, 1, 1}},     // narrow rows: tail-only path
      {{1, 4, 33}, {4, 1, 5}, 4, {2}, {2, 2}},                   // 1-D depthwise
      {{1, 4, 8, 8}, {8, 1, 3, 3}, 4, {1, 1}, {1, 1, 1, 1}},     // channel multiplier 2: grouped GEMM
  };
  uint32_t seed = 300;
  for (const ConvCase& c : cases) checkConv(c, seed += 3, &pool);
}

KILN_TEST(conv, one_and_three_d) {
  ThreadPool pool(2);
  const ConvCase cases[] = {
      {{2, 3, 20}, {4, 3, 3}, 1, {2}, {1, 2}},
      {{1, 4, 17}, {6, 2, 4}, 2, {1}, {0, 0}, {2}},
      {{1, 2, 5, 6, 7}, {3, 2, 3, 3, 3}, 1, {1, 2, 1}, {1, 1, 1, 1, 0, 1}},
      {{1, 4, 4, 5, 6}, {4, 2, 2, 3, 1}, 2, {2, 1, 1}, {}, {1, 2, 1}},
  };
  uint32_t seed = 500;
  for (const ConvCase& c : cases) checkConv(c, seed += 3, &pool);
}

KILN_TEST(conv, single_thread_and_many_threads_agree) {
  // Chunked (many tasks) and whole-image (few tasks) im2col plans must give the same result.
  ConvCase c{{1, 32, 40, 40}, {16, 32, 3, 3}, 1, {1, 1}, {1, 1, 1, 1}};
  ThreadPool one(1), four(4);
  checkConv(c, 900, &one);
  checkConv(c, 900, &four);
  ConvCase big{{1, 256, 7, 7}, {32, 256, 3, 3}, 1, {1, 1}, {1, 1, 1, 1}};
  checkConv(big, 901, &four);
}

KILN_TEST(conv, fused_conv_bias_residual_activation) {
  ThreadPool pool(2);
  struct FusedCase {
    ConvCase conv;
    const char* act;
  };
  const FusedCase cases[] = {
      {{{1, 8, 9, 9}, {16, 8, 3, 3}, 1, {1, 1}, {1, 1, 1, 1}}, "Relu"},
      {{{2, 8, 6, 6}, {8, 8, 1, 1}}, "Sigmoid"},
      {{{1, 6, 10, 10}, {6, 1, 3, 3}, 6, {1, 1}, {1, 1, 1, 1}}, "HardSwish"},
      {{{1, 4, 7, 7}, {8, 4, 3, 3}, 1, {2, 2}, {1, 1, 1, 1}}, "Clip"},
  };
  uint32_t seed = 700;
  for (const FusedCase& fc : cases) {
    const ConvCase& c = fc.conv;
    Tensor x = randomFloats(c.x, seed++), w = randomFloats(c.w, seed++), b = randomFloats({c.w[0]}, seed++);
    Node node;
    node.name = "ref";
    node.opType = "Conv";
    node.attrs = convAttrs(c);
    Shape yShape;
    std::vector<float> want = refConv(c, x, w, &b, yShape, node);
    Tensor z = randomFloats(yShape, seed++);
    cpu::ActivationSpec act{parseActivation(fc.act), 0.f, 6.f};
    for (size_t i = 0; i < want.size(); i++) {
      want[i] += z.ptr<float>()[i];
      cpu::applyActivation(&want[i], 1, act);
    }
    for (bool constW : {false, true}) {
      Call call{"FusedConv", "kiln", 1, {in(x), constW ? constant(w) : in(w), in(b), in(z)}};
      call.attrs = convAttrs(c);
      call.attrs["activation"] = attrString(fc.act);
      if (std::string(fc.act) == "Clip") call.attrs["activation_params"] = attrFloats({0.f, 6.f});
      call.fallbackShapes = {yShape};
      call.pool = &pool;
      expectClose(run1(call), yShape, want, 1e-4, 1e-4, std::string("FusedConv ") + fc.act);
    }
  }
}

KILN_TEST(conv, errors_name_node_op_and_shapes) {
  Call call{"Conv", "", 11, {in(randomFloats({1, 3, 8, 8}, 1)), in(randomFloats({4, 2, 3, 3}, 2))}};
  call.nodeName = "stem";
  EXPECT_THROWS_WITH(run1(call), "node 'stem' (Conv): input X [1,3,8,8] has 3 channels but W [4,2,3,3]");
  Call big{"Conv", "", 11, {in(randomFloats({1, 1, 2, 2}, 1)), in(randomFloats({1, 1, 3, 3}, 2))}};
  EXPECT_THROWS_WITH(run1(big), "larger than the padded input");
  Call badBias{"Conv", "", 11, {in(randomFloats({1, 2, 4, 4}, 1)), in(randomFloats({3, 2, 1, 1}, 2)), in(randomFloats({2}, 3))}};
  EXPECT_THROWS_WITH(run1(badBias), "bias B [2] must be 1-D with 3 values");
  Call badStride{"Conv", "", 11, {in(randomFloats({1, 2, 4, 4}, 1)), in(randomFloats({3, 2, 1, 1}, 2))}};
  badStride.attrs["strides"] = attrInts({0, 1});
  EXPECT_THROWS_WITH(run1(badStride), "strides [0,1] has an invalid value");
}

// ---- ConvTranspose ---------------------------------------------------------------------------------

namespace {

// Scatter reference: every input element times every tap lands at i*stride - pad + k*dilation.
std::vector<float> refConvTranspose(const Tensor& x, const Tensor& w, const Tensor* b, int64_t group, const Node& node,
                                    Shape& yShape) {
  const size_t r = x.shape.size() - 2;
  std::vector<int64_t> kernel(w.shape.begin() + 2, w.shape.end());
  WindowParams p = readWindowParams(node, r, kernel, true);
  std::vector<int64_t> padBegin(r);
  const int64_t N = x.shape[0], C = x.shape[1], Mg = w.shape[1], Cg = C / group;
  yShape = {N, Mg * group};
  for (size_t d = 0; d < r; d++) {
    WindowDim wd = transposedWindowDim(node, p, d, x.shape[d + 2]);
    yShape.push_back(wd.out);
    padBegin[d] = wd.padBegin;
  }
  std::vector<double> y(size_t(shapeNumel(yShape)), 0.0);
  if (b) {
    forEachIndex(yShape, [&](const std::vector<int64_t>& yi) { y[size_t(flat(yShape, yi))] = b->ptr<float>()[yi[1]]; });
  }
  forEachIndex(x.shape, [&](const std::vector<int64_t>& xi) {
    const int64_t n = xi[0], c = xi[1], g = c / Cg;
    const float xv = x.ptr<float>()[flat(x.shape, xi)];
    for (int64_t m = 0; m < Mg; m++) {
      forEachIndex(Shape(kernel.begin(), kernel.end()), [&](const std::vector<int64_t>& ki) {
        std::vector<int64_t> yi = {n, g * Mg + m};
        for (size_t d = 0; d < r; d++) {
          int64_t o = xi[d + 2] * p.strides[d] - padBegin[d] + ki[d] * p.dilations[d];
          if (o < 0 || o >= yShape[d + 2]) return;
          yi.push_back(o);
        }
        std::vector<int64_t> wi = {c, m};
        wi.insert(wi.end(), ki.begin(), ki.end());
        y[size_t(flat(yShape, yi))] += double(xv) * w.ptr<float>()[flat(w.shape, wi)];
      });
    }
  });
  return std::vector<float>(y.begin(), y.end());
}

}  // namespace

KILN_TEST(conv, conv_transpose_matches_onnx_example) {
  // ONNX's test_convtranspose_pads: strides [3,2], pads [1,2,1,2], all-ones weights.
  std::vector<float> xv(9);
  for (int i = 0; i < 9; i++) xv[size_t(i)] = float(i);
  Tensor x = floats({1, 1, 3, 3}, xv), w = floats({1, 2, 3, 3}, std::vector<float>(18, 1.f));
  Call call{"ConvTranspose", "", 11, {in(x), constant(w)}};
  call.attrs = {{"strides", attrInts({3, 2})}, {"pads", attrInts({1, 2, 1, 2})}};
  const std::vector<float> plane = {1, 1, 3, 1, 1, 3, 7, 4, 9, 7, 4, 9, 7, 4, 9, 13, 7, 15, 13, 7, 15};
  std::vector<float> want = plane;
  want.insert(want.end(), plane.begin(), plane.end());
  expectClose(run1(call), {1, 2, 7, 3}, want, 1e-5, 0, "ConvTranspose pads example");
}

KILN_TEST(conv, conv_transpose_attributes) {
  ThreadPool pool(2);
  struct Case {
    Shape x, w;
    int64_t group;
    std::map<std::string, Attribute> attrs;
  };
  const std::vector<Case> cases = {
      {{1, 2, 4, 5}, {2, 3, 3, 3}, 1, {}},
      {{2, 4, 3, 4}, {4, 2, 3, 2}, 2, {{"strides", attrInts({2, 3})}, {"pads", attrInts({1, 0, 0, 1})}}},
      {{1, 3, 5, 5}, {3, 2, 3, 3}, 1, {{"strides", attrInts({2, 2})}, {"output_padding", attrInts({1, 1})}}},
      {{1, 2, 4, 4}, {2, 2, 2, 2}, 1, {{"dilations", attrInts({2, 2})}, {"strides", attrInts({2, 1})}}},
      {{1, 1, 3, 3}, {1, 2, 3, 3}, 1, {{"strides", attrInts({2, 2})}, {"auto_pad", attrString("SAME_UPPER")}}},
      {{1, 1, 3, 4}, {1, 2, 3, 3}, 1, {{"strides", attrInts({2, 2})}, {"auto_pad", attrString("SAME_LOWER")}}},
      {{1, 1, 3, 3}, {1, 2, 1, 1}, 1, {{"strides", attrInts({3, 3})}, {"auto_pad", attrString("SAME_UPPER")}}},
      {{1, 1, 3, 3}, {1, 2, 3, 3}, 1, {{"strides", attrInts({3, 2})}, {"output_shape", attrInts({10, 8})}}},
      {{1, 2, 7}, {2, 3, 3}, 1, {{"strides", attrInts({2})}, {"pads", attrInts({1, 1})}}},
      {{1, 2, 3, 2, 3}, {2, 2, 2, 3, 2}, 1, {{"strides", attrInts({1, 2, 2})}, {"pads", attrInts({0, 1, 0, 1, 0, 1})}}},
      {{1, 6, 3, 3}, {6, 1, 3, 3}, 6, {{"strides", attrInts({2, 2})}}},
  };
  uint32_t seed = 40;
  for (const Case& c : cases) {
    Tensor x = randomFloats(c.x, seed++), w = randomFloats(c.w, seed++), b = randomFloats({c.w[1] * c.group}, seed++);
    Node node;
    node.name = "ref";
    node.opType = "ConvTranspose";
    node.attrs = c.attrs;
    node.attrs["group"] = attrInt(c.group);
    Shape yShape;
    std::vector<float> want = refConvTranspose(x, w, &b, c.group, node, yShape);
    for (bool constW : {false, true}) {
      Call call{"ConvTranspose", "", 11, {in(x), constW ? constant(w) : in(w), in(b)}};
      call.attrs = node.attrs;
      call.pool = &pool;
      expectClose(run1(call), yShape, want, 1e-4, 1e-4, "ConvTranspose x" + shapeToString(c.x) + " w" + shapeToString(c.w));
    }
  }
}

KILN_TEST(conv, conv_transpose_output_sizes) {
  // Sizes straight from the ONNX spec formulas.
  auto outShape = [](const Shape& x, const Shape& w, std::map<std::string, Attribute> attrs) {
    Call call{"ConvTranspose", "", 11, {in(randomFloats(x, 1)), in(randomFloats(w, 2))}};
    call.attrs = std::move(attrs);
    return run1(call).shape;
  };
  EXPECT_EQ(shapeToString(outShape({1, 1, 3, 3}, {1, 2, 3, 3}, {{"strides", attrInts({3, 2})}, {"output_padding", attrInts({1, 1})}})),
            "[1,2,10,8]");
  EXPECT_EQ(shapeToString(outShape({1, 1, 3, 3}, {1, 2, 3, 3}, {{"strides", attrInts({2, 2})}, {"auto_pad", attrString("SAME_UPPER")}})),
            "[1,2,6,6]");
  EXPECT_EQ(shapeToString(outShape({1, 1, 3, 3}, {1, 2, 3, 3}, {{"output_shape", attrInts({1, 2, 5, 6})}})), "[1,2,5,6]");
  Call bad{"ConvTranspose", "", 11, {in(randomFloats({1, 3, 3, 3}, 1)), in(randomFloats({2, 2, 3, 3}, 2))}};
  EXPECT_THROWS_WITH(run1(bad), "has 3 channels but W [2,2,3,3]");
}

KILN_TEST(conv, conv_integer_onnx_example) {
  Tensor x = Tensor::allocate(DType::UInt8, {1, 1, 3, 3}), w = Tensor::allocate(DType::UInt8, {1, 1, 2, 2});
  for (int i = 0; i < 9; i++) x.ptr<uint8_t>()[i] = uint8_t(2 + i);
  for (int i = 0; i < 4; i++) w.ptr<uint8_t>()[i] = 1;
  Tensor xz = Tensor::allocate(DType::UInt8, {});
  xz.ptr<uint8_t>()[0] = 1;
  Call call{"ConvInteger", "", 10, {in(x), in(w), in(xz)}};
  call.attrs = {{"pads", attrInts({1, 1, 1, 1})}};
  Tensor y = run1(call);
  EXPECT_TRUE(y.dtype == DType::Int32);
  const int32_t want[] = {1, 3, 5, 3, 5, 12, 16, 9, 11, 24, 28, 15, 7, 15, 17, 9};
  for (int i = 0; i < 16; i++) EXPECT_EQ(y.ptr<int32_t>()[i], want[i]);
}

KILN_TEST(conv, qlinear_conv_matches_float_conv) {
  // Quantize a float conv's inputs, run QLinearConv, compare with the float result requantized.
  const int64_t C = 3, M = 4;
  Tensor x = Tensor::allocate(DType::UInt8, {1, C, 5, 5}), w = Tensor::allocate(DType::Int8, {M, C, 3, 3});
  std::mt19937 rng(3);
  for (int64_t i = 0; i < x.numel(); i++) x.ptr<uint8_t>()[i] = uint8_t(rng() % 256);
  for (int64_t i = 0; i < w.numel(); i++) w.ptr<int8_t>()[i] = int8_t(int(rng() % 255) - 127);
  auto f32 = [](float v) {
    Tensor t = Tensor::allocate(DType::Float32, {});
    t.ptr<float>()[0] = v;
    return t;
  };
  Tensor xz = Tensor::allocate(DType::UInt8, {}), yz = Tensor::allocate(DType::UInt8, {}), wz = Tensor::allocate(DType::Int8, {M});
  xz.ptr<uint8_t>()[0] = 128;
  yz.ptr<uint8_t>()[0] = 100;
  Tensor ws = Tensor::allocate(DType::Float32, {M}), bias = Tensor::allocate(DType::Int32, {M});
  for (int64_t m = 0; m < M; m++) {
    ws.ptr<float>()[m] = 0.01f * float(m + 1);
    wz.ptr<int8_t>()[m] = int8_t(m - 2);
    bias.ptr<int32_t>()[m] = int32_t(100 * m - 150);
  }
  const float xScale = 0.02f, yScale = 0.5f;
  Call call{"QLinearConv", "", 10,
            {in(x), in(f32(xScale)), in(xz), in(w), in(ws), in(wz), in(f32(yScale)), in(yz), in(bias)}};
  call.attrs = {{"pads", attrInts({1, 1, 1, 1})}};
  Tensor y = run1(call);
  EXPECT_TRUE(y.dtype == DType::UInt8);
  for (int64_t m = 0; m < M; m++)
    for (int64_t oy = 0; oy < 5; oy++)
      for (int64_t ox = 0; ox < 5; ox++) {
        int64_t acc = bias.ptr<int32_t>()[m];
        for (int64_t c = 0; c < C; c++)
          for (int64_t ky = 0; ky < 3; ky++)
            for (int64_t kx = 0; kx < 3; kx++) {
              int64_t iy = oy - 1 + ky, ix = ox - 1 + kx;
              if (iy < 0 || iy >= 5 || ix < 0 || ix >= 5) continue;
              acc += int64_t(x.ptr<uint8_t>()[(c * 5 + iy) * 5 + ix] - 128) *
                     (w.ptr<int8_t>()[((m * C + c) * 3 + ky) * 3 + kx] - wz.ptr<int8_t>()[m]);
            }
        const float real = float(acc) * (xScale * ws.ptr<float>()[m] / yScale);
        const int q = std::clamp(int(std::nearbyint(real)) + 100, 0, 255);
        EXPECT_EQ(int(y.ptr<uint8_t>()[(m * 5 + oy) * 5 + ox]), q);
      }
}

KILN_TEST(conv, depthwise_portable_path_matches_avx2) {
  // The portable depthwise loop (non-AVX2 CPUs) against the AVX2 block kernel, odd sizes and taps.
  cpu::ConvGeometry g;
  g.rank = 2;
  g.in = {13, 11};
  g.kernel = {3, 5};
  g.strides = {2, 1};
  g.dilations = {1, 2};
  g.padBegin = {1, 3};
  g.out = {(13 + 2 - 3) / 2 + 1, (11 + 6 - 9) / 1 + 1};
  g.inPixels = 143;
  g.outPixels = g.out[0] * g.out[1];
  g.kernelSize = 15;
  Tensor x = randomFloats({5, 13, 11}, 1), w = randomFloats({5, 3, 5}, 2), b = randomFloats({5}, 3);
  Tensor z = randomFloats({5, g.outPixels}, 4);
  std::vector<float> scratch(size_t(cpu::depthwiseScratchFloats(g)));
  std::vector<float> y1(size_t(5 * g.outPixels)), y2(y1.size());
  cpu::DepthwiseBlock blk;
  blk.x = x.ptr<float>();
  blk.w = w.ptr<float>();
  blk.bias = b.ptr<float>();
  blk.residual = z.ptr<float>();
  blk.channels = 5;
  cpu::ActivationSpec act{Activation::Silu, 0, 0};
  blk.y = y1.data();
  cpu::depthwiseConvBlock(g, blk, act, scratch.data(), false);
  blk.y = y2.data();
  cpu::depthwiseConvBlock(g, blk, act, scratch.data(), true);
  for (size_t i = 0; i < y1.size(); i++) EXPECT_NEAR(y1[i], y2[i], 1e-5);
}

KILN_TEST(conv, depthwise_3x3_direct_kernel_shapes) {
  // The direct 3x3 kernel (AVX-512 CPUs): stride 1 and 2, row tiles of 4 with 1..3 row tails,
  // 16-column vectors with tails, planes narrower than a vector, asymmetric and wide pads, channel
  // counts that are not a multiple of the 8-channel block; the reference is the naive loop.
  ThreadPool pool(2);
  const ConvCase cases[] = {
      {{1, 9, 112, 112}, {9, 1, 3, 3}, 9, {1, 1}, {1, 1, 1, 1}},
      {{1, 10, 113, 57}, {10, 1, 3, 3}, 10, {2, 2}, {1, 1, 1, 1}},
      {{1, 3, 14, 14}, {3, 1, 3, 3}, 3, {2, 2}, {0, 0, 1, 1}},   // TF-style SAME stride 2
      {{1, 3, 7, 7}, {3, 1, 3, 3}, 3, {1, 1}, {1, 1, 1, 1}},
      {{2, 5, 1, 1}, {5, 1, 3, 3}, 5, {1, 1}, {1, 1, 1, 1}},
      {{1, 4, 2, 3}, {4, 1, 3, 3}, 4, {2, 2}, {1, 1, 1, 1}},
      {{1, 4, 6, 33}, {4, 1, 3, 3}, 4, {1, 1}, {2, 0, 0, 2}},
      {{1, 4, 5, 31}, {4, 1, 3, 3}, 4, {2, 2}, {2, 2, 2, 2}},
      {{1, 4, 9, 17}, {4, 1, 3, 3}, 4, {1, 1}},                  // no padding
      {{1, 4, 10, 18}, {4, 1, 3, 3}, 4, {2, 2}},                 // no padding, stride 2
      {{1, 4, 9, 17}, {4, 1, 3, 3}, 4, {1, 2}, {1, 1, 1, 1}},    // mixed strides: other path
      {{1, 4, 9, 17}, {4, 1, 3, 3}, 4, {1, 1}, {2, 2, 2, 2}, {2, 2}},  // dilated: other path
  };
  uint32_t seed = 700;
  for (const ConvCase& c : cases) checkConv(c, seed += 3, &pool);
}

KILN_TEST(conv, depthwise_3x3_direct_matches_other_paths_with_epilogue) {
  // Block level: the direct 3x3 kernel (when the CPU has it), the AVX2 interleaved kernel and the
  // portable loop agree, bias + residual + each activation kind included.
  for (int64_t stride : {1, 2}) {
    for (Activation a : {Activation::None, Activation::Relu, Activation::Clip, Activation::Silu}) {
      cpu::ConvGeometry g;
      g.rank = 2;
      g.in = {23, 37};
      g.kernel = {3, 3};
      g.strides = {stride, stride};
      g.dilations = {1, 1};
      g.padBegin = {1, 1};
      g.out = {(23 + 2 - 3) / stride + 1, (37 + 2 - 3) / stride + 1};
      g.inPixels = 23 * 37;
      g.outPixels = g.out[0] * g.out[1];
      g.kernelSize = 9;
      Tensor x = randomFloats({7, 23, 37}, 11), w = randomFloats({7, 3, 3}, 12), b = randomFloats({7}, 13);
      Tensor z = randomFloats({7, g.outPixels}, 14);
      std::vector<float> scratch(size_t(cpu::depthwiseScratchFloats(g)));
      std::vector<float> want(size_t(7 * g.outPixels)), got(want.size());
      cpu::DepthwiseBlock blk;
      blk.x = x.ptr<float>();
      blk.w = w.ptr<float>();
      blk.bias = b.ptr<float>();
      blk.residual = z.ptr<float>();
      blk.channels = 7;
      const cpu::ActivationSpec act{a, -0.3f, 0.4f};
      blk.y = want.data();
      cpu::depthwiseConvBlock(g, blk, act, scratch.data(), false, false);
      for (bool avx512 : {false, true}) {
        std::fill(got.begin(), got.end(), -99.f);
        blk.y = got.data();
        cpu::depthwiseConvBlock(g, blk, act, scratch.data(), true, avx512);
        for (size_t i = 0; i < want.size(); i++) EXPECT_NEAR(got[i], want[i], 1e-5);
      }
    }
  }
}

KILN_TEST(conv, im2col_vector_path_matches_portable) {
  // The masked-load im2col (AVX-512 CPUs; the portable loop elsewhere, where both calls agree
  // trivially) against the portable one: strides 1 and 2 (and 3, which falls back), pads wider than
  // the kernel reach, dilation, rows wider than a vector, 1-D, and chunks that start and end
  // mid-row with a leading dimension wider than the chunk.
  struct G {
    std::vector<int64_t> in, kernel, strides, dilations, pads;
  };
  const G geos[] = {
      {{13, 37}, {3, 3}, {1, 1}, {1, 1}, {1, 1}},     {{14, 35}, {3, 3}, {2, 2}, {1, 1}, {1, 1}},
      {{9, 20}, {7, 7}, {2, 2}, {1, 1}, {3, 3}},      {{7, 7}, {3, 3}, {1, 1}, {1, 1}, {1, 1}},
      {{8, 11}, {3, 5}, {1, 2}, {2, 2}, {2, 5}},      {{6, 9}, {1, 1}, {2, 2}, {1, 1}, {0, 0}},
      {{5, 40}, {2, 3}, {3, 3}, {1, 1}, {1, 1}},      {{50}, {5}, {2}, {1}, {2}},
      {{4, 3}, {3, 3}, {2, 2}, {1, 1}, {4, 4}},
  };
  for (const G& gg : geos) {
    cpu::ConvGeometry g;
    g.rank = gg.in.size();
    g.in = gg.in;
    g.kernel = gg.kernel;
    g.strides = gg.strides;
    g.dilations = gg.dilations;
    g.padBegin = gg.pads;
    for (size_t d = 0; d < g.rank; d++) {
      g.out.push_back((gg.in[d] + 2 * gg.pads[d] - gg.dilations[d] * (gg.kernel[d] - 1) - 1) / gg.strides[d] + 1);
      g.inPixels *= g.in[d];
      g.outPixels *= g.out.back();
      g.kernelSize *= g.kernel[d];
    }
    const int64_t channels = 3, rows = channels * g.kernelSize;
    Tensor x = randomFloats({channels, g.inPixels}, 21);
    for (auto [p0, p1] : {std::pair<int64_t, int64_t>{0, g.outPixels}, {std::min<int64_t>(5, g.outPixels), g.outPixels},
                          {g.outPixels / 3, g.outPixels / 3 + std::min<int64_t>(g.outPixels - g.outPixels / 3, 19)}}) {
      const int64_t ld = p1 - p0 + 7;
      std::vector<float> want(size_t(rows * ld), -5.f), got(want.size(), -5.f);
      cpu::im2colRowMajor2d(x.ptr<float>(), channels, g, p0, p1, want.data(), ld, false);
      cpu::im2colRowMajor2d(x.ptr<float>(), channels, g, p0, p1, got.data(), ld, true);
      for (size_t i = 0; i < want.size(); i++) EXPECT_EQ(got[i], want[i]);
    }
  }
}

KILN_TEST(conv, hostile_attributes_fail_cleanly) {
  // Dilations and strides near the 2^40 limit must not overflow the window arithmetic.
  Call dil{"Conv", "", 11, {in(randomFloats({1, 1, 4, 4}, 1)), in(randomFloats({1, 1, 3, 3}, 2))}};
  dil.attrs["dilations"] = attrInts({int64_t(1) << 39, 1});
  EXPECT_THROWS_WITH(run1(dil), "node 'n0' (Conv)");
  Call pads{"Conv", "", 11, {in(randomFloats({1, 1, 4, 4}, 1)), in(randomFloats({1, 1, 1, 1}, 2))}};
  pads.attrs["pads"] = attrInts({int64_t(1) << 39, int64_t(1) << 39, int64_t(1) << 39, int64_t(1) << 39});
  EXPECT_THROWS_WITH(run1(pads), "too large");
  Call tr{"ConvTranspose", "", 11, {in(randomFloats({1, 1, 4, 4}, 1)), in(randomFloats({1, 1, 3, 3}, 2))}};
  tr.attrs["strides"] = attrInts({int64_t(1) << 39, int64_t(1) << 39});
  EXPECT_THROWS_WITH(run1(tr), "node 'n0' (ConvTranspose)");
}
