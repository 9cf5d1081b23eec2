// The engine format: round trip of every graph feature, and hostile bytes (truncation, flips,
// re-sealed garbage) that must end in KilnError(EngineMismatch), never a crash.
#include <cstring>
#include <random>

#include "core/error.h"
#include "plan/serialize.h"
#include "plan/serialize_hash.h"
#include "test.h"

using namespace kiln;

namespace {

std::shared_ptr<Tensor> floats(const Shape& shape, float start) {
  auto t = std::make_shared<Tensor>(Tensor::allocate(DType::Float32, shape));
  for (int64_t i = 0; i < t->numel(); ++i) t->ptr<float>()[i] = start + static_cast<float>(i);
  return t;
}

// x[batch,4] -> MatMul(W) -> If(cond){ then: Relu(y) } -> out; with attributes of every kind.
EnginePlan samplePlan() {
  auto g = std::make_shared<Graph>();
  g->name = "main";
  g->opsets[""] = 17;
  g->opsets["kiln"] = 1;
  SymShape xs;
  xs.hasRank = true;
  xs.dims = {Dim::sym("batch"), Dim::known(4)};
  ValueId x = g->addValue("x", DType::Float32, xs);
  g->inputs.push_back(x);
  ValueId cond = g->addValue("cond", DType::Bool, SymShape::of({}));
  g->inputs.push_back(cond);
  ValueId w = g->addConstant("W", *floats({4, 3}, 0.5f));
  ValueId y = g->addValue("y", DType::Float32, SymShape::unknown());
  Node mm;
  mm.name = "mm";
  mm.opType = "MatMul";
  mm.inputs = {x, w};
  mm.outputs = {y};
  Attribute f;
  f.kind = Attribute::Kind::Float;
  f.f = 0.25f;
  mm.attrs["alpha"] = f;
  Attribute ints;
  ints.kind = Attribute::Kind::Ints;
  ints.ints = {1, -2, 3};
  mm.attrs["perm"] = ints;
  Attribute strs;
  strs.kind = Attribute::Kind::Strings;
  strs.strings = {"a", "", "long string"};
  mm.attrs["names"] = strs;
  Attribute tens;
  tens.kind = Attribute::Kind::Tensor;
  tens.t = floats({2}, 7.0f);
  mm.attrs["value"] = tens;
  g->addNode(mm);

  auto body = std::make_shared<Graph>();
  body->name = "then";
  body->parent = g.get();
  ValueId captured = body->addValue("y", DType::Float32, SymShape::unknown());
  ValueId relu = body->addValue("relu_out", DType::Float32, SymShape::unknown());
  Node r;
  r.name = "relu";
  r.opType = "Relu";
  r.inputs = {captured};
  r.outputs = {relu};
  body->addNode(r);
  body->outputs.push_back(relu);

  ValueId out = g->addValue("out", DType::Float32, SymShape::unknown());
  Node iff;
  iff.name = "if";
  iff.opType = "If";
  iff.inputs = {cond};
  iff.outputs = {out};
  Attribute then;
  then.kind = Attribute::Kind::Graph;
  then.g = body;
  iff.attrs["then_branch"] = then;
  Attribute other = then;
  other.kind = Attribute::Kind::Graphs;
  other.graphs = {body};
  iff.attrs["else_branch_list"] = other;
  g->addNode(iff);
  g->outputs.push_back(out);

  EnginePlan plan;
  plan.identity.builderVersion = "0.1.0";
  plan.identity.backend = "cpu";
  plan.identity.target = "cpu-x86_64-avx2";
  plan.identity.precision = Precision::Fp32;
  Profile p;
  p.min["x"] = {1, 4};
  p.opt["x"] = {8, 4};
  p.max["x"] = {64, 4};
  plan.profiles.push_back(p);
  plan.graph = g;
  plan.kernelNames = {"matmul.sgemm", "control.if"};
  plan.memory.slots.resize(g->values.size());
  plan.memory.arenaBytes = 4096;
  plan.memory.slots[y] = EngineSlot{0, 768, kNoValue};
  plan.memory.slots[out] = EngineSlot{1024, 768, kNoValue};
  plan.memory.workspaces = {EngineSlot{2048, 2048, kNoValue}, EngineSlot{}};
  plan.report.nodesBefore = 5;
  plan.report.nodesAfter = 2;
  plan.report.fusions["fuse_gemm_bias"] = 1;
  plan.report.layers.push_back(LayerReport{"mm", "MatMul", "matmul.sgemm", "[8,3]", 0.125});
  plan.report.warnings.push_back("hello");
  plan.weightBytes = 48 + 8;
  return plan;
}

void resealPayload(std::vector<uint8_t>& bytes) {
  uint32_t headerBytes;
  std::memcpy(&headerBytes, bytes.data() + 12, 4);
  uint64_t sum = xxhash64(bytes.data() + headerBytes, bytes.size() - headerBytes);
  std::memcpy(bytes.data() + 24, &sum, 8);
  // The header checksum covers the payload checksum: recompute it as the writer does.
  uint64_t seed = xxhash64(bytes.data(), 32, 0x4b494c4e48445231ULL);
  uint64_t h = xxhash64(bytes.data() + 40, headerBytes - 40, seed);
  std::memcpy(bytes.data() + 32, &h, 8);
}

}  // namespace

KILN_TEST(serialize, xxhash64_matches_reference_vectors) {
  EXPECT_EQ(xxhash64("", 0), 0xef46db3751d8e999ULL);
  EXPECT_EQ(xxhash64("abc", 3), 0x44bc2cf5ad770999ULL);
  std::string k(100, 'k');
  EXPECT_EQ(xxhash64(k.data(), k.size()), 0xbf74f9bfd1d88091ULL);
  const char* s = "Nobody inspects the spammish repetition";
  EXPECT_EQ(xxhash64(s, std::strlen(s)), 0xfbcea83c8a378bf1ULL);
}

KILN_TEST(serialize, round_trip_keeps_everything) {
  EnginePlan plan = samplePlan();
  std::vector<uint8_t> bytes = serializeEngine(plan);
  EXPECT_TRUE(std::memcmp(bytes.data(), "KILNENG1", 8) == 0);
  EnginePlan back = deserializeEngine(bytes.data(), bytes.size());

  EXPECT_EQ(back.identity.target, std::string("cpu-x86_64-avx2"));
  EXPECT_EQ(back.identity.builderVersion, std::string("0.1.0"));
  EXPECT_EQ(back.profiles.size(), size_t(1));
  EXPECT_EQ(back.profiles[0].max.at("x")[0], 64);
  const Graph& g = *back.graph;
  EXPECT_EQ(g.opsetFor(""), 17);
  EXPECT_EQ(g.values.size(), plan.graph->values.size());
  EXPECT_EQ(g.values[0].shape.toString(), std::string("[batch,4]"));
  EXPECT_EQ(g.values[3].shape.hasRank, false);
  const Tensor& w = *g.values[2].constant;
  EXPECT_EQ(shapeToString(w.shape), std::string("[4,3]"));
  EXPECT_EQ(w.ptr<float>()[11], 11.5f);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(w.data) % kWeightAlignment, uintptr_t(0));
  const Node& mm = g.nodes[0];
  EXPECT_EQ(mm.getFloat("alpha", 0), 0.25f);
  EXPECT_EQ(mm.getInts("perm")[1], -2);
  EXPECT_EQ(mm.attrs.at("names").strings[2], std::string("long string"));
  EXPECT_EQ(mm.attrs.at("value").t->ptr<float>()[1], 8.0f);
  const Node& iff = g.nodes[1];
  const Graph& body = *iff.attrs.at("then_branch").g;
  EXPECT_EQ(body.parent, &g);
  EXPECT_EQ(body.nodes[0].opType, std::string("Relu"));
  EXPECT_EQ(iff.attrs.at("else_branch_list").graphs.size(), size_t(1));
  EXPECT_EQ(back.kernelNames[1], std::string("control.if"));
  EXPECT_EQ(back.memory.arenaBytes, uint64_t(4096));
  EXPECT_EQ(back.memory.slots[*g.findValue("out")].offset, int64_t(1024));
  EXPECT_EQ(back.memory.workspaces[0].bytes, uint64_t(2048));
  EXPECT_EQ(back.report.fusions.at("fuse_gemm_bias"), 1);
  EXPECT_EQ(back.report.layers[0].timeMs, 0.125);
  // Serializing what was read gives the same bytes: nothing is lost or reordered.
  std::vector<uint8_t> again = serializeEngine(back);
  EXPECT_TRUE(again == bytes);
}

KILN_TEST(serialize, every_truncation_is_an_engine_mismatch) {
  std::vector<uint8_t> bytes = serializeEngine(samplePlan());
  for (size_t n = 0; n < bytes.size(); ++n) {
    try {
      deserializeEngine(bytes.data(), n);
      throw kiln_test::Failure("truncation to " + std::to_string(n) + " bytes was accepted");
    } catch (const KilnError& e) {
      EXPECT_TRUE(e.code() == ErrorCode::EngineMismatch);
    }
  }
}

KILN_TEST(serialize, every_byte_flip_is_detected) {
  std::vector<uint8_t> bytes = serializeEngine(samplePlan());
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::vector<uint8_t> bad = bytes;
    bad[i] ^= 0x40;
    try {
      deserializeEngine(bad.data(), bad.size());
      throw kiln_test::Failure("flip at byte " + std::to_string(i) + " was accepted");
    } catch (const KilnError& e) {
      EXPECT_TRUE(e.code() == ErrorCode::EngineMismatch);
    }
  }
  std::vector<uint8_t> bad = bytes;
  bad.back() ^= 1;
  EXPECT_THROWS_WITH(deserializeEngine(bad.data(), bad.size()), "checksum mismatch");
}

KILN_TEST(serialize, resealed_garbage_never_crashes) {
  // An attacker can recompute the checksums: the parser itself must then hold the line.
  std::vector<uint8_t> bytes = serializeEngine(samplePlan());
  uint32_t headerBytes;
  std::memcpy(&headerBytes, bytes.data() + 12, 4);
  std::mt19937 rng(1234);
  int accepted = 0;
  for (int round = 0; round < 3000; ++round) {
    std::vector<uint8_t> bad = bytes;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) {
      size_t at = headerBytes + rng() % (bad.size() - headerBytes);
      bad[at] = static_cast<uint8_t>(rng());
    }
    resealPayload(bad);
    try {
      EnginePlan plan = deserializeEngine(bad.data(), bad.size());
      accepted++;  // e.g. a changed weight or name: valid bytes, just different
    } catch (const KilnError& e) {
      EXPECT_TRUE(e.code() == ErrorCode::EngineMismatch || e.code() == ErrorCode::OutOfMemory);
    }
  }
  EXPECT_TRUE(accepted < 3000);
}

KILN_TEST(serialize, rejects_other_formats_and_targets) {
  std::vector<uint8_t> bytes = serializeEngine(samplePlan());
  const char* onnx = "\x08\x07\x12\x04kiln";
  EXPECT_THROWS_WITH(deserializeEngine(reinterpret_cast<const uint8_t*>(onnx), 9), "not a Kiln engine");
  std::vector<uint8_t> future = bytes;
  future[8] = 9;
  EXPECT_THROWS_WITH(deserializeEngine(future.data(), future.size()), "format version 9");

  EngineIdentity built = readEngineIdentity(bytes.data(), bytes.size());
  EngineIdentity runtime = built;
  checkEngineCompatible(built, runtime);
  runtime.target = "cuda-sm90";
  runtime.backend = "cuda";
  runtime.builderVersion = "0.2.0";
  EXPECT_THROWS_WITH(checkEngineCompatible(built, runtime),
                     "engine was built for cpu-x86_64-avx2 by builder 0.1.0, this runtime is cuda-sm90 by builder 0.2.0");
  runtime = built;
  runtime.libraryVersions = "cuda=13.0";
  EXPECT_THROWS_WITH(checkEngineCompatible(built, runtime), "cuda=13.0");
}
