// Writes a few small valid models (made with tests/onnx_builder.h) into a folder, as seeds for the
// reader fuzzer. Built and run by hand:
//   g++ -std=c++17 -I../src -I../tests make_seeds.cc -o /tmp/make_seeds && /tmp/make_seeds corpus
#include <fstream>
#include <string>

#include "onnx_builder.h"

using namespace onnx_builder;

static void save(const std::string& dir, const std::string& name, const std::string& bytes) {
  std::ofstream(dir + "/seed_" + name + ".onnx", std::ios::binary) << bytes;
}

int main(int argc, char** argv) {
  std::string dir = argc > 1 ? argv[1] : ".";
  {
    ModelBuilder m;
    m.input("x", DType::Float32, {"batch", 3});
    m.initializer("w", DType::Float32, {3}, std::vector<float>{1, 2, 3});
    m.initializer("shape", DType::Int64, {2}, std::vector<int64_t>{-1, 3});
    m.node("Mul", {"x", "w"}, {"m"});
    m.node("Reshape", {"m", "shape"}, {"r"}, {Attr::i("allowzero", 0)});
    m.node("Softmax", {"r"}, {"y"}, {Attr::i("axis", -1)});
    m.valueInfo("m", DType::Float32, {"batch", 3});
    m.output("y", DType::Float32, {"batch", 3});
    save(dir, "mul_reshape_softmax", m.serialize());
  }
  {
    GraphBuilder thenB("then"), elseB("else");
    thenB.node("Relu", {"x"}, {"t"});
    thenB.output("t", DType::Float32, {2});
    elseB.node("Neg", {"x"}, {"e"});
    elseB.output("e", DType::Float32, {2});
    ModelBuilder m;
    m.input("c", DType::Bool, {});
    m.input("x", DType::Float32, {2});
    m.node("If", {"c"}, {"o"}, {Attr::graph("then_branch", thenB), Attr::graph("else_branch", elseB)});
    m.output("o");
    save(dir, "if_capture", m.serialize());
  }
  {
    GraphBuilder body("body");
    body.input("i", DType::Int64, {});
    body.input("cond", DType::Bool, {});
    body.input("v", DType::Float32, {2});
    body.node("Add", {"v", "v"}, {"v2"});
    body.node("Identity", {"cond"}, {"cond_out"});
    body.output("cond_out");
    body.output("v2");
    ModelBuilder m;
    m.input("n", DType::Int64, {});
    m.input("v0", DType::Float32, {2});
    m.node("Loop", {"n", "", "v0"}, {"vN"}, {Attr::graph("body", body)});
    m.output("vN");
    save(dir, "loop", m.serialize());
  }
  {
    FunctionBuilder f;
    f.name = "ScaledRelu";
    f.domain = "custom";
    f.inputs = {"X"};
    f.outputs = {"Y"};
    f.attributes = {"alpha"};
    f.node("LeakyRelu", {"X"}, {"T"}, {Attr::ref("alpha", 1, "alpha")});
    f.node("Relu", {"T"}, {"Y"});
    ModelBuilder m;
    m.opset("custom", 1);
    m.functions.push_back(f);
    m.input("x", DType::Float32, {2});
    m.node("ScaledRelu", {"x"}, {"y"}, {Attr::f("alpha", 0.5f)}, "call", "custom");
    m.output("y");
    save(dir, "function", m.serialize());
  }
  {
    ModelBuilder m;
    m.input("x", DType::Float32, {1, 2, 4, 4});
    m.initializer("w", DType::Float32, {2, 2, 3, 3}, std::vector<float>(36, 0.1f));
    m.initializer("b", DType::Float32, {2}, std::vector<float>{0, 1});
    m.node("Conv", {"x", "w", "b"}, {"c"}, {Attr::ints("pads", {1, 1, 1, 1}), Attr::ints("kernel_shape", {3, 3})});
    m.node("Relu", {"c"}, {"r"});
    m.node("GlobalAveragePool", {"r"}, {"p"});
    m.node("Flatten", {"p"}, {"y"});
    m.output("y");
    save(dir, "conv", m.serialize());
  }
  {
    ModelBuilder m;
    m.input("x", DType::Float32, {2, 3});
    m.node("Shape", {"x"}, {"s"});
    m.node("ConstantOfShape", {"s"}, {"z"}, {Attr::tensor("value", tensorProto("", DType::Float32, {1}, rawBytes(std::vector<float>{2})))});
    m.node("Add", {"x", "z"}, {"y"});
    m.output("y");
    save(dir, "shape_constant_of_shape", m.serialize());
  }
  return 0;
}
