// Gemm (+ bias) (+ activation) -> kiln.FusedGemm; MatMul + 1-D bias (+ activation) -> kiln.FusedMatMul.
#include "pass_test_util.h"

using namespace pass_test;

KILN_TEST(pass_gemm_fusion, gemm_with_activation) {
  ModelBuilder m;
  m.input("a", DType::Float32, {3, 6});
  m.initializer("w", DType::Float32, {4, 6}, randomFloats(24, 60));
  m.initializer("c", DType::Float32, {4}, randomFloats(4, 61));
  m.node("Gemm", {"a", "w", "c"}, {"g"}, {Attr::i("transB", 1), Attr::f("alpha", 0.5f)}, "fc");
  m.node("Relu", {"g"}, {"y"});
  m.output("y", DType::Float32, {3, 4});
  Graph before = load(m);
  Graph g = load(m);
  EXPECT_EQ(run(g, "gemm_fusion"), 1);
  const Node* f = findOp(g, "FusedGemm");
  EXPECT_TRUE(f != nullptr);
  EXPECT_EQ(f->name, std::string("fc"));
  EXPECT_EQ(f->getInt("transB", 0), (int64_t)1);
  EXPECT_NEAR(f->getFloat("alpha", 1), 0.5, 1e-7);
  EXPECT_EQ(liveNodes(g), 1);
  expectSameOutputs(before, g, {{"a", randomTensor({3, 6}, 62)}});
}

KILN_TEST(pass_gemm_fusion, gemm_without_c_takes_the_bias_add) {
  for (bool withAct : {false, true}) {
    ModelBuilder m;
    m.input("a", DType::Float32, {3, 6});
    m.initializer("w", DType::Float32, {6, 4}, randomFloats(24, 63));
    m.initializer("bias", DType::Float32, {1, 4}, randomFloats(4, 64));
    m.node("Gemm", {"a", "w"}, {"g"}, {Attr::f("beta", 0.25f)});
    m.node("Add", {"g", "bias"}, {withAct ? "gb" : "y"});
    if (withAct) m.node("Tanh", {"gb"}, {"y"});
    m.output("y", DType::Float32, {3, 4});
    Graph before = load(m);
    Graph g = load(m);
    EXPECT_EQ(run(g, "gemm_fusion"), 1);
    EXPECT_EQ(liveNodes(g), 1);
    EXPECT_EQ(countOps(g, withAct ? "FusedGemm" : "Gemm", withAct ? "kiln" : ""), 1);
    expectSameOutputs(before, g, {{"a", randomTensor({3, 6}, 65)}});
  }
}

KILN_TEST(pass_gemm_fusion, plain_gemm_is_left_alone) {
  ModelBuilder m;
  m.input("a", DType::Float32, {3, 6});
  m.input("c", DType::Float32, {3, 4});
  m.initializer("w", DType::Float32, {6, 4}, randomFloats(24, 66));
  m.node("Gemm", {"a", "w", "c"}, {"g"});
  m.node("Add", {"g", "c"}, {"y"});  // C already present and the addend is not constant
  m.output("y", DType::Float32, {3, 4});
  Graph g = load(m);
  EXPECT_EQ(run(g, "gemm_fusion"), 0);
}

KILN_TEST(pass_matmul_fusion, linear_layer_with_bias_and_gelu) {
  ModelBuilder m;
  m.input("x", DType::Float32, {2, 3, 8});
  m.initializer("w", DType::Float32, {8, 5}, randomFloats(40, 70));
  m.initializer("b", DType::Float32, {5}, randomFloats(5, 71));
  m.node("MatMul", {"x", "w"}, {"mm"}, {}, "linear");
  m.node("Add", {"mm", "b"}, {"h"});
  m.node("Gelu", {"h"}, {"y"}, {Attr::s("approximate", "tanh")});
  m.opset("", 20);
  m.output("y", DType::Float32, {2, 3, 5});
  Graph before = load(m);
  Graph g = load(m);
  EXPECT_EQ(run(g, "matmul_fusion"), 1);
  const Node* f = findOp(g, "FusedMatMul");
  EXPECT_TRUE(f != nullptr && f->inputs.size() == 3);
  EXPECT_EQ(f->getString("activation", ""), std::string("GeluTanh"));
  expectSameOutputs(before, g, {{"x", randomTensor({2, 3, 8}, 72)}});
}

KILN_TEST(pass_matmul_fusion, bias_with_leading_ones_is_flattened) {
  ModelBuilder m;
  m.input("x", DType::Float32, {"batch", 4});
  m.initializer("w", DType::Float32, {4, 6}, randomFloats(24, 73));
  m.initializer("b", DType::Float32, {1, 6}, randomFloats(6, 74));
  m.node("MatMul", {"x", "w"}, {"mm"});
  m.node("Add", {"b", "mm"}, {"y"});
  m.output("y", DType::Float32, {"batch", 6});
  Graph before = load(m);
  Graph g = load(m);
  EXPECT_EQ(run(g, "matmul_fusion"), 1);
  const Node* f = findOp(g, "FusedMatMul");
  EXPECT_TRUE(f != nullptr);
  EXPECT_EQ(shapeToString(g.values[f->inputs[2]].constant->shape), std::string("[6]"));
  expectSameOutputs(before, g, {{"x", randomTensor({3, 4}, 75)}});
}

KILN_TEST(pass_matmul_fusion, near_misses_are_left_alone) {
  ModelBuilder m;
  m.input("x", DType::Float32, {3, 4});
  m.input("dyn", DType::Float32, {6});
  m.initializer("w", DType::Float32, {4, 6}, randomFloats(24, 76));
  m.initializer("full", DType::Float32, {3, 6}, randomFloats(18, 77));
  m.initializer("col", DType::Float32, {3, 1}, randomFloats(3, 78));
  m.node("MatMul", {"x", "w"}, {"m1"});
  m.node("Add", {"m1", "full"}, {"y1"});  // bias varies along rows too
  m.node("MatMul", {"x", "w"}, {"m2"});
  m.node("Add", {"m2", "col"}, {"y2"});   // bias along the wrong dim
  m.node("MatMul", {"x", "w"}, {"m3"});
  m.node("Add", {"m3", "dyn"}, {"y3"});   // not a constant
  m.node("MatMul", {"x", "w"}, {"m4"});
  m.node("Add", {"m4", "full"}, {"y4"});
  m.output("m4", DType::Float32, {3, 6});  // intermediate is a graph output
  for (const char* out : {"y1", "y2", "y3", "y4"}) m.output(out, DType::Float32, {3, 6});
  Graph g = load(m);
  EXPECT_EQ(run(g, "matmul_fusion"), 0);
  EXPECT_EQ(countOps(g, "MatMul"), 4);
}
