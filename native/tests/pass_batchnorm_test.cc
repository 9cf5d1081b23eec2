// BatchNormalization folding into Conv, Gemm and MatMul.
#include "pass_test_util.h"

using namespace pass_test;

namespace {

// BatchNorm parameters for `c` channels with a positive variance.
void addBatchNorm(ModelBuilder& m, const std::string& in, const std::string& out, int64_t c, uint32_t seed,
                  const std::vector<Attr>& attrs = {}) {
  m.initializer(out + "_gamma", DType::Float32, {c}, randomFloats(c, seed, 0.5f, 1.5f));
  m.initializer(out + "_beta", DType::Float32, {c}, randomFloats(c, seed + 1));
  m.initializer(out + "_mean", DType::Float32, {c}, randomFloats(c, seed + 2));
  m.initializer(out + "_var", DType::Float32, {c}, randomFloats(c, seed + 3, 0.2f, 2.f));
  m.node("BatchNormalization", {in, out + "_gamma", out + "_beta", out + "_mean", out + "_var"}, {out}, attrs);
}

}  // namespace

KILN_TEST(pass_batchnorm, folds_into_conv_with_and_without_bias) {
  for (bool withBias : {true, false}) {
    ModelBuilder m;
    m.input("x", DType::Float32, {1, 3, 6, 6});
    m.initializer("w", DType::Float32, {4, 3, 3, 3}, randomFloats(108, 10));
    m.initializer("b", DType::Float32, {4}, randomFloats(4, 11));
    m.node("Conv", withBias ? std::vector<std::string>{"x", "w", "b"} : std::vector<std::string>{"x", "w"}, {"c"},
           {Attr::ints("pads", {1, 1, 1, 1})});
    addBatchNorm(m, "c", "y", 4, 12, {Attr::f("epsilon", 1e-3f)});
    m.output("y", DType::Float32, {1, 4, 6, 6});
    Graph before = load(m);
    Graph g = load(m);
    EXPECT_EQ(run(g, "batchnorm_folding"), 1);
    EXPECT_EQ(countOps(g, "BatchNormalization"), 0);
    EXPECT_EQ(countOps(g, "Conv"), 1);
    EXPECT_EQ(g.values[g.outputs[0]].name, std::string("y"));
    expectSameOutputs(before, g, {{"x", randomTensor({1, 3, 6, 6}, 13)}});
  }
}

KILN_TEST(pass_batchnorm, folds_into_gemm_both_layouts) {
  for (int transB : {0, 1}) {
    ModelBuilder m;
    m.input("a", DType::Float32, {3, 5});
    m.initializer("w", DType::Float32, transB ? std::vector<int64_t>{4, 5} : std::vector<int64_t>{5, 4},
                  randomFloats(20, 20));
    m.initializer("c", DType::Float32, {4}, randomFloats(4, 21));
    m.node("Gemm", {"a", "w", "c"}, {"g"}, {Attr::i("transB", transB), Attr::f("alpha", 0.7f), Attr::f("beta", 1.3f)});
    addBatchNorm(m, "g", "y", 4, 22);
    m.output("y", DType::Float32, {3, 4});
    Graph before = load(m);
    Graph g = load(m);
    EXPECT_EQ(run(g, "batchnorm_folding"), 1);
    EXPECT_EQ(liveNodes(g), 1);
    expectSameOutputs(before, g, {{"a", randomTensor({3, 5}, 23)}});
  }
}

KILN_TEST(pass_batchnorm, matmul_becomes_matmul_plus_bias) {
  ModelBuilder m;
  m.input("a", DType::Float32, {3, 5});
  m.initializer("w", DType::Float32, {5, 4}, randomFloats(20, 30));
  m.node("MatMul", {"a", "w"}, {"mm"});
  addBatchNorm(m, "mm", "y", 4, 31);
  m.output("y", DType::Float32, {3, 4});
  Graph before = load(m);
  Graph g = load(m);
  EXPECT_EQ(run(g, "batchnorm_folding"), 1);
  EXPECT_EQ(countOps(g, "MatMul"), 1);
  EXPECT_EQ(countOps(g, "Add"), 1);
  expectSameOutputs(before, g, {{"a", randomTensor({3, 5}, 32)}});
  // And the pipeline then makes it one FusedMatMul.
  std::map<std::string, int> applied;
  optimizeGraph(g, 2, applied);
  EXPECT_EQ(liveNodes(g), 1);
  EXPECT_EQ(countOps(g, "FusedMatMul", "kiln"), 1);
  expectSameOutputs(before, g, {{"a", randomTensor({3, 5}, 33)}});
}

KILN_TEST(pass_batchnorm, leaves_unfoldable_cases) {
  ModelBuilder m;
  m.input("x", DType::Float32, {1, 2, 4, 4});
  m.input("gamma", DType::Float32, {2});  // not a constant
  m.initializer("w", DType::Float32, {2, 2, 1, 1}, randomFloats(4, 40));
  m.initializer("beta", DType::Float32, {2}, randomFloats(2, 41));
  m.initializer("mean", DType::Float32, {2}, randomFloats(2, 42));
  m.initializer("var", DType::Float32, {2}, randomFloats(2, 43, 0.5f, 1.f));
  // 1. Parameters not constant.
  m.node("Conv", {"x", "w"}, {"c1"});
  m.node("BatchNormalization", {"c1", "gamma", "beta", "mean", "var"}, {"y1"});
  // 2. The Conv output is read by someone else too.
  m.node("Conv", {"x", "w"}, {"c2"});
  addBatchNorm(m, "c2", "y2", 2, 44);
  m.node("Relu", {"c2"}, {"r2"});
  // 3. The Conv output is a graph output.
  m.node("Conv", {"x", "w"}, {"c3"});
  addBatchNorm(m, "c3", "y3", 2, 45);
  // 4. BatchNorm after something that is not Conv/Gemm/MatMul.
  m.node("Relu", {"x"}, {"r4"});
  addBatchNorm(m, "r4", "y4", 2, 46);
  for (const char* out : {"y1", "y2", "r2", "c3", "y3", "y4"}) m.output(out, DType::Float32, {1, 2, 4, 4});
  Graph g = load(m);
  EXPECT_EQ(run(g, "batchnorm_folding"), 0);
  EXPECT_EQ(countOps(g, "BatchNormalization"), 4);
}
