// Tests for inspectModel (runtime/inspect.cc).
#include "core/error.h"
#include "onnx_builder.h"
#include "runtime/api.h"
#include "test.h"

using namespace kiln;
using namespace onnx_builder;

KILN_TEST(onnx_inspect, describes_signature) {
  GraphBuilder body("then");
  body.node("Identity", {"x"}, {"t"}, {}, "inner_id");
  body.node("WeirdOp", {"t"}, {"u"}, {}, "inner_weird", "com.example");
  body.initializer("bw", DType::Float32, {2}, std::vector<float>{1, 2});
  body.output("u");
  ModelBuilder m("net");
  m.producer = "exporter";
  m.opset("com.example", 3);
  m.input("x", DType::Float32, {"batch", 3});
  m.input("c", DType::Bool, {});
  m.initializer("w", DType::Float32, {3, 4}, std::vector<float>(12, 0.5f));
  m.node("Identity", {"x"}, {"y"}, {}, "id");
  m.node("NoSuchOp", {"y"}, {"z"}, {}, "nope");
  m.node("If", {"c"}, {"o"}, {Attr::graph("then_branch", body), Attr::graph("else_branch", body)}, "branch");
  m.output("y");
  m.output("z", DType::Float32, {"batch", 3});
  auto bytes = m.bytes();
  ModelSignature sig = inspectModel(bytes.data(), bytes.size());
  EXPECT_EQ(sig.producer, "exporter");
  EXPECT_EQ(sig.graphName, "net");
  EXPECT_EQ(sig.inputs.size(), size_t(2));
  EXPECT_EQ(sig.inputs[0].name, "x");
  EXPECT_EQ(sig.inputs[0].shape.toString(), "[batch,3]");
  EXPECT_EQ(sig.outputs.size(), size_t(2));
  EXPECT_EQ(sig.outputs[0].shape.toString(), "[batch,3]");  // inferred (Identity)
  EXPECT_TRUE(sig.outputs[0].dtype == DType::Float32);
  EXPECT_EQ(sig.outputs[1].shape.toString(), "[batch,3]");  // declared
  EXPECT_EQ(sig.opsets.at(""), 17);
  EXPECT_EQ(sig.opsets.at("com.example"), 3);
  EXPECT_EQ(sig.parameterCount, 12 + 2 * 2);  // both branches hold their own copy of bw
  EXPECT_TRUE(sig.operators == (std::vector<std::string>{"Identity", "If", "NoSuchOp", "com.example:WeirdOp"}));
  bool sawNope = false, sawWeird = false;
  for (const auto& u : sig.unsupported) {
    if (u == "unsupported operator NoSuchOp (opset 17) at node 'nope'") sawNope = true;
    if (u == "unsupported operator com.example.WeirdOp (opset 3) at node 'inner_weird'") sawWeird = true;
    EXPECT_TRUE(u.find("'id'") == std::string::npos);
  }
  EXPECT_TRUE(sawNope);
  EXPECT_TRUE(sawWeird);
}

KILN_TEST(onnx_inspect, rejects_invalid_models) {
  ModelBuilder m;
  m.input("x", DType::Float32, {2});
  m.node("Identity", {"missing"}, {"y"}, {}, "id");
  m.output("y");
  auto bytes = m.bytes();
  EXPECT_THROWS_WITH(inspectModel(bytes.data(), bytes.size()), "node 'id' (Identity) input 'missing' is not defined");
  const uint8_t text[] = "hello, this is not a model";
  EXPECT_THROWS_WITH(inspectModel(text, sizeof text - 1), "ONNX");
}
