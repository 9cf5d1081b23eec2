// Hostile input for the ONNX reader, inference and inspect: every case must end in a KilnError with
// a clear message, never a crash, hang or other exception. Run under -DKILN_ASAN=ON too.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <random>

#include "core/error.h"
#include "graph/shape_inference.h"
#include "onnx/model_reader.h"
#include "onnx_builder.h"
#include "runtime/api.h"
#include "test.h"

using namespace kiln;
using namespace onnx_builder;

namespace {

// Parses, infers and inspects; returns "" on success or the KilnError message. Any other exception
// fails the test.
std::string tryAll(const std::string& bytes, const std::string& dir = "") {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  try {
    ReadOptions opt;
    opt.modelDirectory = dir;
    Graph g = readModel(p, bytes.size(), opt);
    inferShapes(g);
    inspectModel(p, bytes.size(), dir);
    return "";
  } catch (const KilnError& e) {
    std::string msg = e.what();
    if (msg.empty()) throw kiln_test::Failure("KilnError with an empty message");
    return msg;
  }
}

void expectError(const std::string& bytes, const std::string& substr, ErrorCode code = ErrorCode::InvalidModel) {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  try {
    Graph g = readModel(p, bytes.size());
    inferShapes(g);
  } catch (const KilnError& e) {
    if (std::string(e.what()).find(substr) == std::string::npos) {
      throw kiln_test::Failure(std::string("error '") + e.what() + "' lacks '" + substr + "'");
    }
    if (e.code() != code) {
      throw kiln_test::Failure(std::string("error '") + e.what() + "' has code " + errorCodeName(e.code()) +
                               ", expected " + errorCodeName(code));
    }
    return;
  }
  throw kiln_test::Failure("expected an error containing '" + substr + "'");
}

// A model exercising most of the format: initializers of several encodings, attributes of every
// kind, a subgraph with a capture, value_info, symbolic dims.
ModelBuilder richModel() {
  GraphBuilder body("then");
  body.node("Identity", {"x"}, {"t"});
  body.output("t", DType::Float32, {"batch", 3});
  ModelBuilder m;
  m.input("x", DType::Float32, {"batch", 3});
  m.input("c", DType::Bool, {});
  m.initializer("w", DType::Float32, {3}, std::vector<float>{1, 2, 3});
  m.initializer("shape", DType::Int64, {2}, std::vector<int64_t>{-1, 3});
  m.node("Reshape", {"x", "shape"}, {"r"}, {Attr::i("allowzero", 0)}, "reshape");
  m.node("Identity", {"r"}, {"y"}, {Attr::floats("f", {1, 2}), Attr::strings("s", {"a", "b"}), Attr::f("g", 1.5f)});
  m.node("If", {"c"}, {"o"}, {Attr::graph("then_branch", body), Attr::graph("else_branch", body)}, "if");
  m.valueInfo("r", DType::Float32, {"batch", 3});
  m.output("y", DType::Float32, {"batch", 3});
  m.output("o");
  return m;
}

std::string modelWithGraph(const std::string& graph, int64_t irVersion = 8) {
  Writer m;
  m.int64Field(1, irVersion);
  m.bytesField(7, graph);
  Writer opset;
  opset.int64Field(2, 17);
  m.messageField(8, opset);
  return m.str();
}

}  // namespace

KILN_TEST(hostile_reader, rich_model_is_valid) { EXPECT_EQ(tryAll(richModel().serialize()), ""); }

KILN_TEST(hostile_reader, every_truncation_fails_cleanly) {
  std::string full = richModel().serialize();
  int errors = 0;
  for (size_t n = 0; n < full.size(); n++) {
    if (!tryAll(full.substr(0, n)).empty()) errors++;
  }
  // Every strict prefix loses the opset imports (written last) or cuts a field.
  EXPECT_EQ(errors, static_cast<int>(full.size()));
}

KILN_TEST(hostile_reader, random_byte_flips_never_crash) {
  std::string full = richModel().serialize();
  std::mt19937 rng(1234);
  int errors = 0;
  for (int iter = 0; iter < 3000; iter++) {
    std::string mutated = full;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; k++) {
      size_t pos = rng() % mutated.size();
      switch (rng() % 3) {
        case 0: mutated[pos] = static_cast<char>(rng() & 0xff); break;
        case 1: mutated[pos] = static_cast<char>(mutated[pos] ^ (1 << (rng() % 8))); break;
        default: mutated.insert(pos, 1, static_cast<char>(rng() & 0xff)); break;
      }
    }
    if (!tryAll(mutated).empty()) errors++;
  }
  EXPECT_TRUE(errors > 0);
}

KILN_TEST(hostile_reader, empty_and_foreign_files) {
  expectError("", "the file is empty");
  expectError("hello, I am a text file\n", "malformed ONNX");
  expectError(std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16), "malformed ONNX");
  expectError(std::string("\x08\x07", 2), "it has no graph");  // a protobuf, but not a model
  std::mt19937 rng(7);
  for (int i = 0; i < 200; i++) {
    std::string junk(1 + rng() % 64, '\0');
    for (char& c : junk) c = static_cast<char>(rng() & 0xff);
    EXPECT_TRUE(!tryAll(junk).empty());
  }
}

KILN_TEST(hostile_reader, cycles_and_self_references) {
  ModelBuilder cyc;
  cyc.input("x", DType::Float32, {2});
  cyc.node("Add", {"x", "b"}, {"a"}, {}, "first");
  cyc.node("Relu", {"a"}, {"b"}, {}, "second");
  cyc.output("b");
  expectError(cyc.serialize(), "has a cycle through node '");
  ModelBuilder self;
  self.input("x", DType::Float32, {2});
  self.node("Relu", {"y"}, {"y"}, {}, "ouroboros");
  self.output("y");
  expectError(self.serialize(), "cycle through node 'ouroboros' (Relu)");
  // A subgraph capturing its own node's output is a cycle too.
  GraphBuilder body("b");
  body.node("Identity", {"o"}, {"t"});
  body.output("t");
  ModelBuilder sub;
  sub.input("c", DType::Bool, {});
  sub.node("If", {"c"}, {"o"}, {Attr::graph("then_branch", body), Attr::graph("else_branch", body)}, "loopy_if");
  sub.output("o");
  expectError(sub.serialize(), "cycle through node 'loopy_if' (If)");
}

KILN_TEST(hostile_reader, ssa_and_name_errors) {
  ModelBuilder dup;
  dup.input("x", DType::Float32, {2});
  dup.node("Relu", {"x"}, {"y"}, {}, "a");
  dup.node("Neg", {"x"}, {"y"}, {}, "b");
  dup.output("y");
  expectError(dup.serialize(), "value 'y' is defined twice: by node 'b' (Neg) and by node 'a'");
  ModelBuilder dupSelf;
  dupSelf.input("x", DType::Float32, {2});
  dupSelf.node("Split", {"x"}, {"y", "y"}, {}, "split");
  dupSelf.output("y");
  expectError(dupSelf.serialize(), "value 'y' is defined twice: by node 'split' (Split) and by the same node");
  ModelBuilder shadow;
  shadow.input("x", DType::Float32, {2});
  shadow.node("Relu", {"x"}, {"x"}, {}, "a");
  shadow.output("x");
  expectError(shadow.serialize(), "value 'x' is defined twice: by node 'a' (Relu) and by a graph input");
  ModelBuilder undef;
  undef.input("x", DType::Float32, {2});
  undef.node("Conv", {"x", "ghost"}, {"y"}, {}, "n");
  undef.output("y");
  expectError(undef.serialize(), "node 'n' (Conv) input 'ghost' is not defined");
  ModelBuilder noOut;
  noOut.input("x", DType::Float32, {2});
  noOut.node("Relu", {"x"}, {"y"});
  noOut.output("nothing");
  expectError(noOut.serialize(), "graph output 'nothing' is not defined");
  ModelBuilder noOp;
  noOp.input("x", DType::Float32, {2});
  noOp.node("", {"x"}, {"y"});
  noOp.output("y");
  expectError(noOp.serialize(), "has no op_type");
  ModelBuilder twice;
  twice.input("x", DType::Float32, {2});
  twice.node("Relu", {"x"}, {"y"}, {Attr::i("a", 1), Attr::i("a", 2)}, "r");
  twice.output("y");
  expectError(twice.serialize(), "node 'r' (Relu) has attribute 'a' twice");
  ModelBuilder ref;
  ref.input("x", DType::Float32, {2});
  ref.node("Relu", {"x"}, {"y"}, {Attr::ref("alpha", 1, "alpha")}, "r");
  ref.output("y");
  expectError(ref.serialize(), "refers to function attribute 'alpha' outside a function");
  ModelBuilder untyped;
  untyped.input("x", DType::Undefined, {});
  untyped.node("Relu", {"x"}, {"y"});
  untyped.output("y");
  expectError(untyped.serialize(), "graph input 'x' has no type");
  ModelBuilder none;
  none.input("x", DType::Float32, {2});
  expectError(none.serialize(), "the graph has no outputs");
}

KILN_TEST(hostile_reader, huge_and_negative_dims) {
  const int64_t huge = int64_t(1) << 62;
  ModelBuilder a;
  a.input("x", DType::Float32, {2});
  a.initializerProto(tensorProto("w", DType::Float32, {huge}, rawBytes(std::vector<float>{1})));
  a.node("Identity", {"x"}, {"y"});
  a.output("y");
  expectError(a.serialize(), "initializer 'w' dims [4611686018427387904] overflow");  // 2^62 floats: 2^64 bytes
  ModelBuilder a2;
  a2.input("x", DType::Float32, {2});
  a2.initializerProto(tensorProto("w", DType::Float32, {int64_t(1) << 50}, rawBytes(std::vector<float>{1})));
  a2.node("Identity", {"x"}, {"y"});
  a2.output("y");
  expectError(a2.serialize(), "initializer 'w' has 4 bytes of raw_data but its shape [1125899906842624]");
  ModelBuilder b;
  b.input("x", DType::Float32, {2});
  b.initializerProto(tensorProto("w", DType::Float32, {huge, huge}, rawBytes(std::vector<float>{1})));
  b.node("Identity", {"x"}, {"y"});
  b.output("y");
  expectError(b.serialize(), "initializer 'w' dims [4611686018427387904,4611686018427387904] overflow");
  ModelBuilder c;
  c.input("x", DType::Float32, {huge, 2});
  c.node("Identity", {"x"}, {"y"});
  c.output("y");
  expectError(c.serialize(), "graph input 'x' dim 0 is 4611686018427387904, larger than any tensor");
  ModelBuilder d;
  d.input("x", DType::Float32, {2, -3});
  d.node("Identity", {"x"}, {"y"});
  d.output("y");
  expectError(d.serialize(), "graph input 'x' dim 1 is -3, which is negative");
  ModelBuilder e;
  e.input("x", DType::Float32, {2});
  e.initializerProto(tensorProto("w", DType::Float32, {-1}, ""));
  e.node("Identity", {"x"}, {"y"});
  e.output("y");
  expectError(e.serialize(), "initializer 'w' has a negative dimension in [-1]");
  // A huge sparse tensor would be a huge dense allocation: refused before allocating.
  Writer values;
  values.packedInt64s(1, {1});
  values.int64Field(2, 1);
  values.bytesField(8, "sp");
  values.bytesField(9, rawBytes(std::vector<float>{1}));
  Writer sparse;
  sparse.messageField(1, values);
  sparse.packedInt64s(3, {int64_t(1) << 40});
  Writer graph;
  graph.messageField(15, sparse);
  graph.bytesField(11, valueInfoProto("x", DType::Float32, {1}));
  graph.bytesField(12, valueInfoProto("x", DType::Float32, {1}));
  expectError(modelWithGraph(graph.str()), "more than the limit", ErrorCode::OutOfMemory);
  // Rank beyond the limit.
  ModelBuilder r;
  r.input("x", DType::Float32, Dims(100, DimSpec(1)));
  r.node("Identity", {"x"}, {"y"});
  r.output("y");
  expectError(r.serialize(), "rank 100, more than the limit of 64");
}

KILN_TEST(hostile_reader, tensor_data_disagrees_with_dims) {
  auto withInit = [](const std::string& tensor) {
    ModelBuilder m;
    m.input("x", DType::Float32, {2});
    m.initializerProto(tensor);
    m.node("Identity", {"x"}, {"y"});
    m.output("y");
    return m.serialize();
  };
  expectError(withInit(tensorProto("w", DType::Float32, {2, 3}, rawBytes(std::vector<float>{1, 2, 3}))),
              "has 12 bytes of raw_data but its shape [2,3] of float32 needs 24");
  Writer typed;
  typed.packedInt64s(1, {3});
  typed.int64Field(2, 1);
  typed.bytesField(8, "w");
  typed.packedFloats(4, {1, 2});
  expectError(withInit(typed.str()), "has 2 float_data values but its shape [3] needs 3");
  Writer wrongField;
  wrongField.packedInt64s(1, {1});
  wrongField.int64Field(2, 7);  // int64 stored in float_data
  wrongField.bytesField(8, "w");
  wrongField.packedFloats(4, {1});
  expectError(withInit(wrongField.str()), "of type int64 stores data in float_data (expected int64_data)");
  Writer both;
  both.packedInt64s(1, {1});
  both.int64Field(2, 1);
  both.bytesField(8, "w");
  both.packedFloats(4, {1});
  both.bytesField(9, rawBytes(std::vector<float>{1}));
  expectError(withInit(both.str()), "has both raw_data and typed data");
  Writer noData;
  noData.packedInt64s(1, {4});
  noData.int64Field(2, 1);
  noData.bytesField(8, "w");
  expectError(withInit(noData.str()), "initializer 'w' has shape [4] (4 elements) but no data");
  expectError(withInit(tensorProto("w", static_cast<DType>(99), {1}, "x")), "unknown element type code 99");
  expectError(withInit(tensorProto("w", static_cast<DType>(17), {1}, "x")), "FLOAT8E4M3FN",
              ErrorCode::UnsupportedOp);
  Writer seg;
  seg.packedInt64s(1, {1});
  seg.int64Field(2, 1);
  seg.bytesField(8, "w");
  seg.bytesField(3, "");
  seg.bytesField(9, rawBytes(std::vector<float>{1}));
  expectError(withInit(seg.str()), "segmented tensor", ErrorCode::UnsupportedOp);
  Writer str;
  str.packedInt64s(1, {1});
  str.int64Field(2, 8);
  str.bytesField(8, "w");
  str.bytesField(9, "abcd");
  expectError(withInit(str.str()), "string tensor with raw_data");
}

KILN_TEST(hostile_reader, external_data_cannot_escape) {
  char tmpl[] = "/tmp/kiln_hostile_XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::ofstream(dir + "/w.bin", std::ios::binary) << std::string(16, '\0');
  auto model = [](const std::string& tensor) {
    ModelBuilder m;
    m.input("x", DType::Float32, {4});
    m.initializerProto(tensor);
    m.node("Identity", {"x"}, {"y"});
    m.output("y");
    return m.serialize();
  };
  for (const char* loc : {"../w.bin", "..", "a/../../w.bin", "/etc/passwd", "..\\w.bin", ""}) {
    std::string msg = tryAll(model(externalTensorProto("w", DType::Float32, {4}, loc)), dir);
    EXPECT_TRUE(!msg.empty());
  }
  EXPECT_TRUE(tryAll(model(externalTensorProto("w", DType::Float32, {4}, "w.bin", 1 << 30)), dir)
                  .find("which has only 16 bytes") != std::string::npos);
  EXPECT_TRUE(tryAll(model(externalTensorProto("w", DType::Float32, {4}, "w.bin", (int64_t(1) << 62))), dir)
                  .find("which has only 16 bytes") != std::string::npos);
  EXPECT_TRUE(tryAll(model(externalTensorProto("w", DType::Float32, {int64_t(1) << 40}, "w.bin")), dir)
                  .find("more than the limit") != std::string::npos);
  EXPECT_TRUE(tryAll(model(externalTensorProto("w", DType::Float32, {int64_t(1) << 20}, "w.bin")), dir)
                  .find("which has only 16 bytes") != std::string::npos);
  EXPECT_EQ(tryAll(model(externalTensorProto("w", DType::Float32, {4}, "w.bin")), dir), "");
  std::string cleanup = "rm -rf '" + dir + "'";
  EXPECT_EQ(std::system(cleanup.c_str()), 0);
}

KILN_TEST(hostile_reader, deeply_nested_subgraphs) {
  auto nested = [](int depth) {
    GraphBuilder leaf("leaf");
    leaf.node("Identity", {"x"}, {"t0"});
    leaf.output("t0");
    GraphBuilder inner = leaf;
    for (int d = 1; d < depth; d++) {
      GraphBuilder outer("level" + std::to_string(d));
      // The else branch is the small leaf: nesting both branches would double the file per level.
      outer.node("If", {"c"}, {"t" + std::to_string(d)},
                 {Attr::graph("then_branch", inner), Attr::graph("else_branch", leaf)});
      outer.output("t" + std::to_string(d));
      inner = outer;
    }
    ModelBuilder m;
    m.input("c", DType::Bool, {});
    m.input("x", DType::Float32, {2});
    m.node("If", {"c"}, {"y"}, {Attr::graph("then_branch", inner), Attr::graph("else_branch", leaf)});
    m.output("y");
    return m.serialize();
  };
  EXPECT_EQ(tryAll(nested(8)), "");
  expectError(nested(40), "subgraphs are nested more than 32 deep");
  // Far deeper than the graph limit: the wire reader's nesting limit stops it first.
  std::string g;
  {
    Writer leaf;
    leaf.bytesField(12, valueInfoProto("x", DType::Undefined, {}));
    g = leaf.str();
  }
  for (int d = 0; d < 400; d++) {
    Writer attr;
    attr.bytesField(1, "then_branch");
    attr.int64Field(20, 5);
    attr.bytesField(6, g);
    Writer node;
    node.bytesField(1, "c");
    node.bytesField(2, "o" + std::to_string(d));
    node.bytesField(4, "If");
    node.bytesField(5, attr.str());
    Writer graph;
    graph.bytesField(1, node.str());
    graph.bytesField(12, valueInfoProto("o" + std::to_string(d), DType::Undefined, {}));
    g = graph.str();
  }
  expectError(modelWithGraph(g), "nested more than");
}

KILN_TEST(hostile_reader, model_level_errors) {
  Writer noIr;
  noIr.bytesField(7, richModel().GraphBuilder::bytes());
  expectError(noIr.str(), "ir_version is missing");
  Writer noOpset;
  noOpset.int64Field(1, 8);
  noOpset.bytesField(7, richModel().GraphBuilder::bytes());
  expectError(noOpset.str(), "imports no operator set");
  ModelBuilder badOpset = richModel();
  badOpset.opset("", 0);
  expectError(badOpset.serialize(), "opset import for domain 'ai.onnx' has invalid version 0");
  std::string two = richModel().serialize();
  Writer extra;
  extra.bytesField(7, richModel().GraphBuilder::bytes());
  expectError(two + extra.str(), "more than one graph");
  // A 10-byte varint with too many bits in ir_version.
  expectError(std::string("\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 11), "varint overflows 64 bits");
}
