// Identity/Dropout elimination, dead nodes, constant folding and shape folding.
#include "pass_test_util.h"

using namespace pass_test;
using onnx_builder::tensorProto;
using onnx_builder::rawBytes;

namespace {

std::vector<int64_t> i64(std::vector<int64_t> v) { return v; }

}  // namespace

KILN_TEST(pass_identity, removes_identity_and_dropout_keeping_output_names) {
  ModelBuilder m;
  m.input("x", DType::Float32, {2, 3});
  m.node("Identity", {"x"}, {"a"});
  m.node("Relu", {"a"}, {"b"});
  m.node("Dropout", {"b"}, {"c"}, {}, "drop");
  m.node("Sigmoid", {"c"}, {"d"});
  m.node("Identity", {"d"}, {"y"});
  m.output("y", DType::Float32, {2, 3});
  Graph before = load(m);
  Graph g = load(m);
  EXPECT_EQ(run(g, "identity_elimination"), 3);
  EXPECT_EQ(countOps(g, "Identity"), 0);
  EXPECT_EQ(countOps(g, "Dropout"), 0);
  EXPECT_EQ(liveNodes(g), 2);
  // The graph output keeps its name: Sigmoid now writes "y".
  EXPECT_EQ(g.values[g.outputs[0]].name, std::string("y"));
  EXPECT_EQ(g.nodes.back().opType, std::string("Sigmoid"));
  expectSameOutputs(before, g, {{"x", randomTensor({2, 3}, 1)}});
}

KILN_TEST(pass_identity, keeps_what_it_cannot_remove) {
  ModelBuilder m;
  m.input("x", DType::Float32, {4});
  m.initializer("on", DType::Bool, {}, std::vector<uint8_t>{1});
  // Identity from a graph input straight to a graph output: no producer can take the name.
  m.node("Identity", {"x"}, {"y"});
  // Dropout whose mask is read, and Dropout in training mode.
  m.node("Dropout", {"x"}, {"d1", "mask"});
  m.node("Dropout", {"x", "", "on"}, {"d2"});
  m.output("y", DType::Float32, {4});
  m.output("mask", DType::Bool, {4});
  m.output("d1", DType::Float32, {4});
  m.output("d2", DType::Float32, {4});
  Graph g = load(m);
  EXPECT_EQ(run(g, "identity_elimination"), 0);
  EXPECT_EQ(liveNodes(g), 3);
}

KILN_TEST(pass_identity, identity_output_and_input_both_graph_outputs) {
  ModelBuilder m;
  m.input("x", DType::Float32, {4});
  m.node("Relu", {"x"}, {"r"});
  m.node("Identity", {"r"}, {"y"});
  m.output("r", DType::Float32, {4});
  m.output("y", DType::Float32, {4});
  Graph g = load(m);
  EXPECT_EQ(run(g, "identity_elimination"), 0);  // both names must survive
  EXPECT_EQ(countOps(g, "Identity"), 1);
}

KILN_TEST(pass_dead, removes_unreachable_nodes_and_unused_weights) {
  ModelBuilder m;
  m.input("x", DType::Float32, {4});
  m.initializer("w", DType::Float32, {4}, randomFloats(4, 2));
  m.initializer("unused", DType::Float32, {1000}, randomFloats(1000, 3));
  m.node("Add", {"x", "w"}, {"y"});
  m.node("Mul", {"x", "unused"}, {"junk1"});  // shapes disagree, but nobody needs it
  m.node("Sigmoid", {"x"}, {"junk2"});
  m.node("Tanh", {"junk2"}, {"junk3"});
  m.output("y", DType::Float32, {4});
  // A broadcast error in a dead node must not stop the model from loading; declare its output.
  m.valueInfo("junk1", DType::Float32, {4});
  std::vector<uint8_t> bytes = m.bytes();
  Graph g = readModel(bytes.data(), bytes.size());
  PassContext ctx;
  EXPECT_EQ(eliminateDeadNodes(g, ctx), 3);
  g.compact();
  EXPECT_EQ(liveNodes(g), 1);
  EXPECT_TRUE(g.values[*g.findValue("w")].constant != nullptr);
  EXPECT_TRUE(g.values[*g.findValue("unused")].constant == nullptr);
  EXPECT_EQ(eliminateDeadNodes(g, ctx), 0);
}

KILN_TEST(pass_constant_folding, folds_chains_of_constant_nodes) {
  ModelBuilder m;
  m.input("x", DType::Float32, {2, 4});
  m.initializer("w", DType::Float32, {4}, randomFloats(4, 4));
  m.initializer("two", DType::Float32, {}, std::vector<float>{2});
  m.constant("one", tensorProto("", DType::Float32, {}, rawBytes(std::vector<float>{1})));
  m.node("Mul", {"w", "two"}, {"w2"});
  m.node("Add", {"w2", "one"}, {"w3"});
  m.node("Transpose", {"w3"}, {"w4"});
  m.node("Add", {"x", "w4"}, {"y"});
  m.output("y", DType::Float32, {2, 4});
  Graph before = load(m);
  Graph g = load(m);
  EXPECT_EQ(run(g, "constant_folding"), 4);  // Constant, Mul, Add, Transpose
  EXPECT_EQ(liveNodes(g), 1);
  const Tensor* folded = g.values[g.nodes[0].inputs[1]].constant.get();
  EXPECT_TRUE(folded != nullptr);
  std::vector<float> w = randomFloats(4, 4);
  for (int i = 0; i < 4; i++) EXPECT_NEAR(folded->ptr<float>()[i], w[i] * 2 + 1, 1e-6);
  expectSameOutputs(before, g, {{"x", randomTensor({2, 4}, 5)}});
}

KILN_TEST(pass_constant_folding, skips_blowups_random_ops_and_graph_outputs) {
  ModelBuilder m;
  m.input("x", DType::Float32, {256, 1024});
  m.initializer("shape", DType::Int64, {2}, i64({256, 1024}));
  m.initializer("small", DType::Int64, {1}, i64({8}));
  // 16 bytes of shape -> 1 MiB of zeros: left as a node.
  m.node("ConstantOfShape", {"shape"}, {"zeros"}, {Attr::tensor("value", tensorProto("", DType::Float32, {1}, rawBytes(std::vector<float>{0.5f})))});
  m.node("Add", {"x", "zeros"}, {"y"});
  // Nondeterministic: never folded.
  m.node("RandomUniform", {}, {"r"}, {Attr::ints("shape", {1024})});
  m.node("Add", {"y", "r"}, {"z"});
  // All-constant but a graph output: stays produced by its node.
  m.node("ConstantOfShape", {"small"}, {"c"});
  m.output("z", DType::Float32, {256, 1024});
  m.output("c", DType::Float32, {8});
  Graph g = load(m);
  EXPECT_EQ(run(g, "constant_folding"), 0);
  EXPECT_EQ(countOps(g, "ConstantOfShape"), 2);
  EXPECT_EQ(countOps(g, "RandomUniform"), 1);
}

KILN_TEST(pass_constant_folding, folds_small_expansions) {
  ModelBuilder m;
  m.input("x", DType::Float32, {4, 8});
  m.initializer("shape", DType::Int64, {2}, i64({4, 8}));
  m.node("ConstantOfShape", {"shape"}, {"ones"}, {Attr::tensor("value", tensorProto("", DType::Float32, {1}, rawBytes(std::vector<float>{1.f})))});
  m.node("Add", {"x", "ones"}, {"y"});
  m.output("y", DType::Float32, {4, 8});
  Graph before = load(m);
  Graph g = load(m);
  EXPECT_EQ(run(g, "constant_folding"), 1);
  EXPECT_EQ(countOps(g, "ConstantOfShape"), 0);
  expectSameOutputs(before, g, {{"x", randomTensor({4, 8}, 6)}});
}

KILN_TEST(pass_shape_folding, static_reshape_chain_becomes_one_reshape) {
  // The usual export of x.view(x.size(0), -1): Shape -> Gather -> Unsqueeze -> Concat -> Reshape.
  ModelBuilder m;
  m.input("x", DType::Float32, {2, 3, 4});
  m.initializer("i0", DType::Int64, {}, i64({0}));
  m.initializer("i1", DType::Int64, {}, i64({1}));
  m.initializer("i2", DType::Int64, {}, i64({2}));
  m.initializer("axes", DType::Int64, {1}, i64({0}));
  m.node("Shape", {"x"}, {"s"});
  m.node("Gather", {"s", "i0"}, {"n"});
  m.node("Gather", {"s", "i1"}, {"c"});
  m.node("Gather", {"s", "i2"}, {"w"});
  m.node("Mul", {"c", "w"}, {"cw"});
  m.node("Unsqueeze", {"n", "axes"}, {"n1"});
  m.node("Unsqueeze", {"cw", "axes"}, {"cw1"});
  m.node("Concat", {"n1", "cw1"}, {"target"}, {Attr::i("axis", 0)});
  m.node("Reshape", {"x", "target"}, {"y"});
  m.output("y", DType::Float32, {2, 12});
  Graph before = load(m);
  Graph g = load(m);
  std::map<std::string, int> applied;
  optimizeGraph(g, 1, applied);
  EXPECT_EQ(liveNodes(g), 1);
  EXPECT_EQ(countOps(g, "Reshape"), 1);
  EXPECT_TRUE(g.values[g.nodes[0].inputs[1]].constant != nullptr);
  EXPECT_EQ(g.values[g.outputs[0]].shape.toString(), std::string("[2,12]"));
  EXPECT_TRUE(applied["shape_folding"] >= 1);
  expectSameOutputs(before, g, {{"x", randomTensor({2, 3, 4}, 7)}});
}

KILN_TEST(pass_shape_folding, folds_known_dims_of_a_dynamic_shape) {
  ModelBuilder m;
  m.input("x", DType::Float32, {"batch", 3, 4});
  m.initializer("i0", DType::Int64, {}, i64({0}));
  m.initializer("i12", DType::Int64, {2}, i64({1, -1}));
  m.initializer("starts", DType::Int64, {1}, i64({1}));
  m.initializer("ends", DType::Int64, {1}, i64({3}));
  m.node("Shape", {"x"}, {"s"});
  m.node("Gather", {"s", "i0"}, {"n"});     // the batch: stays dynamic
  m.node("Gather", {"s", "i12"}, {"cw"});   // [3, 4]: folds
  m.node("Slice", {"s", "starts", "ends"}, {"tail"});  // [3, 4]: folds
  m.node("Size", {"x"}, {"size"});          // needs the batch: stays
  m.node("Shape", {"x"}, {"s2"}, {Attr::i("start", -2)});  // [3, 4]: folds
  m.output("n", DType::Int64, {});
  m.output("cw_out", DType::Int64, {2});
  m.output("size", DType::Int64, {});
  m.node("Add", {"cw", "tail"}, {"sum"});
  m.node("Add", {"sum", "s2"}, {"cw_out"});
  Graph g = load(m);
  EXPECT_EQ(run(g, "shape_folding"), 3);
  EXPECT_EQ(countOps(g, "Gather"), 1);
  EXPECT_EQ(countOps(g, "Slice"), 0);
  EXPECT_EQ(countOps(g, "Size"), 1);
  const Tensor* cw = g.values[*g.findValue("cw")].constant.get();
  EXPECT_TRUE(cw != nullptr);
  EXPECT_EQ(cw->ptr<int64_t>()[0], (int64_t)3);
  EXPECT_EQ(cw->ptr<int64_t>()[1], (int64_t)4);
  Tensor x = randomTensor({5, 3, 4}, 8);
  std::vector<Tensor> out = referenceRun(g, {{"x", x}});
  EXPECT_EQ(out[0].ptr<int64_t>()[0], (int64_t)5);
  EXPECT_EQ(out[1].ptr<int64_t>()[0], (int64_t)9);
  EXPECT_EQ(out[2].ptr<int64_t>()[0], (int64_t)60);
}

KILN_TEST(pass_shape_folding, size_of_static_input) {
  ModelBuilder m;
  m.input("x", DType::Float32, {2, 5});
  m.node("Size", {"x"}, {"n"});
  m.node("Cast", {"n"}, {"nf"}, {Attr::i("to", 1)});
  m.node("Add", {"x", "nf"}, {"y"});
  m.output("y", DType::Float32, {2, 5});
  Graph before = load(m);
  Graph g = load(m);
  std::map<std::string, int> applied;
  optimizeGraph(g, 1, applied);
  EXPECT_EQ(liveNodes(g), 1);
  EXPECT_EQ(applied["shape_folding"], 1);
  EXPECT_EQ(applied["constant_folding"], 1);
  expectSameOutputs(before, g, {{"x", randomTensor({2, 5}, 9)}});
}

KILN_TEST(pass_pipeline, level_zero_changes_nothing) {
  ModelBuilder m;
  m.input("x", DType::Float32, {2});
  m.node("Identity", {"x"}, {"a"});
  m.node("Relu", {"a"}, {"y"});
  m.output("y", DType::Float32, {2});
  Graph g = load(m);
  std::map<std::string, int> applied;
  EXPECT_EQ(optimizeGraph(g, 0, applied), 0);
  EXPECT_EQ(liveNodes(g), 2);
  EXPECT_TRUE(applied.empty());
  EXPECT_TRUE(findPass("conv_fusion") != nullptr);
  EXPECT_EQ(findPass("conv_fusion")->minLevel, 2);
  EXPECT_TRUE(findPass("nope") == nullptr);
}

KILN_TEST(pass_reshape_target, dims_of_the_data_become_zeros) {
  // x.view(x.size(0), x.size(1), 2, 4) and x.view(x.size()[:-2] + (8,)) with dynamic dims.
  ModelBuilder m;
  m.input("x", DType::Float32, {"batch", "seq", 8});
  m.initializer("i0", DType::Int64, {}, i64({0}));
  m.initializer("i1", DType::Int64, {}, i64({1}));
  m.initializer("axes", DType::Int64, {1}, i64({0}));
  m.initializer("heads", DType::Int64, {2}, i64({2, 4}));
  m.initializer("zero", DType::Int64, {1}, i64({0}));
  m.initializer("minus2", DType::Int64, {1}, i64({-2}));
  m.initializer("eight", DType::Int64, {1}, i64({8}));
  m.node("Shape", {"x"}, {"s"});
  m.node("Gather", {"s", "i0"}, {"n"});
  m.node("Gather", {"s", "i1"}, {"l"});
  m.node("Unsqueeze", {"n", "axes"}, {"n1"});
  m.node("Unsqueeze", {"l", "axes"}, {"l1"});
  m.node("Concat", {"n1", "l1", "heads"}, {"target"}, {Attr::i("axis", 0)});
  m.node("Reshape", {"x", "target"}, {"split"});
  m.node("Shape", {"split"}, {"s2"});
  m.node("Slice", {"s2", "zero", "minus2"}, {"lead"});
  m.node("Concat", {"lead", "eight"}, {"target2"}, {Attr::i("axis", 0)});
  m.node("Reshape", {"split", "target2"}, {"y"});
  m.output("split", DType::Float32, {"batch", "seq", 2, 4});
  m.output("y", DType::Float32, {"batch", "seq", 8});
  Graph before = load(m);
  Graph g = load(m);
  EXPECT_EQ(run(g, "reshape_target_folding"), 2);
  for (const Node& n : g.nodes) {
    if (n.opType != "Reshape") continue;
    const Tensor* t = g.values[n.inputs[1]].constant.get();
    EXPECT_TRUE(t != nullptr);
    EXPECT_EQ(t->ptr<int64_t>()[0], (int64_t)0);
    EXPECT_EQ(t->ptr<int64_t>()[1], (int64_t)0);
  }
  EXPECT_EQ(g.values[*g.findValue("split")].shape.toString(), std::string("[batch,seq,2,4]"));
  std::map<std::string, int> applied;
  optimizeGraph(g, 1, applied);
  EXPECT_EQ(liveNodes(g), 2);  // the two Reshapes; the shape arithmetic is dead
  expectSameOutputs(before, g, {{"x", randomTensor({3, 5, 8}, 10)}});
}

KILN_TEST(pass_reshape_target, dims_moved_elsewhere_are_left_alone) {
  ModelBuilder m;
  m.input("x", DType::Float32, {"a", "b"});
  m.initializer("i0", DType::Int64, {}, i64({0}));
  m.initializer("i1", DType::Int64, {}, i64({1}));
  m.initializer("axes", DType::Int64, {1}, i64({0}));
  m.node("Shape", {"x"}, {"s"});
  m.node("Gather", {"s", "i0"}, {"n"});
  m.node("Gather", {"s", "i1"}, {"l"});
  m.node("Unsqueeze", {"n", "axes"}, {"n1"});
  m.node("Unsqueeze", {"l", "axes"}, {"l1"});
  m.node("Concat", {"l1", "n1"}, {"target"}, {Attr::i("axis", 0)});  // [b, a]: a real reshape
  m.node("Reshape", {"x", "target"}, {"y"});
  m.output("y", DType::Float32, {"b", "a"});
  Graph g = load(m);
  EXPECT_EQ(run(g, "reshape_target_folding"), 0);
}
