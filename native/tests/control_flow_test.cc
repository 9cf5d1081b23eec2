// Tests of If, Loop and Scan, run end to end through the reference interpreter (which hands the
// kernels a SubgraphRunner) after build-time shape inference.
#include "graph/shape_inference.h"
#include "tensor_test_harness.h"

using namespace kiln_test;
using kiln::Graph;
using kiln::Node;
using kiln::SymShape;

namespace {

int addNode(Graph& g, const std::string& op, std::vector<int> inputs, std::vector<int> outputs, Attrs attrs = {}) {
  Node n;
  n.name = op + std::to_string(g.nodes.size());
  n.opType = op;
  n.inputs = std::move(inputs);
  n.outputs = std::move(outputs);
  n.attrs = std::move(attrs);
  return g.addNode(std::move(n));
}

std::shared_ptr<Graph> makeBody(const Graph& parent) {
  auto b = std::make_shared<Graph>();
  b->name = "body";
  b->parent = &parent;
  b->opsets[""] = 18;
  return b;
}

}  // namespace

KILN_TEST(control_flow, if_branches_with_different_shapes) {
  Graph g;
  g.opsets[""] = 18;
  int cond = g.addValue("cond", DType::Bool, SymShape::of({}));
  int x = g.addValue("x", DType::Float32, SymShape::of({3}));
  g.inputs = {cond, x};
  // then: x (captured); else: concat(x, x).
  auto thenB = makeBody(g);
  int tx = thenB->addValue("x");
  int ty = thenB->addValue("then_out");
  addNode(*thenB, "Identity", {tx}, {ty});
  thenB->outputs = {ty};
  auto elseB = makeBody(g);
  int ex = elseB->addValue("x");
  int ey = elseB->addValue("else_out");
  addNode(*elseB, "Concat", {ex, ex}, {ey}, {{"axis", attrInt(0)}});
  elseB->outputs = {ey};
  int y = g.addValue("y");
  addNode(g, "If", {cond}, {y}, {{"then_branch", attrGraph(thenB)}, {"else_branch", attrGraph(elseB)}});
  g.outputs = {y};
  kiln::inferShapes(g);
  EXPECT_TRUE(g.values[y].dtype == DType::Float32);
  EXPECT_EQ(g.values[y].shape.rank(), 1u);
  Tensor xv = make<float>({3}, {1, 2, 3});
  auto out = kiln::interpretGraph(g, {{"cond", makeBool({}, {1})}, {"x", xv}});
  expectValues<float>(out[0], {3}, {1, 2, 3});
  out = kiln::interpretGraph(g, {{"cond", makeBool({}, {0})}, {"x", xv}});
  expectValues<float>(out[0], {6}, {1, 2, 3, 1, 2, 3});
}

KILN_TEST(control_flow, loop_carried_and_scan_outputs) {
  Graph g;
  g.opsets[""] = 18;
  int m = g.addValue("M", DType::Int64, SymShape::of({}));
  int v0 = g.addValue("v0", DType::Float32, SymShape::of({1}));
  g.inputs = {m, v0};
  auto body = makeBody(g);
  int iter = body->addValue("iter", DType::Int64, SymShape::of({}));
  int condIn = body->addValue("cond_in", DType::Bool, SymShape::of({}));
  int v = body->addValue("v", DType::Float32);
  body->inputs = {iter, condIn, v};
  int condOut = body->addValue("cond_out");
  int vOut = body->addValue("v_out");
  int scanOut = body->addValue("scan_out");
  addNode(*body, "Identity", {condIn}, {condOut});
  addNode(*body, "Concat", {v, v}, {vOut}, {{"axis", attrInt(0)}});  // doubles every iteration
  addNode(*body, "Identity", {iter}, {scanOut});
  body->outputs = {condOut, vOut, scanOut};
  int vFinal = g.addValue("v_final"), iters = g.addValue("iters");
  addNode(g, "Loop", {m, kiln::kNoValue, v0}, {vFinal, iters}, {{"body", attrGraph(body)}});
  g.outputs = {vFinal, iters};
  kiln::inferShapes(g);
  auto out = kiln::interpretGraph(g, {{"M", scalarInt(4)}, {"v0", make<float>({1}, {7})}});
  expectValues<float>(out[0], {16}, std::vector<float>(16, 7));
  expectValues<int64_t>(out[1], {4}, {0, 1, 2, 3});
  // Zero iterations: the initial value comes back and the scan output is empty.
  out = kiln::interpretGraph(g, {{"M", scalarInt(0)}, {"v0", make<float>({1}, {7})}});
  expectValues<float>(out[0], {1}, {7});
  EXPECT_EQ(out[1].numel(), 0);
}

KILN_TEST(control_flow, scan_directions_and_axes) {
  Graph g;
  g.opsets[""] = 18;
  int s0 = g.addValue("s0", DType::Float32, SymShape::of({2}));
  int xs = g.addValue("xs", DType::Float32, SymShape::of({3, 2}));
  g.inputs = {s0, xs};
  auto body = makeBody(g);
  int s = body->addValue("s", DType::Float32, SymShape::of({2}));
  int x = body->addValue("x", DType::Float32, SymShape::of({2}));
  body->inputs = {s, x};
  int sOut = body->addValue("s_out"), y = body->addValue("y");
  addNode(*body, "Identity", {x}, {sOut});  // the state is the last slice seen
  addNode(*body, "Identity", {x}, {y});
  body->outputs = {sOut, y};
  int sFinal = g.addValue("s_final"), ys = g.addValue("ys");
  addNode(g, "Scan", {s0, xs}, {sFinal, ys},
          {{"body", attrGraph(body)}, {"num_scan_inputs", attrInt(1)}, {"scan_input_directions", attrInts({1})},
           {"scan_output_axes", attrInts({1})}});
  g.outputs = {sFinal, ys};
  kiln::inferShapes(g);
  EXPECT_EQ(g.values[ys].shape.toString(), "[2,3]");
  auto out = kiln::interpretGraph(g, {{"s0", make<float>({2}, {0, 0})}, {"xs", iota<float>({3, 2})}});
  // Reverse scan: the last slice visited is row 0; outputs are stacked in visiting order (rows
  // 2, 1, 0) along axis 1.
  expectValues<float>(out[0], {2}, {0, 1});
  expectValues<float>(out[1], {2, 3}, {4, 2, 0, 5, 3, 1});
}

KILN_TEST(control_flow, scan8_batches_and_sequence_lens) {
  Graph g;
  g.opsets[""] = 8;
  int lens = g.addValue("lens", DType::Int64, SymShape::of({2}));
  int s0 = g.addValue("s0", DType::Float32, SymShape::of({2, 2}));
  int xs = g.addValue("xs", DType::Float32, SymShape::of({2, 2, 2}));
  g.inputs = {lens, s0, xs};
  auto body = makeBody(g);
  body->opsets[""] = 8;
  int s = body->addValue("s", DType::Float32, SymShape::of({2}));
  int x = body->addValue("x", DType::Float32, SymShape::of({2}));
  body->inputs = {s, x};
  int sOut = body->addValue("s_out"), y = body->addValue("y");
  addNode(*body, "Identity", {x}, {sOut});
  addNode(*body, "Identity", {x}, {y});
  body->outputs = {sOut, y};
  int sFinal = g.addValue("s_final"), ys = g.addValue("ys");
  addNode(g, "Scan", {lens, s0, xs}, {sFinal, ys}, {{"body", attrGraph(body)}, {"num_scan_inputs", attrInt(1)}});
  g.outputs = {sFinal, ys};
  kiln::inferShapes(g);
  auto out = kiln::interpretGraph(g, {{"lens", ints({2, 1})}, {"s0", iota<float>({2, 2})}, {"xs", iota<float>({2, 2, 2})}});
  expectValues<float>(out[0], {2, 2}, {2, 3, 4, 5});
  // The second batch entry's sequence has one step: its second row is zero padding.
  expectValues<float>(out[1], {2, 2, 2}, {0, 1, 2, 3, 4, 5, 0, 0});
}
