// Tests for the inference driver (inferShapes), evaluateNode and interpretGraph. They use the
// shape ops (Shape, Reshape, Identity, Unsqueeze) and a few test-only ops in domain "kiln.test"
// registered below, so they do not depend on other op families.
#include "backends/kernel.h"
#include "core/error.h"
#include "graph/ir.h"
#include "graph/shape_inference.h"
#include "onnx/model_reader.h"
#include "onnx_builder.h"
#include "ops/schema.h"
#include "test.h"

using namespace kiln;
using namespace onnx_builder;

namespace {

const char* kTestDomain = "kiln.test";

// kiln.test.Halve: int64 tensor -> each element / 2 (shape unchanged). Only a kernel computes the
// values, so a concrete result proves constant propagation ran the CPU kernel.
void inferHalve(InferContext& ctx) {
  if (!ctx.hasInput(0)) ctx.error("input 0 is required");
  if (ctx.inputTypes[0] != DType::Int64) ctx.error("expects int64");
  ctx.setOutput(0, DType::Int64, ctx.inputShapes[0]);
}

class HalveKernel : public Kernel {
 public:
  void run(KernelContext& ctx) const override {
    const Tensor& in = *ctx.inputs[0];
    Tensor& out = *ctx.outputs[0];
    for (int64_t i = 0; i < in.numel(); i++) out.ptr<int64_t>()[i] = in.ptr<int64_t>()[i] / 2;
  }
  std::string name() const override { return "test.halve"; }
};

// kiln.test.Positives: data-dependent output (the positive elements of a float tensor, 1-D).
void inferPositives(InferContext& ctx) {
  SymShape s;
  s.hasRank = true;
  s.dims.push_back(ctx.freshDim());
  ctx.setOutput(0, ctx.inputTypes[0], s);
}

class PositivesKernel : public Kernel {
 public:
  void run(KernelContext& ctx) const override {
    const Tensor& in = *ctx.inputs[0];
    std::vector<float> keep;
    for (int64_t i = 0; i < in.numel(); i++) {
      if (in.ptr<float>()[i] > 0) keep.push_back(in.ptr<float>()[i]);
    }
    Tensor& out = ctx.allocateOutput(0, DType::Float32, {static_cast<int64_t>(keep.size())});
    for (size_t i = 0; i < keep.size(); i++) out.ptr<float>()[i] = keep[i];
  }
  std::string name() const override { return "test.positives"; }
};

KILN_REGISTER_SCHEMA(TestHalve, (OpSchema{kTestDomain, "Halve", 1, inferHalve}));
KILN_REGISTER_SCHEMA(TestPositives, (OpSchema{kTestDomain, "Positives", 1, inferPositives, true}));
KILN_REGISTER_KERNEL(TestHalve, (KernelDef{"cpu", kTestDomain, "Halve", 1,
                                           [](const KernelCreateInfo&) { return std::make_unique<HalveKernel>(); }}));
KILN_REGISTER_KERNEL(TestPositives,
                     (KernelDef{"cpu", kTestDomain, "Positives", 1,
                                [](const KernelCreateInfo&) { return std::make_unique<PositivesKernel>(); }}));

Graph read(const ModelBuilder& m) {
  auto bytes = m.bytes();
  return readModel(bytes.data(), bytes.size());
}

const Value& valueNamed(const Graph& g, const std::string& name) {
  auto id = g.findValue(name);
  if (!id) throw kiln_test::Failure("no value named " + name);
  return g.values[*id];
}

Tensor floats(const Shape& shape, const std::vector<float>& v) {
  Tensor t = Tensor::allocate(DType::Float32, shape);
  for (size_t i = 0; i < v.size(); i++) t.ptr<float>()[i] = v[i];
  return t;
}

ModelBuilder halveModel() {
  ModelBuilder m;
  m.opset(kTestDomain, 1);
  m.input("x", DType::Float32, {2, 6});
  m.input("z", DType::Float32, {3});
  m.node("Shape", {"x"}, {"s"});                              // [2,6], computed by the schema
  m.node("Halve", {"s"}, {"t"}, {}, "halve", kTestDomain);     // [1,3], computed by the CPU kernel
  m.node("Reshape", {"z", "t"}, {"y"}, {}, "reshape");
  m.output("y");
  return m;
}

}  // namespace

KILN_TEST(shape_inference, constants_propagate_through_kernels) {
  Graph g = read(halveModel());
  inferShapes(g);
  EXPECT_EQ(valueNamed(g, "s").shape.toString(), "[2]");
  EXPECT_TRUE(valueNamed(g, "t").dtype == DType::Int64);
  EXPECT_EQ(valueNamed(g, "y").shape.toString(), "[1,3]");
  EXPECT_TRUE(valueNamed(g, "y").dtype == DType::Float32);
  EXPECT_TRUE(valueNamed(g, "t").constant == nullptr);  // propagation does not fold
}

KILN_TEST(shape_inference, symbolic_dims_flow) {
  ModelBuilder m;
  m.input("x", DType::Float32, {"batch", 4});
  m.initializer("axes", DType::Int64, {1}, std::vector<int64_t>{0});
  m.node("Identity", {"x"}, {"a"});
  m.node("Unsqueeze", {"a", "axes"}, {"b"});
  m.output("b");
  Graph g = read(m);
  inferShapes(g);
  EXPECT_EQ(valueNamed(g, "a").shape.toString(), "[batch,4]");
  EXPECT_EQ(valueNamed(g, "b").shape.toString(), "[1,batch,4]");
}

KILN_TEST(shape_inference, unknown_ops_keep_declared_types) {
  ModelBuilder m;
  m.input("x", DType::Float32, {2, 3});
  m.node("NoSuchOp", {"x"}, {"a"}, {}, "mystery");
  m.node("Identity", {"a"}, {"b"});
  m.node("NoSuchOp", {"x"}, {"c"}, {}, "mystery2");
  m.node("Identity", {"c"}, {"d"});
  m.valueInfo("a", DType::Float32, {2, "n"});
  m.output("b");
  m.output("d");
  Graph g = read(m);
  inferShapes(g);
  EXPECT_EQ(valueNamed(g, "a").shape.toString(), "[2,n]");
  EXPECT_EQ(valueNamed(g, "b").shape.toString(), "[2,n]");  // inferred from the declaration
  EXPECT_TRUE(valueNamed(g, "c").dtype == DType::Undefined);
  EXPECT_TRUE(valueNamed(g, "d").dtype == DType::Undefined);  // nothing to infer from
  EXPECT_TRUE(!valueNamed(g, "d").shape.hasRank);
}

KILN_TEST(shape_inference, declared_dims_fill_what_inference_cannot) {
  ModelBuilder m;
  m.opset(kTestDomain, 1);
  m.input("x", DType::Float32, {5});
  m.node("Positives", {"x"}, {"p"}, {}, "pos", kTestDomain);
  m.valueInfo("p", DType::Float32, {"count"});
  m.output("p");
  Graph g = read(m);
  inferShapes(g);
  EXPECT_EQ(valueNamed(g, "p").shape.toString(), "[count]");  // declared symbol beats a fresh one
}

KILN_TEST(shape_inference, data_dependent_constants_get_concrete_shapes) {
  ModelBuilder m;
  m.opset(kTestDomain, 1);
  m.input("x", DType::Float32, {2});
  m.initializer("c", DType::Float32, {4}, std::vector<float>{1, -1, 2, 0});
  m.node("Positives", {"c"}, {"p"}, {}, "pos", kTestDomain);
  m.output("p");
  Graph g = read(m);
  inferShapes(g);
  EXPECT_EQ(valueNamed(g, "p").shape.toString(), "[2]");
}

KILN_TEST(shape_inference, schema_errors_name_the_node) {
  ModelBuilder m;
  m.input("x", DType::Float32, {2, 3});
  m.initializer("shape", DType::Int64, {1}, std::vector<int64_t>{4});
  m.node("Reshape", {"x", "shape"}, {"y"}, {}, "bad_reshape");
  m.output("y");
  Graph g = read(m);
  bool threw = false;
  try {
    inferShapes(g);
  } catch (const KilnError& e) {
    threw = true;
    EXPECT_TRUE(e.code() == ErrorCode::InvalidModel);
    EXPECT_TRUE(std::string(e.what()).find("bad_reshape") != std::string::npos);
  }
  EXPECT_TRUE(threw);
}

KILN_TEST(shape_inference, subgraph_captures_and_loop_inputs_are_typed) {
  GraphBuilder thenB("then");
  thenB.node("Identity", {"x"}, {"t"});
  thenB.output("t");
  GraphBuilder body("body");
  body.input("i", DType::Undefined, {});
  body.input("cond", DType::Undefined, {});
  body.input("v", DType::Undefined, {});
  body.node("Identity", {"cond"}, {"cond_out"});
  body.node("Identity", {"v"}, {"v_out"});
  body.output("cond_out");
  body.output("v_out");
  ModelBuilder m;
  m.input("c", DType::Bool, {});
  m.input("x", DType::Float32, {"n", 2});
  m.input("trip", DType::Int64, {});
  m.node("If", {"c"}, {"out"}, {Attr::graph("then_branch", thenB), Attr::graph("else_branch", thenB)}, "if");
  m.node("Loop", {"trip", "", "x"}, {"final"}, {Attr::graph("body", body)}, "loop");
  m.output("out");
  m.output("final");
  Graph g = read(m);
  inferShapes(g);
  const Node* iff = nullptr;
  const Node* loop = nullptr;
  for (const Node& n : g.nodes) {
    if (n.name == "if") iff = &n;
    if (n.name == "loop") loop = &n;
  }
  const Graph& tb = *iff->attrs.at("then_branch").g;
  EXPECT_EQ(valueNamed(tb, "t").shape.toString(), "[n,2]");
  EXPECT_TRUE(valueNamed(tb, "t").dtype == DType::Float32);
  const Graph& lb = *loop->attrs.at("body").g;
  EXPECT_TRUE(valueNamed(lb, "i").dtype == DType::Int64);
  EXPECT_TRUE(valueNamed(lb, "cond_out").dtype == DType::Bool);
  EXPECT_TRUE(valueNamed(lb, "v_out").dtype == DType::Float32);
}

KILN_TEST(shape_inference, fresh_symbols_do_not_collide) {
  ModelBuilder m;
  m.opset(kTestDomain, 1);
  m.input("x", DType::Float32, {"unk_7"});
  m.node("Positives", {"x"}, {"p"}, {}, "pos", kTestDomain);
  m.output("p");
  Graph g = read(m);
  inferShapes(g);
  EXPECT_EQ(valueNamed(g, "p").shape.toString(), "[unk_8]");
  inferShapes(g);  // idempotent: the value keeps its symbol
  EXPECT_EQ(valueNamed(g, "p").shape.toString(), "[unk_8]");
}

KILN_TEST(shape_inference, evaluate_node) {
  Graph g = read(halveModel());
  const Node* halve = nullptr;
  for (const Node& n : g.nodes) {
    if (n.name == "halve") halve = &n;
  }
  Tensor s = Tensor::allocate(DType::Int64, {3});
  s.ptr<int64_t>()[0] = 8;
  s.ptr<int64_t>()[1] = 5;
  s.ptr<int64_t>()[2] = -4;
  std::vector<Tensor> out = evaluateNode(g, *halve, {&s});
  EXPECT_EQ(out.size(), size_t(1));
  EXPECT_EQ(out[0].ptr<int64_t>()[0], 4);
  EXPECT_EQ(out[0].ptr<int64_t>()[1], 2);
  EXPECT_EQ(out[0].ptr<int64_t>()[2], -2);
  Tensor f = floats({2}, {1, 2});
  EXPECT_THROWS_WITH(evaluateNode(g, *halve, {&f}), "node 'halve' (Halve): expects int64");

  Node unknown;
  unknown.name = "u1";
  unknown.opType = "NoSuchOp";
  EXPECT_THROWS_WITH(evaluateNode(g, unknown, {}), "unsupported operator NoSuchOp (opset 17) at node 'u1'");
}

KILN_TEST(shape_inference, interpret_graph) {
  Graph g = read(halveModel());
  std::vector<Tensor> out = interpretGraph(g, {{"x", Tensor::allocate(DType::Float32, {2, 6})},
                                               {"z", floats({3}, {1, 2, 3})}});
  EXPECT_EQ(out.size(), size_t(1));
  EXPECT_EQ(shapeToString(out[0].shape), "[1,3]");
  EXPECT_NEAR(out[0].ptr<float>()[2], 3, 0);
  EXPECT_TRUE(out[0].holder != nullptr);

  EXPECT_THROWS_WITH(interpretGraph(g, {{"x", Tensor::allocate(DType::Float32, {2, 6})}}), "missing input 'z'");
  EXPECT_THROWS_WITH(interpretGraph(g, {{"x", Tensor::allocate(DType::Float32, {2, 6})},
                                        {"z", Tensor::allocate(DType::Int32, {3})}}),
                     "input 'z' is int32, the model expects float32");
  EXPECT_THROWS_WITH(interpretGraph(g, {{"x", Tensor::allocate(DType::Float32, {2, 5})},
                                        {"z", floats({3}, {1, 2, 3})}}),
                     "input 'x' has shape [2,5], the model expects [2,6]");
  EXPECT_THROWS_WITH(interpretGraph(g, {{"x", Tensor::allocate(DType::Float32, {2, 6})},
                                        {"z", floats({3}, {1, 2, 3})},
                                        {"w", floats({1}, {1})}}),
                     "unknown input 'w'");
}

KILN_TEST(shape_inference, interpret_checks_symbols_across_inputs) {
  ModelBuilder m;
  m.input("a", DType::Float32, {"n"});
  m.input("b", DType::Float32, {"n"});
  m.node("Identity", {"a"}, {"y"});
  m.output("y");
  Graph g = read(m);
  EXPECT_THROWS_WITH(interpretGraph(g, {{"a", floats({2}, {1, 2})}, {"b", floats({3}, {1, 2, 3})}}),
                     "input 'b' has shape [3], the model expects [n]");
  auto out = interpretGraph(g, {{"a", floats({2}, {1, 2})}, {"b", floats({2}, {1, 2})}});
  EXPECT_NEAR(out[0].ptr<float>()[1], 2, 0);
}
