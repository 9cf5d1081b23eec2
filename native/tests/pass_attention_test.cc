// Scaled dot-product attention -> kiln.Attention.
#include "pass_test_util.h"

using namespace pass_test;

namespace {

constexpr int64_t B = 2, H = 2, S = 4, D = 8;

std::vector<uint8_t> lowerTriangle(int64_t n, bool upper = false) {
  std::vector<uint8_t> c((size_t)(n * n));
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < n; j++) c[(size_t)(i * n + j)] = upper ? (j >= i) : (j <= i);
  return c;
}

std::vector<std::pair<std::string, Tensor>> qkvInputs(bool headSplitK) {
  return {{"q", randomTensor({B, H, S, D}, 100, -2, 2)},
          {"k", randomTensor(headSplitK ? Shape{B, S, H, D} : Shape{B, H, S, D}, 101, -2, 2)},
          {"v", randomTensor({B, H, S, D}, 102)},
          {"mask", randomTensor({B, 1, 1, S}, 103, -3, 0)}};
}

// q, k, v (and mask) inputs; `tail` builds scores "s0" -> ... -> "p" (the softmax) from MatMul(q, kt).
ModelBuilder attentionModel(bool headSplitK, const std::function<void(ModelBuilder&)>& middle) {
  ModelBuilder m;
  m.input("q", DType::Float32, {B, H, S, D});
  m.input("k", DType::Float32, headSplitK ? onnx_builder::Dims{B, S, H, D} : onnx_builder::Dims{B, H, S, D});
  m.input("v", DType::Float32, {B, H, S, D});
  m.input("mask", DType::Float32, {B, 1, 1, S});
  m.initializer("sqrt_d", DType::Float32, {}, std::vector<float>{std::sqrt((float)D)});
  m.initializer("inv_sqrt_d", DType::Float32, {}, std::vector<float>{1 / std::sqrt((float)D)});
  m.initializer("neg", DType::Float32, {}, std::vector<float>{-1e4f});
  m.initializer("causal", DType::Bool, {1, 1, S, S}, lowerTriangle(S));
  m.initializer("anticausal", DType::Bool, {1, 1, S, S}, lowerTriangle(S, true));
  std::vector<float> additive((size_t)(S * S));
  for (int64_t i = 0; i < S; i++)
    for (int64_t j = 0; j < S; j++) additive[(size_t)(i * S + j)] = j <= i ? 0.f : -1e9f;
  m.initializer("causal_add", DType::Float32, {S, S}, additive);
  m.node("Transpose", {"k"}, {"kt"}, {Attr::ints("perm", headSplitK ? std::vector<int64_t>{0, 2, 3, 1}
                                                                      : std::vector<int64_t>{0, 1, 3, 2})});
  m.node("MatMul", {"q", "kt"}, {"s0"}, {}, "qk");
  middle(m);
  m.node("MatMul", {"p", "v"}, {"y"});
  m.output("y", DType::Float32, {B, H, S, D});
  return m;
}

// Fuses, checks what is left and the numbers, and returns (a copy of) the fused node.
Node expectAttention(const ModelBuilder& m, bool headSplitK) {
  Graph before = load(m);
  Graph g = load(m);
  EXPECT_EQ(run(g, "attention_fusion"), 1);
  const Node* a = findOp(g, "Attention");
  EXPECT_TRUE(a != nullptr);
  EXPECT_EQ(countOps(g, "Softmax"), 0);
  EXPECT_EQ(countOps(g, "MatMul"), 0);
  EXPECT_EQ(countOps(g, "Transpose"), headSplitK ? 1 : 0);
  expectSameOutputs(before, g, qkvInputs(headSplitK), 1e-5);
  return *a;
}

}  // namespace

KILN_TEST(pass_attention, bert_scaled_masked) {
  ModelBuilder m = attentionModel(false, [](ModelBuilder& m) {
    m.node("Div", {"s0", "sqrt_d"}, {"s1"});
    m.node("Add", {"s1", "mask"}, {"s2"});
    m.node("Softmax", {"s2"}, {"p"}, {Attr::i("axis", -1)});
  });
  Node a = expectAttention(m, false);
  EXPECT_NEAR(a.getFloat("scale", 0), 1 / std::sqrt(8.0), 1e-7);
  EXPECT_EQ(a.getInt("causal", -1), (int64_t)0);
  EXPECT_EQ(a.inputs.size(), (size_t)4);
}

KILN_TEST(pass_attention, gpt2_causal_where_with_head_split_transpose) {
  ModelBuilder m = attentionModel(true, [](ModelBuilder& m) {
    m.node("Mul", {"inv_sqrt_d", "s0"}, {"s1"});
    m.node("Where", {"causal", "s1", "neg"}, {"s2"});
    m.node("Add", {"mask", "s2"}, {"s3"});
    m.node("Softmax", {"s3"}, {"p"});
  });
  Node a = expectAttention(m, true);
  EXPECT_EQ(a.getInt("causal", 0), (int64_t)1);
  EXPECT_EQ(a.inputs.size(), (size_t)4);
}

KILN_TEST(pass_attention, additive_causal_constant_without_scale) {
  ModelBuilder m = attentionModel(false, [](ModelBuilder& m) {
    m.node("Add", {"s0", "causal_add"}, {"s1"});
    m.node("Softmax", {"s1"}, {"p"}, {Attr::i("axis", 3)});
  });
  Node a = expectAttention(m, false);
  EXPECT_EQ(a.getInt("causal", 0), (int64_t)1);
  EXPECT_NEAR(a.getFloat("scale", 0), 1.0, 1e-7);
  EXPECT_EQ(a.inputs.size(), (size_t)3);
}

KILN_TEST(pass_attention, near_misses_are_left_alone) {
  auto expectNone = [](const ModelBuilder& m) {
    Graph g = load(m);
    EXPECT_EQ(run(g, "attention_fusion"), 0);
    EXPECT_EQ(countOps(g, "Softmax"), 1);
  };
  // Softmax over the wrong axis.
  expectNone(attentionModel(false, [](ModelBuilder& m) {
    m.node("Div", {"s0", "sqrt_d"}, {"s1"});
    m.node("Softmax", {"s1"}, {"p"}, {Attr::i("axis", 2)});
  }));
  // A Where whose condition is not the causal triangle.
  expectNone(attentionModel(false, [](ModelBuilder& m) {
    m.node("Where", {"anticausal", "s0", "neg"}, {"s1"});
    m.node("Softmax", {"s1"}, {"p"});
  }));
  // The scores are read elsewhere too.
  expectNone(attentionModel(false, [](ModelBuilder& m) {
    m.node("Div", {"s0", "sqrt_d"}, {"s1"});
    m.node("Softmax", {"s1"}, {"p"});
    m.output("s1", DType::Float32, {B, H, S, S});
  }));
  // Scaling by a tensor rather than a constant.
  expectNone(attentionModel(false, [](ModelBuilder& m) {
    m.node("Mul", {"s0", "mask"}, {"s1"});
    m.node("Softmax", {"s1"}, {"p"});
  }));
  // K transposed the wrong way.
  ModelBuilder wrongPerm;
  wrongPerm.input("q", DType::Float32, {B, H, S, D});
  wrongPerm.input("k", DType::Float32, {B, H, D, S});
  wrongPerm.input("v", DType::Float32, {B, H, S, D});
  wrongPerm.node("Transpose", {"k"}, {"kt"}, {Attr::ints("perm", {0, 1, 2, 3})});
  wrongPerm.node("MatMul", {"q", "kt"}, {"s0"});
  wrongPerm.node("Softmax", {"s0"}, {"p"});
  wrongPerm.node("MatMul", {"p", "v"}, {"y"});
  wrongPerm.output("y", DType::Float32, {B, H, S, D});
  expectNone(wrongPerm);
}

KILN_TEST(pass_attention, broadcast_batch_is_left_alone) {
  // K and V shared across the batch (B = 1 against Q's B = 2): MatMul broadcasts, Attention does not.
  ModelBuilder m;
  m.input("q", DType::Float32, {B, H, S, D});
  m.input("k", DType::Float32, {1, H, S, D});
  m.input("v", DType::Float32, {1, H, S, D});
  m.node("Transpose", {"k"}, {"kt"}, {Attr::ints("perm", {0, 1, 3, 2})});
  m.node("MatMul", {"q", "kt"}, {"s0"});
  m.node("Softmax", {"s0"}, {"p"});
  m.node("MatMul", {"p", "v"}, {"y"});
  m.output("y", DType::Float32, {B, H, S, D});
  Graph g = load(m);
  EXPECT_EQ(run(g, "attention_fusion"), 0);
}

KILN_TEST(pass_attention, symbolic_dims_fuse_and_are_checked_at_run_time) {
  // Inference cannot prove "sequence" (the mask) equals "s" (the scores): the fusion is accepted and
  // kiln.Attention checks the relation on every run's concrete shapes.
  ModelBuilder m;
  m.input("q", DType::Float32, {"batch", H, "s", D});
  m.input("k", DType::Float32, {"batch", H, "s", D});
  m.input("v", DType::Float32, {"batch", H, "s", D});
  m.input("mask", DType::Float32, {"batch", 1, 1, "sequence"});
  m.initializer("sqrt_d", DType::Float32, {}, std::vector<float>{std::sqrt((float)D)});
  m.node("Transpose", {"k"}, {"kt"}, {Attr::ints("perm", {0, 1, 3, 2})});
  m.node("MatMul", {"q", "kt"}, {"s0"});
  m.node("Div", {"s0", "sqrt_d"}, {"s1"});
  m.node("Add", {"s1", "mask"}, {"s2"});
  m.node("Softmax", {"s2"}, {"p"});
  m.node("MatMul", {"p", "v"}, {"y"});
  m.output("y", DType::Float32, {"batch", H, "s", D});
  Graph before = load(m);
  Graph g = load(m);
  EXPECT_EQ(run(g, "attention_fusion"), 1);
  expectSameOutputs(before, g, qkvInputs(false), 1e-5);
  auto bad = qkvInputs(false);
  bad[3].second = randomTensor({B, 1, 1, S + 1}, 104);  // a mask longer than the keys
  EXPECT_THROWS_WITH(interpretGraph(g, bad), "mask");
}
