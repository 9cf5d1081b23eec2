// Tests for the IR (graph/ir.cc), the schema/kernel registries and the common inference helpers.
#include "backends/kernel.h"
#include "core/error.h"
#include "graph/fused_ops.h"
#include "graph/ir.h"
#include "ops/schema.h"
#include "test.h"

using namespace kiln;

namespace {

Node makeNode(const std::string& name, const std::string& op, std::vector<ValueId> in, std::vector<ValueId> out) {
  Node n;
  n.name = name;
  n.opType = op;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  return n;
}

SymShape sym(std::vector<Dim> dims) {
  SymShape s;
  s.hasRank = true;
  s.dims = std::move(dims);
  return s;
}

}  // namespace

KILN_TEST(shape_ir, dim_and_shape_to_string) {
  EXPECT_EQ(Dim::known(3).toString(), "3");
  EXPECT_EQ(Dim::sym("batch").toString(), "batch");
  EXPECT_EQ(Dim{}.toString(), "?");
  EXPECT_EQ(SymShape::unknown().toString(), "?");
  EXPECT_EQ(sym({Dim::sym("batch"), Dim::known(3)}).toString(), "[batch,3]");
  EXPECT_EQ(SymShape::of({}).toString(), "[]");
  EXPECT_TRUE(SymShape::of({2, 3}).isConcrete());
  EXPECT_TRUE(!sym({Dim::sym("n")}).isConcrete());
  EXPECT_TRUE(!SymShape::unknown().isConcrete());
  EXPECT_TRUE(SymShape::of({2, 3}).concrete() == (Shape{2, 3}));
  EXPECT_THROWS_WITH(sym({Dim::sym("n")}).concrete(), "non-concrete");
}

KILN_TEST(shape_ir, node_getters_check_kinds) {
  Node n = makeNode("c1", "Conv", {}, {});
  Attribute a;
  a.kind = Attribute::Kind::Ints;
  a.ints = {1, 2};
  n.attrs["pads"] = a;
  Attribute b;
  b.kind = Attribute::Kind::Float;
  b.f = 0.5f;
  n.attrs["alpha"] = b;
  EXPECT_EQ(n.getInts("pads").size(), size_t(2));
  EXPECT_EQ(n.getInt("group", 7), 7);
  EXPECT_NEAR(n.getFloat("alpha", 0), 0.5, 1e-9);
  EXPECT_EQ(n.getString("auto_pad", "NOTSET"), "NOTSET");
  EXPECT_THROWS_WITH(n.getInt("pads", 0), "node 'c1' (Conv) attribute 'pads' is ints, expected int");
  EXPECT_THROWS_WITH(n.getString("alpha", ""), "expected string");
}

KILN_TEST(shape_ir, graph_build_find_consumers) {
  Graph g;
  g.name = "main";
  ValueId x = g.addValue("x", DType::Float32, SymShape::of({2}));
  g.inputs.push_back(x);
  Tensor w = Tensor::allocate(DType::Float32, {2});
  ValueId c = g.addConstant("w", w);
  EXPECT_TRUE(g.values[c].constant != nullptr);
  EXPECT_EQ(g.values[c].shape.toString(), "[2]");
  ValueId y = g.addValue("y");
  ValueId z = g.addValue("z");
  EXPECT_EQ(g.addNode(makeNode("add", "Add", {x, c}, {y})), 0);
  EXPECT_EQ(g.addNode(makeNode("mul", "Mul", {y, y}, {z})), 1);
  g.outputs.push_back(z);
  EXPECT_EQ(g.values[y].producer, 0);
  EXPECT_EQ(*g.findValue("z"), z);
  EXPECT_TRUE(!g.findValue("nope").has_value());
  auto cons = g.consumers();
  EXPECT_EQ(cons[y].size(), size_t(1));  // Mul reads y twice but is one consumer
  EXPECT_EQ(cons[x][0], 0);
  EXPECT_TRUE(g.isGraphOutput(z));
  EXPECT_TRUE(!g.isGraphOutput(y));
  g.opsets[""] = 17;
  EXPECT_EQ(g.opsetFor(""), 17);
  EXPECT_EQ(g.opsetFor("ai.onnx"), 17);
  EXPECT_EQ(g.opsetFor("com.microsoft"), 0);
  Graph sub;
  sub.parent = &g;
  EXPECT_EQ(sub.opsetFor(""), 17);
  EXPECT_THROWS_WITH(g.addNode(makeNode("bad", "Relu", {99}, {})), "out of range");
}

KILN_TEST(shape_ir, compact_sorts_and_drops_dead) {
  Graph g;
  ValueId x = g.addValue("x");
  g.inputs.push_back(x);
  ValueId a = g.addValue("a"), b = g.addValue("b"), c = g.addValue("c");
  // Out of order: b's consumer comes first.
  g.addNode(makeNode("n2", "Relu", {b}, {c}));
  g.addNode(makeNode("dead", "Relu", {x}, {g.addValue("unused")}));
  g.addNode(makeNode("n1", "Relu", {a}, {b}));
  g.addNode(makeNode("n0", "Relu", {x}, {a}));
  g.nodes[1].dead = true;
  g.outputs.push_back(c);
  g.compact();
  EXPECT_EQ(g.nodes.size(), size_t(3));
  EXPECT_EQ(g.nodes[0].name, "n0");
  EXPECT_EQ(g.nodes[1].name, "n1");
  EXPECT_EQ(g.nodes[2].name, "n2");
  EXPECT_EQ(g.values[c].producer, 2);
  EXPECT_EQ(g.values[a].producer, 0);
  EXPECT_EQ(g.values[g.findValue("unused").value()].producer, -1);
}

KILN_TEST(shape_ir, compact_detects_cycles) {
  Graph g;
  g.name = "loop";
  ValueId x = g.addValue("x");
  g.inputs.push_back(x);
  ValueId a = g.addValue("a"), b = g.addValue("b"), c = g.addValue("c");
  g.addNode(makeNode("pre", "Relu", {x}, {c}));
  g.addNode(makeNode("p", "Add", {c, b}, {a}));
  g.addNode(makeNode("q", "Relu", {a}, {b}));
  EXPECT_THROWS_WITH(g.compact(), "graph 'loop' has a cycle through node '");
  Graph self;
  ValueId s = self.addValue("s");
  self.addNode(makeNode("me", "Relu", {s}, {s}));
  EXPECT_THROWS_WITH(self.compact(), "cycle through node 'me' (Relu)");
}

KILN_TEST(shape_ir, compact_rejects_ssa_violations_and_undefined) {
  Graph g;
  ValueId x = g.addValue("x");
  g.inputs.push_back(x);
  ValueId y = g.addValue("y");
  g.addNode(makeNode("a", "Relu", {x}, {y}));
  g.addNode(makeNode("b", "Relu", {x}, {y}));
  EXPECT_THROWS_WITH(g.compact(), "produced by both node 'a' (Relu) and node 'b' (Relu)");
  Graph h;
  ValueId u = h.addValue("u");
  ValueId v = h.addValue("v");
  h.addNode(makeNode("n", "Relu", {u}, {v}));
  EXPECT_THROWS_WITH(h.compact(), "node 'n' (Relu) input 'u' is not defined");
  Graph k;
  ValueId in = k.addValue("in");
  k.inputs.push_back(in);
  k.addNode(makeNode("w", "Relu", {in}, {in}));
  EXPECT_THROWS_WITH(k.compact(), "graph input but is also produced");
}

KILN_TEST(shape_ir, subgraph_captures_are_dependencies) {
  Graph g;
  ValueId cond = g.addValue("cond");
  g.inputs.push_back(cond);
  ValueId x = g.addValue("x"), out = g.addValue("out");
  auto body = std::make_shared<Graph>();
  body->parent = &g;
  ValueId capX = body->addValue("x");  // capture of the outer x
  ValueId r = body->addValue("r");
  body->addNode(makeNode("inner", "Relu", {capX}, {r}));
  body->outputs.push_back(r);
  EXPECT_TRUE(outerScopeNames(*body) == (std::vector<std::string>{"x"}));
  Node iff = makeNode("if", "If", {cond}, {out});
  Attribute a;
  a.kind = Attribute::Kind::Graph;
  a.g = body;
  iff.attrs["then_branch"] = a;
  g.addNode(iff);                                   // If before x's producer: compact must reorder
  g.addNode(makeNode("mk", "Relu", {cond}, {x}));
  g.outputs.push_back(out);
  auto cons = g.consumers();
  EXPECT_EQ(cons[x].size(), size_t(1));
  EXPECT_EQ(cons[x][0], 0);
  g.compact();
  EXPECT_EQ(g.nodes[0].name, "mk");
  EXPECT_EQ(g.nodes[1].name, "if");
  // Replacing x renames the body's capture.
  ValueId x2 = g.addValue("x2");
  g.replaceAllUses(x, x2);
  EXPECT_EQ(body->values[capX].name, "x2");
}

KILN_TEST(shape_ir, replace_all_uses) {
  Graph g;
  ValueId x = g.addValue("x"), y = g.addValue("y"), z = g.addValue("z");
  g.inputs.push_back(x);
  g.addNode(makeNode("id", "Identity", {x}, {y}));
  g.addNode(makeNode("r", "Relu", {y, y}, {z}));
  g.outputs = {y, z};
  g.replaceAllUses(y, x);
  EXPECT_EQ(g.nodes[1].inputs[0], x);
  EXPECT_EQ(g.nodes[1].inputs[1], x);
  EXPECT_EQ(g.outputs[0], x);
}

KILN_TEST(shape_ir, broadcast_symbolic) {
  Node n = makeNode("add", "Add", {0, 1}, {2});
  InferContext ctx(n, 13, 2, 1);
  int64_t counter = 0;
  ctx.symbolCounter = &counter;
  auto r = ctx.broadcast({sym({Dim::sym("batch"), Dim::known(1), Dim::known(4)}), SymShape::of({3, 1})});
  EXPECT_EQ(r.toString(), "[batch,3,4]");
  r = ctx.broadcast({sym({Dim::sym("n")}), sym({Dim::sym("n")})});
  EXPECT_EQ(r.toString(), "[n]");
  r = ctx.broadcast({sym({Dim::sym("n")}), SymShape::of({5})});
  EXPECT_EQ(r.toString(), "[5]");
  r = ctx.broadcast({sym({Dim::sym("a")}), sym({Dim::sym("b")})});
  EXPECT_EQ(r.toString(), "[unk_0]");
  r = ctx.broadcast({SymShape::of({0, 1}), SymShape::of({1, 7})});
  EXPECT_EQ(r.toString(), "[0,7]");
  r = ctx.broadcast({SymShape::of({}), SymShape::of({2})});
  EXPECT_EQ(r.toString(), "[2]");
  EXPECT_TRUE(!ctx.broadcast({SymShape::unknown(), SymShape::of({2})}).hasRank);
  EXPECT_THROWS_WITH(ctx.broadcast({SymShape::of({2, 3}), SymShape::of({4})}),
                     "node 'add' (Add): cannot broadcast shapes [2,3], [4]");
}

KILN_TEST(shape_ir, dim_arithmetic) {
  Node n = makeNode("m", "Reshape", {}, {});
  InferContext ctx(n, 13, 0, 0);
  int64_t counter = 5;
  ctx.symbolCounter = &counter;
  EXPECT_EQ(ctx.mul(Dim::known(3), Dim::known(4)).value, 12);
  EXPECT_EQ(ctx.mul(Dim::sym("b"), Dim::known(1)).symbol, "b");
  EXPECT_EQ(ctx.mul(Dim::sym("b"), Dim::known(0)).value, 0);
  EXPECT_EQ(ctx.mul(Dim::sym("b"), Dim::known(2)).symbol, "unk_5");
  EXPECT_EQ(ctx.add(Dim::sym("b"), Dim::known(0)).symbol, "b");
  EXPECT_EQ(ctx.add(Dim::known(2), Dim::known(5)).value, 7);
  EXPECT_EQ(counter, 6);
  EXPECT_THROWS_WITH(ctx.mul(Dim::known(int64_t(1) << 40), Dim::known(int64_t(1) << 40)), "overflows");
}

KILN_TEST(shape_ir, infer_context_basics) {
  Node n = makeNode("d", "Dropout", {0, kNoValue}, {1});
  InferContext ctx(n, 13, 2, 1);
  EXPECT_TRUE(ctx.hasInput(0));
  EXPECT_TRUE(!ctx.hasInput(1));
  EXPECT_TRUE(!ctx.intValues(0).has_value());
  Tensor t = Tensor::allocate(DType::Int32, {2});
  t.ptr<int32_t>()[0] = 4;
  t.ptr<int32_t>()[1] = -1;
  ctx.inputValues[0] = &t;
  EXPECT_EQ(ctx.intValues(0)->at(1), -1);
  ctx.inputTypes[0] = DType::Float32;
  ctx.inputShapes[0] = SymShape::of({2});
  inferUnchangedShape(ctx);
  ctx.setOutput(1, DType::Bool, SymShape::of({2}));  // omitted optional output: ignored
  EXPECT_EQ(ctx.outputShapes[0].toString(), "[2]");
  EXPECT_TRUE(ctx.outputTypes[0] == DType::Float32);
  EXPECT_THROWS_WITH(ctx.error("bad"), "node 'd' (Dropout): bad");
}

namespace {
void inferTestV1(InferContext& ctx) { ctx.setOutput(0, DType::Int8, SymShape::of({1})); }
void inferTestV5(InferContext& ctx) { ctx.setOutput(0, DType::Int16, SymShape::of({5})); }
}  // namespace

KILN_TEST(shape_ir, schema_registry_versions) {
  auto& reg = SchemaRegistry::instance();
  reg.add(OpSchema{"test.domain", "VersionedOp", 5, inferTestV5});
  reg.add(OpSchema{"test.domain", "VersionedOp", 1, inferTestV1});
  EXPECT_TRUE(reg.find("test.domain", "VersionedOp", 0) == nullptr);
  EXPECT_EQ(reg.find("test.domain", "VersionedOp", 1)->sinceVersion, 1);
  EXPECT_EQ(reg.find("test.domain", "VersionedOp", 4)->sinceVersion, 1);
  EXPECT_EQ(reg.find("test.domain", "VersionedOp", 5)->sinceVersion, 5);
  EXPECT_EQ(reg.find("test.domain", "VersionedOp", 99)->sinceVersion, 5);
  EXPECT_TRUE(reg.find("test.domain", "VersionedOpX", 99) == nullptr);
  EXPECT_TRUE(reg.find("other", "VersionedOp", 99) == nullptr);
  auto ops = reg.opTypes("test.domain");
  EXPECT_EQ(ops.size(), size_t(1));
}

namespace {
class NopKernel : public Kernel {
 public:
  void run(KernelContext&) const override {}
  std::string name() const override { return "nop"; }
};
std::unique_ptr<Kernel> createNop(const KernelCreateInfo&) { return std::make_unique<NopKernel>(); }
}  // namespace

KILN_TEST(shape_ir, kernel_registry_and_allocate_output) {
  auto& reg = KernelRegistry::instance();
  reg.add(KernelDef{"testbackend", "ai.onnx", "Nop", 7, createNop});
  reg.add(KernelDef{"testbackend", "", "Nop", 13, createNop});
  EXPECT_TRUE(reg.find("testbackend", "", "Nop", 6) == nullptr);
  EXPECT_EQ(reg.find("testbackend", "", "Nop", 12)->sinceVersion, 7);
  EXPECT_EQ(reg.find("testbackend", "ai.onnx", "Nop", 13)->sinceVersion, 13);
  EXPECT_TRUE(reg.find("otherbackend", "", "Nop", 13) == nullptr);
  EXPECT_EQ(reg.opTypes("testbackend", "").size(), size_t(1));

  Node n = makeNode("u", "Unique", {0}, {1, kNoValue});
  Tensor out0;
  KernelContext ctx{n, {nullptr}, {&out0, nullptr}};
  Tensor& t = ctx.allocateOutput(0, DType::Float32, {3});
  EXPECT_EQ(&t, &out0);
  EXPECT_EQ(out0.numel(), 3);
  Tensor& d = ctx.allocateOutput(1, DType::Int64, {2});  // omitted: goes to discardedOutputs
  EXPECT_EQ(d.numel(), 2);
  EXPECT_THROWS_WITH(ctx.allocateOutput(2, DType::Float32, {1}), "allocated output 2");
}

KILN_TEST(shape_ir, activations_round_trip) {
  for (Activation a : {Activation::None, Activation::Relu, Activation::LeakyRelu, Activation::Sigmoid,
                       Activation::Tanh, Activation::Clip, Activation::HardSigmoid, Activation::HardSwish,
                       Activation::Gelu, Activation::GeluTanh, Activation::Silu}) {
    EXPECT_TRUE(parseActivation(activationName(a)) == a);
  }
  EXPECT_THROWS_WITH(parseActivation("Swish2"), "unknown fused activation 'Swish2'");
}
