// GELU formulas (erf and tanh forms, their export variants) -> kiln.Gelu.
#include "pass_test_util.h"

using namespace pass_test;

namespace {

void scalars(ModelBuilder& m) {
  const std::pair<const char*, float> values[] = {{"sqrt2", 1.4142135f}, {"rsqrt2", 0.70710677f}, {"one", 1.f},
                                                  {"half", 0.5f},        {"three", 3.f},          {"k", 0.044715f},
                                                  {"s2pi", 0.7978846f},  {"wrong", 1.5f},         {"two", 2.f}};
  for (auto& [name, v] : values) m.initializer(name, DType::Float32, {}, std::vector<float>{v});
}

// Builds x -> formula -> y with `body` adding the nodes; checks the fusion and the numbers.
void expectGelu(const std::function<void(ModelBuilder&)>& body, const std::string& approximate) {
  ModelBuilder m;
  m.input("x", DType::Float32, {2, 7});
  scalars(m);
  body(m);
  m.output("y", DType::Float32, {2, 7});
  Graph before = load(m);
  Graph g = load(m);
  EXPECT_EQ(run(g, "gelu_fusion"), 1);
  EXPECT_EQ(liveNodes(g), 1);
  const Node* f = findOp(g, "Gelu");
  EXPECT_TRUE(f != nullptr);
  EXPECT_EQ(f->getString("approximate", ""), approximate);
  EXPECT_EQ(g.values[f->inputs[0]].name, std::string("x"));
  expectSameOutputs(before, g, {{"x", randomTensor({2, 7}, 80, -3, 3)}}, 1e-5);
}

void expectNoGelu(const std::function<void(ModelBuilder&)>& body) {
  ModelBuilder m;
  m.input("x", DType::Float32, {2, 7});
  scalars(m);
  body(m);
  m.output("y", DType::Float32, {2, 7});
  Graph g = load(m);
  EXPECT_EQ(run(g, "gelu_fusion"), 0);
}

}  // namespace

KILN_TEST(pass_gelu, erf_form_pytorch_export) {
  expectGelu([](ModelBuilder& m) {
    m.node("Div", {"x", "sqrt2"}, {"d"}, {}, "gelu_div");
    m.node("Erf", {"d"}, {"e"});
    m.node("Add", {"e", "one"}, {"a"});
    m.node("Mul", {"x", "a"}, {"xa"});
    m.node("Mul", {"xa", "half"}, {"y"});
  }, "none");
}

KILN_TEST(pass_gelu, erf_form_half_first) {
  expectGelu([](ModelBuilder& m) {
    m.node("Mul", {"rsqrt2", "x"}, {"d"});
    m.node("Erf", {"d"}, {"e"});
    m.node("Add", {"one", "e"}, {"a"});
    m.node("Mul", {"x", "half"}, {"h"});
    m.node("Mul", {"a", "h"}, {"y"});
  }, "none");
}

KILN_TEST(pass_gelu, erf_form_half_times_a_then_x) {
  expectGelu([](ModelBuilder& m) {
    m.node("Div", {"x", "sqrt2"}, {"d"});
    m.node("Erf", {"d"}, {"e"});
    m.node("Add", {"e", "one"}, {"a"});
    m.node("Mul", {"half", "a"}, {"ha"});
    m.node("Mul", {"ha", "x"}, {"y"});
  }, "none");
}

KILN_TEST(pass_gelu, tanh_form_gpt2) {
  expectGelu([](ModelBuilder& m) {
    m.node("Mul", {"half", "x"}, {"h"});
    m.node("Pow", {"x", "three"}, {"c"});
    m.node("Mul", {"k", "c"}, {"kc"});
    m.node("Add", {"x", "kc"}, {"inner"});
    m.node("Mul", {"s2pi", "inner"}, {"t"});
    m.node("Tanh", {"t"}, {"th"});
    m.node("Add", {"one", "th"}, {"a"});
    m.node("Mul", {"h", "a"}, {"y"});
  }, "tanh");
}

KILN_TEST(pass_gelu, tanh_form_with_cube_as_products) {
  expectGelu([](ModelBuilder& m) {
    m.node("Mul", {"x", "x"}, {"x2"});
    m.node("Mul", {"x2", "x"}, {"c"});
    m.node("Mul", {"c", "k"}, {"kc"});
    m.node("Add", {"kc", "x"}, {"inner"});
    m.node("Mul", {"inner", "s2pi"}, {"t"});
    m.node("Tanh", {"t"}, {"th"});
    m.node("Add", {"th", "one"}, {"a"});
    m.node("Mul", {"x", "a"}, {"xa"});
    m.node("Mul", {"xa", "half"}, {"y"});
  }, "tanh");
}

KILN_TEST(pass_gelu, near_misses_are_left_alone) {
  // Wrong scale inside erf.
  expectNoGelu([](ModelBuilder& m) {
    m.node("Div", {"x", "wrong"}, {"d"});
    m.node("Erf", {"d"}, {"e"});
    m.node("Add", {"e", "one"}, {"a"});
    m.node("Mul", {"x", "a"}, {"xa"});
    m.node("Mul", {"xa", "half"}, {"y"});
  });
  // Adds 2 instead of 1.
  expectNoGelu([](ModelBuilder& m) {
    m.node("Div", {"x", "sqrt2"}, {"d"});
    m.node("Erf", {"d"}, {"e"});
    m.node("Add", {"e", "two"}, {"a"});
    m.node("Mul", {"x", "a"}, {"xa"});
    m.node("Mul", {"xa", "half"}, {"y"});
  });
  // The erf result is also a graph output.
  expectNoGelu([](ModelBuilder& m) {
    m.node("Div", {"x", "sqrt2"}, {"d"});
    m.node("Erf", {"d"}, {"e"});
    m.node("Add", {"e", "one"}, {"a"});
    m.node("Mul", {"x", "a"}, {"xa"});
    m.node("Mul", {"xa", "half"}, {"y"});
    m.output("e", DType::Float32, {2, 7});
  });
  // Multiplies by a different tensor than the erf's input.
  expectNoGelu([](ModelBuilder& m) {
    m.node("Relu", {"x"}, {"rx"});
    m.node("Div", {"x", "sqrt2"}, {"d"});
    m.node("Erf", {"d"}, {"e"});
    m.node("Add", {"e", "one"}, {"a"});
    m.node("Mul", {"rx", "a"}, {"xa"});
    m.node("Mul", {"xa", "half"}, {"y"});
  });
  // A square where the cube belongs.
  expectNoGelu([](ModelBuilder& m) {
    m.node("Mul", {"half", "x"}, {"h"});
    m.node("Pow", {"x", "two"}, {"c"});
    m.node("Mul", {"k", "c"}, {"kc"});
    m.node("Add", {"x", "kc"}, {"inner"});
    m.node("Mul", {"s2pi", "inner"}, {"t"});
    m.node("Tanh", {"t"}, {"th"});
    m.node("Add", {"one", "th"}, {"a"});
    m.node("Mul", {"h", "a"}, {"y"});
  });
}

KILN_TEST(pass_gelu, transformer_mlp_becomes_one_fused_matmul) {
  ModelBuilder m;
  m.input("x", DType::Float32, {2, 3, 8});
  scalars(m);
  m.initializer("w", DType::Float32, {8, 16}, randomFloats(128, 81));
  m.initializer("b", DType::Float32, {16}, randomFloats(16, 82));
  m.node("MatMul", {"x", "w"}, {"mm"});
  m.node("Add", {"mm", "b"}, {"h"});
  m.node("Div", {"h", "sqrt2"}, {"d"});
  m.node("Erf", {"d"}, {"e"});
  m.node("Add", {"e", "one"}, {"a"});
  m.node("Mul", {"h", "a"}, {"xa"});
  m.node("Mul", {"xa", "half"}, {"y"});
  m.output("y", DType::Float32, {2, 3, 16});
  Graph before = load(m);
  Graph g = load(m);
  std::map<std::string, int> applied;
  optimizeGraph(g, 2, applied);
  EXPECT_EQ(liveNodes(g), 1);
  EXPECT_EQ(applied["gelu_fusion"], 1);
  EXPECT_EQ(applied["matmul_fusion"], 1);
  EXPECT_EQ(findOp(g, "FusedMatMul")->getString("activation", ""), std::string("Gelu"));
  expectSameOutputs(before, g, {{"x", randomTensor({2, 3, 8}, 83)}});
}
