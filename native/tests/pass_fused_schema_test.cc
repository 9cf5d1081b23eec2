// Shape/type inference of the kiln fused ops (ops/fused.cc).
#include "core/error.h"
#include "graph/fused_ops.h"
#include "graph/passes/pattern.h"
#include "ops/schema.h"
#include "test.h"

using namespace kiln;

namespace {

struct In {
  DType type;
  SymShape shape;
};

SymShape shape(std::vector<Dim> dims) {
  SymShape s;
  s.hasRank = true;
  s.dims = std::move(dims);
  return s;
}
SymShape known(const Shape& s) { return SymShape::of(s); }
In f32(const Shape& s) { return {DType::Float32, known(s)}; }

// Runs the schema of kiln.`op` and returns its outputs' shapes.
std::vector<SymShape> infer(const std::string& op, const std::vector<In>& inputs,
                            std::map<std::string, Attribute> attrs = {}, size_t numOutputs = 1) {
  Node n;
  n.name = "fused";
  n.opType = op;
  n.domain = kKilnDomain;
  n.attrs = std::move(attrs);
  for (size_t i = 0; i < inputs.size(); i++) n.inputs.push_back(inputs[i].type == DType::Undefined ? kNoValue : (ValueId)i);
  for (size_t i = 0; i < numOutputs; i++) n.outputs.push_back((ValueId)(100 + i));
  const OpSchema* schema = SchemaRegistry::instance().find(kKilnDomain, op, 1);
  KILN_CHECK(schema != nullptr, Internal, "no schema for kiln." + op);
  InferContext ctx(n, 1, inputs.size(), numOutputs);
  for (size_t i = 0; i < inputs.size(); i++) {
    ctx.inputTypes[i] = inputs[i].type;
    ctx.inputShapes[i] = inputs[i].shape;
  }
  schema->infer(ctx);
  return ctx.outputShapes;
}

std::map<std::string, Attribute> act(const std::string& name, std::vector<float> params = {}) {
  std::map<std::string, Attribute> a;
  a["activation"] = stringAttr(name);
  if (!params.empty()) a["activation_params"] = floatsAttr(params);
  return a;
}

}  // namespace

KILN_TEST(fused_schema, fused_conv_follows_conv_and_checks_the_epilogue) {
  auto attrs = act("Clip", {0, 6});
  attrs["pads"] = intsAttr({1, 1, 1, 1});
  auto out = infer("FusedConv", {f32({2, 3, 8, 8}), f32({4, 3, 3, 3}), f32({4}), f32({2, 4, 8, 8})}, attrs);
  EXPECT_EQ(out[0].toString(), std::string("[2,4,8,8]"));
  EXPECT_THROWS_WITH(infer("FusedConv", {f32({2, 3, 8, 8}), f32({4, 3, 3, 3}), f32({4}), f32({2, 4, 6, 6})}, attrs),
                     "residual input Z [2,4,6,6] differs from the output shape [2,4,8,8]");
  EXPECT_THROWS_WITH(infer("FusedConv", {f32({2, 3, 8, 8}), f32({4, 3, 3, 3})}, act("Clip", {0})),
                     "activation Clip takes 2 activation_params, got 1");
  EXPECT_THROWS_WITH(infer("FusedConv", {f32({2, 3, 8, 8}), f32({4, 3, 3, 3})}, act("Clip", {6, 0})),
                     "min 6.000000 exceeds max");
  EXPECT_THROWS_WITH(infer("FusedConv", {f32({2, 3, 8, 8}), f32({4, 3, 3, 3})}, act("Swishy")),
                     "unknown fused activation 'Swishy'");
  EXPECT_THROWS_WITH(infer("FusedConv", {f32({2, 3, 8, 8}), f32({4, 5, 3, 3})}), "FusedConv");
  EXPECT_THROWS_WITH(infer("FusedConv", {{DType::Int32, known({2, 3, 8, 8})}, f32({4, 3, 3, 3})}),
                     "X must be a floating-point tensor, got int32");
}

KILN_TEST(fused_schema, fused_gemm_and_matmul) {
  auto attrs = act("LeakyRelu", {0.1f});
  attrs["transB"] = intAttr(1);
  EXPECT_EQ(infer("FusedGemm", {f32({3, 5}), f32({4, 5}), f32({4})}, attrs)[0].toString(), std::string("[3,4]"));
  auto out = infer("FusedMatMul", {{DType::Float32, shape({Dim::sym("batch"), Dim::known(7), Dim::known(8)})},
                                   f32({8, 16}), f32({16})}, act("Gelu"));
  EXPECT_EQ(out[0].toString(), std::string("[batch,7,16]"));
  EXPECT_THROWS_WITH(infer("FusedMatMul", {f32({2, 8}), f32({8, 16}), f32({15})}),
                     "bias [15] does not match the last dim of the output [2,16]");
  EXPECT_THROWS_WITH(infer("FusedMatMul", {f32({2, 8}), f32({8, 16}), f32({1, 16})}), "bias must be 1-D");
  EXPECT_THROWS_WITH(infer("FusedMatMul", {f32({2, 8}), f32({8, 16})}, act("Relu", {1})),
                     "activation Relu takes 0 activation_params, got 1");
}

KILN_TEST(fused_schema, layer_normalization) {
  std::map<std::string, Attribute> attrs;
  attrs["axis"] = intAttr(-2);
  auto out = infer("LayerNormalization", {f32({2, 3, 4}), f32({3, 4}), f32({3, 4})}, attrs, 3);
  EXPECT_EQ(out[0].toString(), std::string("[2,3,4]"));
  EXPECT_EQ(out[1].toString(), std::string("[2,1,1]"));
  EXPECT_EQ(out[2].toString(), std::string("[2,1,1]"));
  EXPECT_THROWS_WITH(infer("LayerNormalization", {f32({2, 3, 4}), f32({5})}), "Scale [5] does not broadcast to [4]");
  attrs["axis"] = intAttr(3);
  EXPECT_THROWS_WITH(infer("LayerNormalization", {f32({2, 3, 4}), f32({4})}, attrs), "axis 3 is out of range");
  attrs["axis"] = intAttr(-1);
  attrs["epsilon"] = floatAttr(-1.f);
  EXPECT_THROWS_WITH(infer("LayerNormalization", {f32({2, 3, 4}), f32({4})}, attrs), "epsilon must be finite and >= 0");
}

KILN_TEST(fused_schema, gelu) {
  std::map<std::string, Attribute> attrs;
  attrs["approximate"] = stringAttr("tanh");
  EXPECT_EQ(infer("Gelu", {f32({2, 5})}, attrs)[0].toString(), std::string("[2,5]"));
  attrs["approximate"] = stringAttr("fast");
  EXPECT_THROWS_WITH(infer("Gelu", {f32({2, 5})}, attrs), "approximate must be \"none\" or \"tanh\"");
}

KILN_TEST(fused_schema, attention) {
  std::map<std::string, Attribute> attrs;
  attrs["scale"] = floatAttr(0.125f);
  attrs["causal"] = intAttr(1);
  SymShape q = shape({Dim::sym("b"), Dim::known(12), Dim::sym("s"), Dim::known(64)});
  auto out = infer("Attention", {{DType::Float32, q}, {DType::Float32, q}, f32({1, 12, 16, 32}), f32({1, 1, 1, 16})}, attrs);
  EXPECT_EQ(out[0].toString(), std::string("[b,12,s,32]"));
  EXPECT_THROWS_WITH(infer("Attention", {f32({1, 2, 4, 8}), f32({1, 2, 4, 16}), f32({1, 2, 4, 8})}, attrs),
                     "the head sizes of Q and K disagree");
  EXPECT_THROWS_WITH(infer("Attention", {f32({2, 2, 4, 8}), f32({1, 2, 4, 8}), f32({1, 2, 4, 8})}, attrs),
                     "batch/head dims disagree");
  EXPECT_THROWS_WITH(infer("Attention", {f32({1, 2, 4, 8}), f32({1, 2, 4, 8}), f32({1, 2, 5, 8})}, attrs),
                     "key lengths of K and V disagree");
  EXPECT_THROWS_WITH(
      infer("Attention", {f32({1, 2, 4, 8}), f32({1, 2, 4, 8}), f32({1, 2, 4, 8}), f32({1, 1, 1, 5})}, attrs),
      "the mask [1,1,1,5] does not broadcast to [1,2,4,4]");
  EXPECT_THROWS_WITH(infer("Attention", {f32({1, 2, 4}), f32({1, 2, 4, 8}), f32({1, 2, 4, 8})}, attrs),
                     "Q must be [B,H,S,D]");
  attrs["causal"] = intAttr(2);
  EXPECT_THROWS_WITH(infer("Attention", {f32({1, 2, 4, 8}), f32({1, 2, 4, 8}), f32({1, 2, 4, 8})}, attrs),
                     "causal must be 0 or 1");
  attrs.erase("scale");
  attrs["causal"] = intAttr(0);
  EXPECT_THROWS_WITH(infer("Attention", {f32({1, 2, 4, 8}), f32({1, 2, 4, 8}), f32({1, 2, 4, 8})}, attrs),
                     "the scale attribute is required");
}
