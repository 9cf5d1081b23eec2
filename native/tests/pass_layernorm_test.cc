// The exported LayerNorm decomposition -> kiln.LayerNormalization.
#include "pass_test_util.h"

using namespace pass_test;

namespace {

struct LnOptions {
  int64_t opset = 17;
  std::vector<int64_t> axes = {-1};
  std::vector<int64_t> axes2 = {-1};
  bool mulSquare = false;       // Mul(d, d) instead of Pow(d, 2)
  bool reciprocal = false;      // Mul(d, Reciprocal(std)) instead of Div
  bool scale = true, bias = true;
  const char* eps = "eps";
  const char* exponent = "two";
  bool extraReaderOfD = false;
};

ModelBuilder layerNorm(const LnOptions& o, const std::vector<int64_t>& xShape, const std::vector<int64_t>& normShape) {
  ModelBuilder m;
  m.opset("", o.opset);
  onnx_builder::Dims dims(xShape.begin(), xShape.end());
  m.input("x", DType::Float32, dims);
  m.input("dyn_eps", DType::Float32, {});
  int64_t n = 1;
  for (int64_t d : normShape) n *= d;
  m.initializer("eps", DType::Float32, {}, std::vector<float>{1e-5f});
  m.initializer("two", DType::Float32, {}, std::vector<float>{2});
  m.initializer("three", DType::Float32, {}, std::vector<float>{3});
  m.initializer("gamma", DType::Float32, normShape, randomFloats(n, 90, 0.5f, 1.5f));
  m.initializer("beta", DType::Float32, normShape, randomFloats(n, 91));
  m.initializer("axes", DType::Int64, {(int64_t)o.axes.size()}, o.axes);
  m.initializer("axes2", DType::Int64, {(int64_t)o.axes2.size()}, o.axes2);
  auto reduce = [&](const std::string& in, const std::string& out, const char* axesName, const std::vector<int64_t>& axes) {
    if (o.opset >= 18) {
      m.node("ReduceMean", {in, axesName}, {out});
    } else {
      m.node("ReduceMean", {in}, {out}, {Attr::ints("axes", axes)});
    }
  };
  reduce("x", "mean", "axes", o.axes);
  m.node("Sub", {"x", "mean"}, {"d"});
  if (o.mulSquare) {
    m.node("Mul", {"d", "d"}, {"sq"});
  } else {
    m.node("Pow", {"d", o.exponent}, {"sq"});
  }
  reduce("sq", "var", "axes2", o.axes2);
  m.node("Add", {"var", o.eps}, {"ve"});
  m.node("Sqrt", {"ve"}, {"std"});
  std::string cur = "n";
  if (o.reciprocal) {
    m.node("Reciprocal", {"std"}, {"rstd"});
    m.node("Mul", {"rstd", "d"}, {"n"});
  } else {
    m.node("Div", {"d", "std"}, {"n"});
  }
  if (o.scale) {
    m.node("Mul", {"gamma", cur}, {"scaled"});
    cur = "scaled";
  }
  if (o.bias) {
    m.node("Add", {cur, "beta"}, {"biased"});
    cur = "biased";
  }
  m.node("Identity", {cur}, {"y"});
  if (o.extraReaderOfD) {
    m.node("Relu", {"d"}, {"rd"});
    m.output("rd", DType::Float32, dims);
  }
  m.output("y", DType::Float32, dims);
  return m;
}

void expectFused(const LnOptions& o, const std::vector<int64_t>& xShape, const std::vector<int64_t>& normShape,
                 int64_t wantAxis) {
  ModelBuilder m = layerNorm(o, xShape, normShape);
  Graph before = load(m);
  Graph g = load(m);
  EXPECT_EQ(run(g, "layernorm_fusion"), 1);
  const Node* ln = findOp(g, "LayerNormalization");
  EXPECT_TRUE(ln != nullptr);
  EXPECT_EQ(ln->getInt("axis", -1), wantAxis);
  EXPECT_NEAR(ln->getFloat("epsilon", 0), 1e-5, 1e-12);
  EXPECT_EQ(ln->inputs.size(), (size_t)(o.bias ? 3 : 2));
  EXPECT_EQ(liveNodes(g), 2);  // the fused op and the trailing Identity
  expectSameOutputs(before, g, {{"x", randomTensor(xShape, 92, -2, 2)}, {"dyn_eps", randomTensor({}, 93)}}, 1e-4);
}

void expectNotFused(const LnOptions& o) {
  Graph g = load(layerNorm(o, {2, 3, 8}, {8}));
  EXPECT_EQ(run(g, "layernorm_fusion"), 0);
  EXPECT_EQ(countOps(g, "LayerNormalization", "kiln"), 0);
}

}  // namespace

KILN_TEST(pass_layernorm, pytorch_export_below_opset_17) {
  expectFused(LnOptions{}, {2, 3, 8}, {8}, 2);
}

KILN_TEST(pass_layernorm, opset_18_axes_input_mul_square_and_reciprocal) {
  LnOptions o;
  o.opset = 18;
  o.mulSquare = true;
  o.reciprocal = true;
  o.bias = false;
  expectFused(o, {4, 8}, {8}, 1);
}

KILN_TEST(pass_layernorm, over_the_last_two_axes) {
  LnOptions o;
  o.axes = {1, 2};
  o.axes2 = {-2, -1};
  expectFused(o, {2, 3, 4}, {3, 4}, 1);
}

KILN_TEST(pass_layernorm, without_affine_part_gets_unit_scale) {
  LnOptions o;
  o.scale = false;
  o.bias = false;
  expectFused(o, {2, 3, 8}, {8}, 2);
}

KILN_TEST(pass_layernorm, near_misses_are_left_alone) {
  LnOptions o;
  o.eps = "dyn_eps";  // epsilon not a constant
  expectNotFused(o);
  o = LnOptions{};
  o.exponent = "three";  // not a variance
  expectNotFused(o);
  o = LnOptions{};
  o.axes2 = {-2};  // the two means reduce different axes
  expectNotFused(o);
  o = LnOptions{};
  o.axes = {0};  // not the trailing axes
  o.axes2 = {0};
  expectNotFused(o);
  o = LnOptions{};
  o.extraReaderOfD = true;  // the centred value is needed elsewhere
  expectNotFused(o);
}
