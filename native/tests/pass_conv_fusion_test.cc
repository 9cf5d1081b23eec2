// Conv + bias Add + residual Add + activation -> kiln.FusedConv.
#include "pass_test_util.h"

using namespace pass_test;

namespace {

ModelBuilder convModel(const std::string& convOut = "c") {
  ModelBuilder m;
  m.input("x", DType::Float32, {1, 3, 5, 5});
  m.initializer("w", DType::Float32, {4, 3, 3, 3}, randomFloats(108, 50));
  m.initializer("b", DType::Float32, {4}, randomFloats(4, 51));
  m.node("Conv", {"x", "w", "b"}, {convOut}, {Attr::ints("pads", {1, 1, 1, 1})}, "conv");
  return m;
}

std::vector<std::pair<std::string, Tensor>> convInput() { return {{"x", randomTensor({1, 3, 5, 5}, 52, -2, 2)}}; }

}  // namespace

KILN_TEST(pass_conv_fusion, bias_add_and_relu) {
  ModelBuilder m = convModel();
  m.initializer("bias", DType::Float32, {4, 1, 1}, randomFloats(4, 53));
  m.node("Add", {"bias", "c"}, {"cb"});
  m.node("Relu", {"cb"}, {"y"});
  m.output("y", DType::Float32, {1, 4, 5, 5});
  Graph before = load(m);
  Graph g = load(m);
  EXPECT_EQ(run(g, "conv_fusion"), 1);
  EXPECT_EQ(liveNodes(g), 1);
  const Node* f = findOp(g, "FusedConv");
  EXPECT_TRUE(f != nullptr);
  EXPECT_EQ(f->name, std::string("conv"));
  EXPECT_EQ(f->getString("activation", ""), std::string("Relu"));
  EXPECT_EQ(f->inputs.size(), (size_t)3);
  EXPECT_EQ(f->getInts("pads").size(), (size_t)4);
  EXPECT_EQ(g.values[g.outputs[0]].name, std::string("y"));
  EXPECT_EQ(g.opsetFor("kiln"), (int64_t)1);
  expectSameOutputs(before, g, convInput());
}

KILN_TEST(pass_conv_fusion, resnet_residual_and_relu) {
  ModelBuilder m = convModel();
  m.input("skip", DType::Float32, {1, 4, 5, 5});
  m.node("Add", {"skip", "c"}, {"sum"});
  m.node("Relu", {"sum"}, {"y"});
  m.output("y", DType::Float32, {1, 4, 5, 5});
  Graph before = load(m);
  Graph g = load(m);
  EXPECT_EQ(run(g, "conv_fusion"), 1);
  const Node* f = findOp(g, "FusedConv");
  EXPECT_TRUE(f != nullptr && f->inputs.size() == 4);
  EXPECT_EQ(g.values[f->inputs[3]].name, std::string("skip"));
  auto inputs = convInput();
  inputs.push_back({"skip", randomTensor({1, 4, 5, 5}, 54)});
  expectSameOutputs(before, g, inputs);
}

KILN_TEST(pass_conv_fusion, every_activation) {
  struct Case {
    std::string op;
    std::vector<Attr> attrs;
    std::vector<std::string> extraInputs;
    Activation want;
  };
  std::vector<Case> cases = {
      {"LeakyRelu", {Attr::f("alpha", 0.2f)}, {}, Activation::LeakyRelu},
      {"Sigmoid", {}, {}, Activation::Sigmoid},
      {"Tanh", {}, {}, Activation::Tanh},
      {"Clip", {}, {"zero", "six"}, Activation::Clip},  // ReLU6
      {"Clip", {}, {"", "six"}, Activation::Clip},      // upper bound only
      {"HardSigmoid", {Attr::f("alpha", 0.3f)}, {}, Activation::HardSigmoid},
      {"HardSwish", {}, {}, Activation::HardSwish},
  };
  for (const Case& c : cases) {
    ModelBuilder m = convModel();
    m.initializer("zero", DType::Float32, {}, std::vector<float>{0});
    m.initializer("six", DType::Float32, {}, std::vector<float>{6});
    std::vector<std::string> in = {"c"};
    in.insert(in.end(), c.extraInputs.begin(), c.extraInputs.end());
    m.node(c.op, in, {"y"}, c.attrs);
    m.output("y", DType::Float32, {1, 4, 5, 5});
    Graph before = load(m);
    Graph g = load(m);
    EXPECT_EQ(run(g, "conv_fusion"), 1);
    const Node* f = findOp(g, "FusedConv");
    EXPECT_TRUE(f != nullptr);
    EXPECT_EQ(f->getString("activation", ""), std::string(activationName(c.want)));
    expectSameOutputs(before, g, convInput());
  }
}

KILN_TEST(pass_conv_fusion, silu_swish) {
  ModelBuilder m = convModel();
  m.node("Sigmoid", {"c"}, {"s"});
  m.node("Mul", {"s", "c"}, {"y"});
  m.output("y", DType::Float32, {1, 4, 5, 5});
  Graph before = load(m);
  Graph g = load(m);
  EXPECT_EQ(run(g, "conv_fusion"), 1);
  EXPECT_EQ(liveNodes(g), 1);
  EXPECT_EQ(findOp(g, "FusedConv")->getString("activation", ""), std::string("Silu"));
  expectSameOutputs(before, g, convInput());
}

KILN_TEST(pass_conv_fusion, bias_only_stays_a_conv) {
  ModelBuilder m = convModel();
  m.initializer("bias", DType::Float32, {1, 4, 1, 1}, randomFloats(4, 55));
  m.node("Add", {"c", "bias"}, {"y"});
  m.output("y", DType::Float32, {1, 4, 5, 5});
  Graph before = load(m);
  Graph g = load(m);
  EXPECT_EQ(run(g, "conv_fusion"), 1);
  EXPECT_EQ(liveNodes(g), 1);
  EXPECT_EQ(countOps(g, "Conv"), 1);
  expectSameOutputs(before, g, convInput());
}

KILN_TEST(pass_conv_fusion, near_misses_are_left_alone) {
  ModelBuilder m = convModel("c1");
  m.node("Conv", {"x", "w", "b"}, {"c2"}, {Attr::ints("pads", {1, 1, 1, 1})}, "conv2");
  m.node("Conv", {"x", "w", "b"}, {"c3"}, {Attr::ints("pads", {1, 1, 1, 1})}, "conv3");
  m.node("Conv", {"x", "w", "b"}, {"c4"}, {Attr::ints("pads", {1, 1, 1, 1})}, "conv4");
  m.node("Conv", {"x", "w", "b"}, {"c5"}, {Attr::ints("pads", {1, 1, 1, 1})}, "conv5");
  m.input("lo", DType::Float32, {});
  m.initializer("row", DType::Float32, {5}, randomFloats(5, 56));        // along W, not channels
  m.initializer("big", DType::Float32, {2, 4, 5, 5}, randomFloats(200, 57));  // broadcasts the batch up
  m.initializer("six", DType::Float32, {}, std::vector<float>{6});
  // 1. Conv output read twice (Relu and a graph output).
  m.node("Relu", {"c1"}, {"y1"});
  m.output("c1", DType::Float32, {1, 4, 5, 5});
  // 2. A bias that is not per channel.
  m.node("Add", {"c2", "row"}, {"y2"});
  // 3. A "residual" that enlarges the output.
  m.node("Add", {"c3", "big"}, {"y3"});
  // 4. Clip with a bound that is not a constant.
  m.node("Clip", {"c4", "lo", "six"}, {"y4"});
  // 5. Relu whose input is also read elsewhere.
  m.node("Relu", {"c5"}, {"y5"});
  m.node("Sigmoid", {"c5"}, {"y5b"});
  for (const char* out : {"y1", "y2", "y4", "y5", "y5b"}) m.output(out, DType::Float32, {1, 4, 5, 5});
  m.output("y3", DType::Float32, {2, 4, 5, 5});
  Graph g = load(m);
  EXPECT_EQ(run(g, "conv_fusion"), 0);
  EXPECT_EQ(countOps(g, "FusedConv", "kiln"), 0);
}
