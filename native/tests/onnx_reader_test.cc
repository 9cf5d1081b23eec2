// Tests for the protobuf wire reader and the ONNX model reader (valid models; hostile input is in
// hostile_reader_test.cc).
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "core/error.h"
#include "graph/ir.h"
#include "onnx/model_reader.h"
#include "onnx/wire.h"
#include "onnx_builder.h"
#include "test.h"

using namespace kiln;
using namespace onnx_builder;

namespace {

Graph read(const ModelBuilder& m, const ReadOptions& options = {}, ModelMetadata* meta = nullptr) {
  auto bytes = m.bytes();
  return readModel(bytes.data(), bytes.size(), options, meta);
}

const Node& nodeNamed(const Graph& g, const std::string& name) {
  for (const Node& n : g.nodes) {
    if (n.name == name) return n;
  }
  throw kiln_test::Failure("no node named " + name);
}

std::string makeTempDir() {
  char tmpl[] = "/tmp/kiln_reader_XXXXXX";
  char* dir = mkdtemp(tmpl);
  if (!dir) throw kiln_test::Failure("mkdtemp failed");
  return dir;
}

void writeFile(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

// ---- wire format ----------------------------------------------------------------------------------

KILN_TEST(onnx_wire, varints_and_fields) {
  Writer w;
  w.int64Field(1, 300);
  w.int64Field(2, -1);  // 10-byte varint
  w.floatField(3, 1.5f);
  w.bytesField(4, "abc");
  w.packedInt64s(5, {1, 2, 300});
  w.int64Field(5, 7);  // unpacked element of the same repeated field
  std::string s = w.str();
  WireReader r(reinterpret_cast<const uint8_t*>(s.data()), s.size(), "Test");
  std::vector<int64_t> rep;
  EXPECT_TRUE(r.next());
  EXPECT_EQ(r.field(), 1u);
  EXPECT_EQ(r.int64(), 300);
  EXPECT_TRUE(r.next());
  EXPECT_EQ(r.int64(), -1);
  EXPECT_TRUE(r.next());
  EXPECT_NEAR(r.float32(), 1.5, 0);
  EXPECT_TRUE(r.next());
  EXPECT_EQ(r.string(), "abc");
  EXPECT_TRUE(r.next());
  r.appendInt64s(rep);
  EXPECT_TRUE(r.next());
  r.appendInt64s(rep);
  EXPECT_TRUE(!r.next());
  EXPECT_EQ(rep.size(), size_t(4));
  EXPECT_EQ(rep[2], 300);
  EXPECT_EQ(rep[3], 7);
}

KILN_TEST(onnx_wire, rejects_malformed) {
  auto check = [](const std::string& bytes, const char* msg) {
    WireReader r(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "Test");
    EXPECT_THROWS_WITH(
        {
          while (r.next()) r.skip();
        },
        msg);
  };
  check(std::string("\x08\x80", 2), "truncated varint");
  check(std::string("\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 11), "varint overflows 64 bits");
  check(std::string("\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x81\x00", 12), "overflows");
  check(std::string("\x0a\x05" "ab", 4), "length 5 exceeds the 2 remaining bytes");
  check(std::string("\x0a\xff\xff\xff\xff\x0f", 6), "exceeds");
  check(std::string("\x0d\x01\x02", 3), "truncated fixed32");
  check(std::string("\x09\x01", 2), "truncated fixed64");
  check(std::string("\x0e", 1), "invalid wire type 6");
  check(std::string("\x00", 1), "invalid field number 0");
  check(std::string("\x0b\x10\x01", 3), "unterminated group");
  check(std::string("\x0c", 1), "unexpected end-group");
  check(std::string("\x0b\x14", 2), "mismatched end-group");
}

KILN_TEST(onnx_wire, skips_groups_and_checks_types) {
  // field 1 group { field 2 varint 1 } end group, then field 3 varint 5
  std::string s("\x0b\x10\x01\x0c\x18\x05", 6);
  WireReader r(reinterpret_cast<const uint8_t*>(s.data()), s.size(), "Test");
  EXPECT_TRUE(r.next());
  r.skip();
  EXPECT_TRUE(r.next());
  EXPECT_EQ(r.field(), 3u);
  EXPECT_EQ(r.int64(), 5);
  std::string bad("\x08\x01", 2);
  WireReader b(reinterpret_cast<const uint8_t*>(bad.data()), bad.size(), "Test");
  EXPECT_TRUE(b.next());
  EXPECT_THROWS_WITH(b.string(), "field 1 has wire type 0, expected length-delimited");
  std::string packed("\x0a\x03\x00\x00\x00", 5);
  WireReader p(reinterpret_cast<const uint8_t*>(packed.data()), packed.size(), "Test");
  std::vector<float> fs;
  EXPECT_TRUE(p.next());
  EXPECT_THROWS_WITH(p.appendFloats(fs), "not a multiple of 4");
}

KILN_TEST(onnx_wire, nesting_is_bounded) {
  // 200 nested length-delimited messages: field 1 { field 1 { ... } }
  std::string inner;
  for (int i = 0; i < 200; i++) {
    Writer w;
    w.bytesField(1, inner);
    inner = w.str();
  }
  std::function<void(WireReader)> descend = [&](WireReader r) {
    while (r.next()) descend(r.message("Nested"));
  };
  EXPECT_THROWS_WITH(descend(WireReader(reinterpret_cast<const uint8_t*>(inner.data()), inner.size(), "Nested")),
                     "nested more than");
}

// ---- models -----------------------------------------------------------------------------------------

KILN_TEST(onnx_reader, simple_model) {
  ModelBuilder m;
  m.producer = "pytorch";
  m.input("x", DType::Float32, {"batch", 3});
  m.initializer("w", DType::Float32, {3}, std::vector<float>{1, 2, 3});
  m.node("Mul", {"x", "w"}, {"y"}, {}, "mul");
  m.node("Softmax", {"y"}, {"z"}, {Attr::i("axis", -1)});
  m.node("LeakyRelu", {"z"}, {"o"}, {Attr::f("alpha", 0.25f), Attr::ints("perm", {0, 1}), Attr::s("mode", "up")});
  m.output("o", DType::Float32, {"batch", 3});
  ModelMetadata meta;
  Graph g = read(m, {}, &meta);
  EXPECT_EQ(meta.producerName, "pytorch");
  EXPECT_EQ(meta.irVersion, 8);
  EXPECT_EQ(g.name, "main");
  EXPECT_EQ(g.opsetFor(""), 17);
  EXPECT_EQ(g.inputs.size(), size_t(1));
  const Value& x = g.values[g.inputs[0]];
  EXPECT_EQ(x.name, "x");
  EXPECT_TRUE(x.dtype == DType::Float32);
  EXPECT_EQ(x.shape.toString(), "[batch,3]");
  ValueId w = *g.findValue("w");
  EXPECT_TRUE(g.values[w].constant != nullptr);
  EXPECT_NEAR(g.values[w].constant->ptr<float>()[2], 3.0, 0);
  EXPECT_EQ(g.nodes.size(), size_t(3));
  EXPECT_EQ(g.nodes[0].name, "mul");
  EXPECT_EQ(g.nodes[1].name, "Softmax_1");  // unnamed nodes get "<op>_<index>"
  EXPECT_EQ(g.nodes[1].getInt("axis", 0), -1);
  EXPECT_NEAR(g.nodes[2].getFloat("alpha", 0), 0.25, 1e-7);
  EXPECT_EQ(g.nodes[2].getString("mode", ""), "up");
  EXPECT_EQ(g.nodes[2].getInts("perm").size(), size_t(2));
  EXPECT_EQ(g.outputs.size(), size_t(1));
  EXPECT_EQ(g.values[g.outputs[0]].producer, 2);
  EXPECT_EQ(g.values[g.outputs[0]].shape.toString(), "[batch,3]");
}

KILN_TEST(onnx_reader, sorts_nodes_and_dedupes_names) {
  ModelBuilder m;
  m.input("x", DType::Float32, {2});
  m.node("Relu", {"a"}, {"b"}, {}, "dup");
  m.node("Relu", {"x"}, {"a"}, {}, "dup");
  m.output("b", DType::Float32, {2});
  Graph g = read(m);
  EXPECT_EQ(g.nodes[0].name, "dup_1");  // the second "dup" was renamed, and comes first once sorted
  EXPECT_EQ(g.nodes[1].name, "dup");
  EXPECT_EQ(g.values[g.nodes[0].inputs[0]].name, "x");
}

KILN_TEST(onnx_reader, inputs_with_initializers_are_constants) {
  ModelBuilder m;
  m.irVersion = 3;
  m.input("x", DType::Float32, {2});
  m.input("w", DType::Float32, {2});
  m.initializer("w", DType::Float32, {2}, std::vector<float>{5, 6});
  m.node("Add", {"x", "w"}, {"y"});
  m.output("y");
  Graph g = read(m);
  EXPECT_EQ(g.inputs.size(), size_t(1));
  EXPECT_TRUE(g.values[*g.findValue("w")].constant != nullptr);
}

KILN_TEST(onnx_reader, typed_tensor_fields) {
  ModelBuilder m;
  m.input("x", DType::Float32, {2});
  Writer f16;  // float16 in int32_data
  f16.packedInt64s(1, {2});
  f16.int64Field(2, static_cast<int64_t>(DType::Float16));
  f16.bytesField(8, "h");
  f16.packedInt64s(5, {floatToHalf(1.0f), floatToHalf(-2.0f)});
  m.initializerProto(f16.str());
  Writer b;  // bool, unpacked int32_data
  b.packedInt64s(1, {2});
  b.int64Field(2, static_cast<int64_t>(DType::Bool));
  b.bytesField(8, "b");
  b.int64Field(5, 0);
  b.int64Field(5, 7);
  m.initializerProto(b.str());
  Writer i64;
  i64.int64Field(2, static_cast<int64_t>(DType::Int64));  // scalar: no dims
  i64.bytesField(8, "i");
  i64.packedInt64s(7, {-42});
  m.initializerProto(i64.str());
  Writer d;
  d.packedInt64s(1, {1});
  d.int64Field(2, static_cast<int64_t>(DType::Float64));
  d.bytesField(8, "d");
  d.doubleField(10, 2.5);
  m.initializerProto(d.str());
  Writer s;
  s.packedInt64s(1, {2});
  s.int64Field(2, static_cast<int64_t>(DType::String));
  s.bytesField(8, "s");
  s.bytesField(6, "hello");
  s.bytesField(6, "");
  m.initializerProto(s.str());
  Writer fl;
  fl.packedInt64s(1, {2});
  fl.int64Field(2, static_cast<int64_t>(DType::Float32));
  fl.bytesField(8, "f");
  fl.floatField(4, 0.5f);  // unpacked float_data
  fl.floatField(4, 1.5f);
  m.initializerProto(fl.str());
  m.node("Identity", {"x"}, {"y"});
  m.output("y");
  Graph g = read(m);
  auto val = [&](const char* n) { return g.values[*g.findValue(n)].constant; };
  EXPECT_NEAR(val("h")->scalarAsDouble(1), -2.0, 0);
  EXPECT_EQ(val("b")->ptr<uint8_t>()[1], 1);
  EXPECT_EQ(val("i")->shape.size(), size_t(0));
  EXPECT_EQ(val("i")->ptr<int64_t>()[0], -42);
  EXPECT_NEAR(val("d")->ptr<double>()[0], 2.5, 0);
  EXPECT_EQ(val("s")->ptr<std::string>()[0], "hello");
  EXPECT_NEAR(val("f")->ptr<float>()[1], 1.5, 0);
}

KILN_TEST(onnx_reader, unknown_dims_get_fresh_symbols) {
  ModelBuilder m;
  m.input("x", DType::Float32, {DimSpec(), "unk_0", DimSpec()});
  m.input("s", DType::Float32, {}, /*hasShape=*/false);
  m.node("Identity", {"x"}, {"y"});
  m.output("y");
  Graph g = read(m);
  const SymShape& s = g.values[g.inputs[0]].shape;
  EXPECT_EQ(s.toString(), "[unk_1,unk_0,unk_2]");
  EXPECT_TRUE(!g.values[g.inputs[1]].shape.hasRank);
}

KILN_TEST(onnx_reader, subgraphs_capture_outer_values) {
  GraphBuilder thenB("then"), elseB("else");
  thenB.node("Relu", {"x"}, {"t"});  // reads the outer x
  thenB.output("t", DType::Float32, {2});
  elseB.node("Neg", {"later"}, {"e"});  // reads a value produced after the If node
  elseB.output("e", DType::Float32, {2});
  ModelBuilder m;
  m.input("c", DType::Bool, {});
  m.input("x", DType::Float32, {2});
  m.node("If", {"c"}, {"out"}, {Attr::graph("then_branch", thenB), Attr::graph("else_branch", elseB)}, "if");
  m.node("Abs", {"x"}, {"later"}, {}, "abs");
  m.output("out", DType::Float32, {2});
  Graph g = read(m);
  EXPECT_EQ(g.nodes[0].name, "abs");  // moved before the If that captures its output
  const Node& iff = nodeNamed(g, "if");
  const Graph& body = *iff.attrs.at("then_branch").g;
  EXPECT_TRUE(body.parent == &g);
  EXPECT_EQ(body.name, "then");
  EXPECT_EQ(body.opsetFor(""), 17);
  EXPECT_TRUE(outerScopeNames(body) == std::vector<std::string>{"x"});
  ValueId cap = body.nodes[0].inputs[0];
  EXPECT_EQ(body.values[cap].name, "x");
  EXPECT_TRUE(body.values[cap].dtype == DType::Float32);
  EXPECT_EQ(body.values[cap].producer, -1);
  auto cons = g.consumers();
  EXPECT_EQ(cons[*g.findValue("x")].size(), size_t(2));  // Abs and (through then_branch) If
}

KILN_TEST(onnx_reader, loop_body_inputs_and_nested_scopes) {
  GraphBuilder inner("inner");
  inner.node("Add", {"v", "w"}, {"r"});  // v: loop-carried (middle scope), w: outermost scope
  inner.output("r");
  GraphBuilder body("body");
  body.input("i", DType::Int64, {});
  body.input("cond", DType::Bool, {});
  body.input("v", DType::Float32, {2});
  body.node("If", {"cond"}, {"v2"}, {Attr::graph("then_branch", inner), Attr::graph("else_branch", inner)});
  body.node("Identity", {"cond"}, {"cond_out"});
  body.output("cond_out");
  body.output("v2");
  ModelBuilder m;
  m.input("n", DType::Int64, {});
  m.input("v0", DType::Float32, {2});
  m.input("w", DType::Float32, {2});
  m.node("Loop", {"n", "", "v0"}, {"vN"}, {Attr::graph("body", body)}, "loop");
  m.output("vN");
  Graph g = read(m);
  const Node& loop = nodeNamed(g, "loop");
  EXPECT_TRUE(loop.inputs[1] == kNoValue);
  const Graph& b = *loop.attrs.at("body").g;
  EXPECT_EQ(b.inputs.size(), size_t(3));
  EXPECT_TRUE(outerScopeNames(b) == std::vector<std::string>{"w"});
  const Graph& in = *b.nodes[0].attrs.at("then_branch").g;
  EXPECT_TRUE(in.parent == &b);
  EXPECT_TRUE(outerScopeNames(in) == (std::vector<std::string>{"v", "w"}));
}

KILN_TEST(onnx_reader, functions_are_inlined) {
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
  m.node("ScaledRelu", {"x"}, {"y"}, {Attr::f("alpha", 0.5f)}, "call1", "custom");
  m.node("ScaledRelu", {"y"}, {"z"}, {}, "call2", "custom");
  m.output("z");
  Graph g = read(m);
  EXPECT_EQ(g.nodes.size(), size_t(4));
  EXPECT_EQ(g.nodes[0].opType, "LeakyRelu");
  EXPECT_EQ(g.nodes[0].name, "call1/LeakyRelu_0");
  EXPECT_NEAR(g.nodes[0].getFloat("alpha", 0), 0.5, 1e-7);
  EXPECT_TRUE(!g.nodes[2].has("alpha"));  // call2 gave no alpha: the reference is dropped
  EXPECT_EQ(g.values[g.nodes[1].outputs[0]].name, "y");
  EXPECT_EQ(g.values[g.nodes[0].outputs[0]].name, "call1/T");
  EXPECT_EQ(g.values[g.nodes[2].outputs[0]].name, "call2/T");
  EXPECT_EQ(g.values[g.outputs[0]].name, "z");
}

KILN_TEST(onnx_reader, recursive_functions_are_rejected) {
  FunctionBuilder f;
  f.name = "Loopy";
  f.domain = "custom";
  f.inputs = {"X"};
  f.outputs = {"Y"};
  f.node("Loopy", {"X"}, {"Y"}, {}, "custom");
  ModelBuilder m;
  m.opset("custom", 1);
  m.functions.push_back(f);
  m.input("x", DType::Float32, {2});
  m.node("Loopy", {"x"}, {"y"}, {}, "call", "custom");
  m.output("y");
  EXPECT_THROWS_WITH(read(m), "recursive function?");
}

KILN_TEST(onnx_reader, sparse_initializer) {
  Writer values;
  values.packedInt64s(1, {2});
  values.int64Field(2, static_cast<int64_t>(DType::Float32));
  values.bytesField(8, "sp");
  values.bytesField(9, rawBytes(std::vector<float>{7, 9}));
  Writer indices;
  indices.packedInt64s(1, {2});
  indices.int64Field(2, static_cast<int64_t>(DType::Int64));
  indices.bytesField(9, rawBytes(std::vector<int64_t>{1, 5}));
  Writer sparse;
  sparse.messageField(1, values);
  sparse.messageField(2, indices);
  sparse.packedInt64s(3, {2, 3});
  Writer graph;
  graph.bytesField(1, [] {
    Writer n;
    n.bytesField(1, "sp");
    n.bytesField(2, "y");
    n.bytesField(4, "Identity");
    return n.str();
  }());
  graph.messageField(15, sparse);
  graph.bytesField(12, valueInfoProto("y", DType::Undefined, {}));
  Writer model;
  model.int64Field(1, 8);
  model.messageField(7, graph);
  Writer opset;
  opset.int64Field(2, 17);
  model.messageField(8, opset);
  auto bytes = toBytes(model.str());
  Graph g = readModel(bytes.data(), bytes.size());
  const Tensor& t = *g.values[*g.findValue("sp")].constant;
  EXPECT_EQ(shapeToString(t.shape), "[2,3]");
  EXPECT_NEAR(t.ptr<float>()[1], 7, 0);
  EXPECT_NEAR(t.ptr<float>()[5], 9, 0);
  EXPECT_NEAR(t.ptr<float>()[0], 0, 0);
}

KILN_TEST(onnx_reader, external_data) {
  std::string dir = makeTempDir();
  std::vector<float> payload = {0, 0, 1, 2, 3, 4};
  writeFile(dir + "/weights.bin", rawBytes(payload));
  mkdir((dir + "/sub").c_str(), 0700);
  writeFile(dir + "/sub/w2.bin", rawBytes(std::vector<float>{9}));
  auto model = [&](const std::string& tensor) {
    ModelBuilder m;
    m.input("x", DType::Float32, {4});
    m.initializerProto(tensor);
    m.node("Add", {"x", "w"}, {"y"});
    m.output("y");
    return m;
  };
  ReadOptions opt;
  opt.modelDirectory = dir;
  Graph g = read(model(externalTensorProto("w", DType::Float32, {4}, "weights.bin", 8, 16)), opt);
  const Tensor& w = *g.values[*g.findValue("w")].constant;
  EXPECT_NEAR(w.ptr<float>()[0], 1, 0);
  EXPECT_NEAR(w.ptr<float>()[3], 4, 0);
  Graph g2 = read(model(externalTensorProto("w", DType::Float32, {1}, "sub/w2.bin")), opt);
  EXPECT_NEAR(g2.values[*g2.findValue("w")].constant->ptr<float>()[0], 9, 0);

  EXPECT_THROWS_WITH(read(model(externalTensorProto("w", DType::Float32, {4}, "weights.bin", 16)), opt),
                     "which has only 24 bytes");
  EXPECT_THROWS_WITH(read(model(externalTensorProto("w", DType::Float32, {4}, "weights.bin", 0, 12)), opt),
                     "external data length is 12 bytes");
  EXPECT_THROWS_WITH(read(model(externalTensorProto("w", DType::Float32, {4}, "../etc/passwd")), opt),
                     "escapes the model folder");
  EXPECT_THROWS_WITH(read(model(externalTensorProto("w", DType::Float32, {4}, "sub/../../x")), opt),
                     "escapes the model folder");
  EXPECT_THROWS_WITH(read(model(externalTensorProto("w", DType::Float32, {4}, "/etc/passwd")), opt),
                     "is an absolute path");
  EXPECT_THROWS_WITH(read(model(externalTensorProto("w", DType::Float32, {4}, "missing.bin")), opt),
                     "was not found");
  EXPECT_THROWS_WITH(read(model(externalTensorProto("w", DType::Float32, {4}, "sub")), opt),
                     "is not a regular file");
  // A symlink inside the folder that points outside it.
  EXPECT_TRUE(symlink("/etc/hostname", (dir + "/link.bin").c_str()) == 0);
  EXPECT_THROWS_WITH(read(model(externalTensorProto("w", DType::Float32, {1}, "link.bin")), opt),
                     "resolves outside the model directory");
  EXPECT_THROWS_WITH(read(model(externalTensorProto("w", DType::Float32, {4}, "weights.bin"))),
                     "no model directory was given");
  std::string cleanup = "rm -rf '" + dir + "'";
  EXPECT_EQ(std::system(cleanup.c_str()), 0);
}

KILN_TEST(onnx_reader, read_tensor_proto) {
  std::string t = tensorProto("input_0", DType::Int32, {2, 2}, rawBytes(std::vector<int32_t>{1, 2, 3, 4}));
  Tensor x = readTensorProto(reinterpret_cast<const uint8_t*>(t.data()), t.size());
  EXPECT_EQ(shapeToString(x.shape), "[2,2]");
  EXPECT_EQ(x.ptr<int32_t>()[3], 4);
  EXPECT_EQ(readTensorProtoName(reinterpret_cast<const uint8_t*>(t.data()), t.size()), "input_0");
  std::string bad = tensorProto("t", DType::Int32, {2, 3}, rawBytes(std::vector<int32_t>{1, 2}));
  EXPECT_THROWS_WITH(readTensorProto(reinterpret_cast<const uint8_t*>(bad.data()), bad.size()),
                     "tensor 't' has 8 bytes of raw_data but its shape [2,3] of int32 needs 24");
}

KILN_TEST(onnx_reader, conformance_models_parse) {
  // Every model of the ONNX node-test suite must parse or fail with a KilnError (never crash). About
  // 12% use float8/int4/sequence/optional types, which Kiln rejects; the rest must parse.
  const char* root = "/work/shared/conformance/onnx/node";
  std::string list = std::string("ls ") + root + " 2>/dev/null";
  FILE* p = popen(list.c_str(), "r");
  if (!p) return;
  char line[512];
  int ok = 0, failed = 0;
  while (fgets(line, sizeof line, p)) {
    std::string name(line);
    name.erase(name.find_last_not_of("\n") + 1);
    std::ifstream f(std::string(root) + "/" + name + "/model.onnx", std::ios::binary);
    if (!f) continue;
    std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    try {
      readModel(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
      ok++;
    } catch (const KilnError& e) {
      failed++;
    }
  }
  pclose(p);
  if (ok + failed == 0) return;  // suite not present on this machine
  EXPECT_TRUE(ok > (ok + failed) * 85 / 100);
}
