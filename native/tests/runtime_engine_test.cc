// The runtime end to end: build from ONNX bytes, serialize, load, run; input validation errors;
// engine mismatch; memory plan use (arena, views, in-place, data-dependent fallback); caching of
// per-shape plans; many contexts at once; progress and cancellation.
#include <atomic>
#include <cmath>
#include <cstring>
#include <thread>

#include "core/error.h"
#include "onnx_builder.h"
#include "plan/serialize.h"
#include "runtime/api.h"
#include "test.h"

using namespace kiln;
using onnx_builder::Attr;
using onnx_builder::ModelBuilder;

namespace {

// y = relu(x @ W + b), x: [batch, 4], W: [4, 3].
const std::vector<float> kW = {0.5f, -1.0f, 0.25f, 1.0f, 0.5f, -0.5f, -0.25f, 0.75f, 1.5f, 2.0f, -1.5f, 0.0f};
const std::vector<float> kB = {0.1f, -0.2f, 0.3f};

std::vector<uint8_t> denseModel() {
  ModelBuilder m;
  m.input("x", DType::Float32, {"batch", 4});
  m.initializer("W", DType::Float32, {4, 3}, kW);
  m.initializer("b", DType::Float32, {3}, kB);
  m.node("MatMul", {"x", "W"}, {"xw"}, {}, "matmul");
  m.node("Add", {"xw", "b"}, {"xwb"}, {}, "add");
  m.node("Relu", {"xwb"}, {"y"}, {}, "relu");
  m.output("y", DType::Float32, {"batch", 3});
  return m.bytes();
}

std::vector<float> denseReference(const std::vector<float>& x, int64_t batch) {
  std::vector<float> y(batch * 3);
  for (int64_t r = 0; r < batch; ++r) {
    for (int c = 0; c < 3; ++c) {
      float acc = kB[c];
      for (int k = 0; k < 4; ++k) acc += x[r * 4 + k] * kW[k * 3 + c];
      y[r * 3 + c] = std::max(acc, 0.0f);
    }
  }
  return y;
}

Tensor floatTensor(const Shape& shape, float seed) {
  Tensor t = Tensor::allocate(DType::Float32, shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.ptr<float>()[i] = std::sin(seed + 0.37f * static_cast<float>(i));
  return t;
}

std::vector<float> values(const Tensor& t) { return std::vector<float>(t.ptr<float>(), t.ptr<float>() + t.numel()); }

Profile batchProfile(const std::string& input, int64_t min, int64_t opt, int64_t max, int64_t width) {
  Profile p;
  p.min[input] = {min, width};
  p.opt[input] = {opt, width};
  p.max[input] = {max, width};
  return p;
}

BuildResult buildDense() {
  BuildOptions options;
  options.profiles.push_back(batchProfile("x", 1, 4, 8, 4));
  std::vector<uint8_t> model = denseModel();
  return buildEngine(model.data(), model.size(), options);
}

void expectClose(const std::vector<float>& got, const std::vector<float>& want) {
  EXPECT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-5);
}

ErrorCode codeOf(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const KilnError& e) {
    return e.code();
  }
  throw kiln_test::Failure("expected a KilnError");
}

}  // namespace

KILN_TEST(runtime, build_load_run_matches_reference) {
  BuildResult built = buildDense();
  EXPECT_TRUE(built.engine.size() > 64);
  EXPECT_EQ(built.report.layers.size(), built.report.nodesAfter);
  EXPECT_TRUE(built.report.weightBytes >= (kW.size() + kB.size()) * 4);
  std::shared_ptr<Engine> engine = Engine::load(built.engine.data(), built.engine.size());
  EXPECT_EQ(engine->inputs().size(), size_t(1));
  EXPECT_EQ(engine->inputs()[0].shape.toString(), std::string("[batch,4]"));
  EXPECT_EQ(engine->outputs()[0].name, std::string("y"));
  EXPECT_EQ(engine->deviceMemoryBytes(), built.report.peakMemoryBytes);
  EXPECT_EQ(engine->profiles().size(), size_t(1));
  EXPECT_EQ(engine->target(), Engine::load(built.engine.data(), built.engine.size())->target());
  auto ctx = engine->createContext();
  for (int64_t batch : {1, 8, 3, 8, 1}) {
    Tensor x = floatTensor({batch, 4}, static_cast<float>(batch));
    RunResult r = ctx->run({{"x", x}});
    EXPECT_EQ(r.outputs.size(), size_t(1));
    EXPECT_EQ(r.outputs[0].first, std::string("y"));
    EXPECT_EQ(shapeToString(r.outputs[0].second.shape), "[" + std::to_string(batch) + ",3]");
    expectClose(values(r.outputs[0].second), denseReference(values(x), batch));
    EXPECT_TRUE(r.computeMs >= 0);
  }
  std::string json = engine->describeJson();
  EXPECT_TRUE(json.find("\"target\"") != std::string::npos);
  EXPECT_TRUE(json.find("\"layers\"") != std::string::npos);
}

KILN_TEST(runtime, outputs_outlive_the_next_run_and_the_engine) {
  BuildResult built = buildDense();
  Tensor first;
  std::vector<float> want;
  {
    std::shared_ptr<Engine> engine = Engine::load(built.engine.data(), built.engine.size());
    auto ctx = engine->createContext();
    Tensor x = floatTensor({2, 4}, 1.0f);
    want = denseReference(values(x), 2);
    first = ctx->run({{"x", x}}).outputs[0].second;
    ctx->run({{"x", floatTensor({2, 4}, 9.0f)}});
  }
  expectClose(values(first), want);
}

KILN_TEST(runtime, input_errors_name_the_input) {
  BuildResult built = buildDense();
  auto engine = Engine::load(built.engine.data(), built.engine.size());
  auto ctx = engine->createContext();
  Tensor ints = Tensor::allocate(DType::Int64, {2, 4});
  EXPECT_THROWS_WITH(ctx->run({{"x", ints}}), "input 'x' expects float32, got int64");
  EXPECT_TRUE(codeOf([&] { ctx->run({{"x", ints}}); }) == ErrorCode::DTypeMismatch);
  EXPECT_THROWS_WITH(ctx->run({{"x", floatTensor({2, 5}, 0)}}), "input 'x' has shape [2,5] but the model expects [batch,4]");
  EXPECT_THROWS_WITH(ctx->run({{"x", floatTensor({2, 4, 1}, 0)}}), "rank 3");
  EXPECT_THROWS_WITH(ctx->run({{"x", floatTensor({9, 4}, 0)}}), "input 'x' has shape [9,4]");
  EXPECT_TRUE(codeOf([&] { ctx->run({{"x", floatTensor({9, 4}, 0)}}); }) == ErrorCode::ShapeMismatch);
  EXPECT_THROWS_WITH(ctx->run({}), "missing input 'x'");
  EXPECT_THROWS_WITH(ctx->run({{"x", floatTensor({1, 4}, 0)}, {"z", floatTensor({1}, 0)}}), "unknown input 'z'");
  EXPECT_THROWS_WITH(ctx->run({{"x", floatTensor({1, 4}, 0)}, {"x", floatTensor({1, 4}, 0)}}), "given twice");
  Tensor empty;
  empty.dtype = DType::Float32;
  empty.shape = {2, 4};
  EXPECT_THROWS_WITH(ctx->run({{"x", empty}}), "has no data");
  // The context still works after errors.
  Tensor x = floatTensor({2, 4}, 3.0f);
  expectClose(values(ctx->run({{"x", x}}).outputs[0].second), denseReference(values(x), 2));
}

KILN_TEST(runtime, load_rejects_other_targets_and_corruption) {
  BuildResult built = buildDense();
  EnginePlan plan = deserializeEngine(built.engine.data(), built.engine.size());
  std::string here = plan.identity.target;
  plan.identity.backend = "cuda";
  plan.identity.target = "cuda-sm90";
  std::vector<uint8_t> cuda = serializeEngine(plan);
  EXPECT_THROWS_WITH(Engine::load(cuda.data(), cuda.size()),
                     "engine was built for cuda-sm90 by builder " + builderVersion() + ", this runtime is " + here);
  plan.identity.backend = "cpu";
  plan.identity.target = here;
  plan.identity.builderVersion = "0.0.1-old";
  std::vector<uint8_t> old = serializeEngine(plan);
  EXPECT_THROWS_WITH(Engine::load(old.data(), old.size()), "by builder 0.0.1-old");
  std::vector<uint8_t> bad = built.engine;
  bad[bad.size() / 2] ^= 0x10;
  EXPECT_THROWS_WITH(Engine::load(bad.data(), bad.size()), "checksum mismatch");
  EXPECT_TRUE(codeOf([&] { Engine::load(bad.data(), bad.size() - 3); }) == ErrorCode::EngineMismatch);
  std::vector<uint8_t> onnx = denseModel();
  EXPECT_THROWS_WITH(Engine::load(onnx.data(), onnx.size()), "not a Kiln engine");
}

KILN_TEST(runtime, many_contexts_run_concurrently) {
  BuildResult built = buildDense();
  auto engine = Engine::load(built.engine.data(), built.engine.size());
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      auto ctx = engine->createContext();
      for (int i = 0; i < 40; ++i) {
        int64_t batch = 1 + (t + i) % 8;
        Tensor x = floatTensor({batch, 4}, static_cast<float>(t * 100 + i));
        std::vector<float> got = values(ctx->run({{"x", x}}).outputs[0].second);
        std::vector<float> want = denseReference(values(x), batch);
        for (size_t k = 0; k < want.size(); ++k) {
          if (std::fabs(got[k] - want[k]) > 1e-5) failures++;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

KILN_TEST(runtime, arena_holds_intermediates_with_views_and_in_place) {
  // x -> Relu -> Reshape -> Neg -> Abs -> y at level 0 (no fusion): relu_out lives in the arena, the
  // Reshape is a view of it and Neg writes over it, so the arena holds exactly one 4 KiB tensor.
  ModelBuilder m;
  m.input("x", DType::Float32, {1, 1024});
  m.initializer("shape", DType::Int64, {2}, std::vector<int64_t>{32, 32});
  m.node("Relu", {"x"}, {"r"}, {}, "relu");
  m.node("Reshape", {"r", "shape"}, {"v"}, {}, "reshape");
  m.node("Neg", {"v"}, {"n"}, {}, "neg");
  m.node("Abs", {"n"}, {"y"}, {}, "abs");
  m.output("y", DType::Float32, {32, 32});
  std::vector<uint8_t> model = m.bytes();
  BuildOptions options;
  options.optimizationLevel = 0;
  BuildResult planned = buildEngine(model.data(), model.size(), options);
  EXPECT_EQ(planned.report.peakMemoryBytes, size_t(4096));
  options.planMemory = false;
  BuildResult unplanned = buildEngine(model.data(), model.size(), options);
  EXPECT_EQ(unplanned.report.peakMemoryBytes, size_t(3 * 4096));
  for (const BuildResult* b : {&planned, &unplanned}) {
    auto engine = Engine::load(b->engine.data(), b->engine.size());
    EXPECT_EQ(engine->deviceMemoryBytes(), b->report.peakMemoryBytes);
    auto ctx = engine->createContext();
    Tensor x = floatTensor({1, 1024}, 0.5f);
    for (int round = 0; round < 2; ++round) {
      Tensor y = ctx->run({{"x", x}}).outputs[0].second;
      EXPECT_EQ(shapeToString(y.shape), std::string("[32,32]"));
      for (int64_t i = 0; i < 1024; ++i) EXPECT_NEAR(y.ptr<float>()[i], std::max(x.ptr<float>()[i], 0.0f), 0);
    }
  }
}

KILN_TEST(runtime, shape_computed_reshape_is_planned_and_cached) {
  // y = relu(reshape(x, [batch, 2, 3])) with the target shape computed from Shape(x) at run time.
  ModelBuilder m;
  m.input("x", DType::Float32, {"batch", 6});
  m.initializer("zero", DType::Int64, {1}, std::vector<int64_t>{0});
  m.initializer("tail", DType::Int64, {2}, std::vector<int64_t>{2, 3});
  m.node("Relu", {"x"}, {"r"}, {}, "relu");
  m.node("Shape", {"x"}, {"s"}, {}, "shape");
  m.node("Gather", {"s", "zero"}, {"b"}, {Attr::i("axis", 0)}, "gather");
  m.node("Concat", {"b", "tail"}, {"target"}, {Attr::i("axis", 0)}, "concat");
  m.node("Reshape", {"r", "target"}, {"v"}, {}, "reshape");
  m.node("Neg", {"v"}, {"y"}, {}, "neg");
  m.output("y", DType::Float32, {"batch", 2, 3});
  std::vector<uint8_t> model = m.bytes();
  BuildOptions options;
  options.optimizationLevel = 0;
  options.profiles.push_back(batchProfile("x", 1, 2, 16, 6));
  BuildResult built = buildEngine(model.data(), model.size(), options);
  // relu_out at batch 16 (384 bytes) is planned; nothing is left to the heap.
  EXPECT_TRUE(built.report.peakMemoryBytes >= 384);
  for (const std::string& w : built.report.warnings) EXPECT_TRUE(w.find("data-dependent") == std::string::npos);
  auto engine = Engine::load(built.engine.data(), built.engine.size());
  auto ctx = engine->createContext();
  for (int64_t batch : {16, 2, 16, 5, 2}) {
    Tensor x = floatTensor({batch, 6}, static_cast<float>(batch));
    Tensor y = ctx->run({{"x", x}}).outputs[0].second;
    EXPECT_EQ(shapeToString(y.shape), "[" + std::to_string(batch) + ",2,3]");
    for (int64_t i = 0; i < y.numel(); ++i) EXPECT_NEAR(y.ptr<float>()[i], -std::max(x.ptr<float>()[i], 0.0f), 0);
  }
}

KILN_TEST(runtime, data_dependent_shapes_fall_back_to_the_heap) {
  // y = NonZero(relu(x)): its size depends on the data, so it is sized per run.
  ModelBuilder m;
  m.input("x", DType::Float32, {8});
  m.node("Relu", {"x"}, {"r"}, {}, "relu");
  m.node("NonZero", {"r"}, {"nz"}, {}, "nonzero");
  m.node("Neg", {"nz"}, {"y"}, {}, "neg");
  m.output("y", DType::Int64, {1, "n"});
  std::vector<uint8_t> model = m.bytes();
  BuildOptions options;
  options.optimizationLevel = 0;
  BuildResult built = buildEngine(model.data(), model.size(), options);
  bool warned = false;
  for (const std::string& w : built.report.warnings) warned = warned || w.find("data-dependent") != std::string::npos;
  EXPECT_TRUE(warned);
  auto engine = Engine::load(built.engine.data(), built.engine.size());
  auto ctx = engine->createContext();
  for (int positives : {3, 8, 0, 5}) {
    Tensor x = Tensor::allocate(DType::Float32, {8});
    for (int i = 0; i < 8; ++i) x.ptr<float>()[i] = i < positives ? 1.0f + i : -1.0f;
    Tensor y = ctx->run({{"x", x}}).outputs[0].second;
    EXPECT_EQ(shapeToString(y.shape), "[1," + std::to_string(positives) + "]");
    for (int i = 0; i < positives; ++i) EXPECT_EQ(y.ptr<int64_t>()[i], int64_t(-i));
  }
}

KILN_TEST(runtime, unsupported_operator_is_named) {
  ModelBuilder m;
  m.input("x", DType::Float32, {2});
  m.node("Relu", {"x"}, {"r"}, {}, "relu");
  m.node("FrobnicateAll", {"r"}, {"y"}, {}, "frob");
  m.output("y", DType::Float32, {2});
  std::vector<uint8_t> model = m.bytes();
  BuildOptions options;
  EXPECT_THROWS_WITH(buildEngine(model.data(), model.size(), options),
                     "unsupported operator FrobnicateAll (opset 17) at node 'frob'");
  EXPECT_TRUE(codeOf([&] { buildEngine(model.data(), model.size(), options); }) == ErrorCode::UnsupportedOp);
}

KILN_TEST(runtime, build_reports_progress_and_can_be_cancelled) {
  std::vector<uint8_t> model = denseModel();
  BuildOptions options;
  std::vector<BuildProgress> seen;
  options.onProgress = [&](const BuildProgress& p) { seen.push_back(p); };
  buildEngine(model.data(), model.size(), options);
  EXPECT_TRUE(seen.size() >= 5);
  EXPECT_EQ(seen.front().stage, std::string("parse"));
  EXPECT_EQ(seen.back().fraction, 1.0);
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_TRUE(seen[i].fraction >= seen[i - 1].fraction);

  std::atomic<bool> cancel{false};
  options.cancel = &cancel;
  options.onProgress = [&](const BuildProgress& p) {
    if (p.stage == "compile") cancel = true;
  };
  EXPECT_TRUE(codeOf([&] { buildEngine(model.data(), model.size(), options); }) == ErrorCode::Cancelled);
  BuildOptions bad;
  bad.optimizationLevel = 7;
  EXPECT_TRUE(codeOf([&] { buildEngine(model.data(), model.size(), bad); }) == ErrorCode::InvalidArgument);
  bad = BuildOptions{};
  bad.backend = "tpu";
  EXPECT_THROWS_WITH(buildEngine(model.data(), model.size(), bad), "unknown backend 'tpu'");
  std::vector<uint8_t> garbage = {1, 2, 3, 4, 5};
  EXPECT_TRUE(codeOf([&] { buildEngine(garbage.data(), garbage.size(), BuildOptions{}); }) == ErrorCode::InvalidModel);
}

KILN_TEST(runtime, if_and_loop_bodies_run_with_captures) {
  // y = If(cond) { relu(x) } else { neg(x) };  z = Loop(n) { v += x }  (both bodies capture x)
  onnx_builder::GraphBuilder thenBody("then");
  thenBody.node("Relu", {"x"}, {"t"}, {}, "then_relu");
  thenBody.output("t", DType::Float32, {4});
  onnx_builder::GraphBuilder elseBody("else");
  elseBody.node("Neg", {"x"}, {"e"}, {}, "else_neg");
  elseBody.output("e", DType::Float32, {4});
  onnx_builder::GraphBuilder loopBody("loop");
  loopBody.input("i", DType::Int64, {});
  loopBody.input("keep_in", DType::Bool, {});
  loopBody.input("v_in", DType::Float32, {4});
  loopBody.node("Identity", {"keep_in"}, {"keep_out"}, {}, "keep");
  loopBody.node("Add", {"v_in", "x"}, {"v_out"}, {}, "accumulate");
  loopBody.output("keep_out", DType::Bool, {});
  loopBody.output("v_out", DType::Float32, {4});

  ModelBuilder m;
  m.input("x", DType::Float32, {4});
  m.input("cond", DType::Bool, {});
  m.input("n", DType::Int64, {});
  m.initializer("v0", DType::Float32, {4}, std::vector<float>{10, 20, 30, 40});
  m.node("If", {"cond"}, {"y"}, {Attr::graph("then_branch", thenBody), Attr::graph("else_branch", elseBody)}, "if");
  m.node("Loop", {"n", "", "v0"}, {"z"}, {Attr::graph("body", loopBody)}, "loop");
  m.output("y", DType::Float32, {4});
  m.output("z", DType::Float32, {4});
  std::vector<uint8_t> model = m.bytes();
  BuildResult built = buildEngine(model.data(), model.size(), BuildOptions{});
  auto engine = Engine::load(built.engine.data(), built.engine.size());
  auto ctx = engine->createContext();
  Tensor x = Tensor::allocate(DType::Float32, {4});
  const float xs[4] = {-1.5f, 2.0f, -0.25f, 4.0f};
  std::memcpy(x.data, xs, sizeof(xs));
  for (int trips : {0, 3}) {
    for (bool c : {true, false}) {
      Tensor cond = Tensor::allocate(DType::Bool, {});
      cond.ptr<uint8_t>()[0] = c ? 1 : 0;
      Tensor n = Tensor::allocate(DType::Int64, {});
      n.ptr<int64_t>()[0] = trips;
      RunResult r = ctx->run({{"x", x}, {"cond", cond}, {"n", n}});
      const Tensor& y = r.outputs[0].second;
      const Tensor& z = r.outputs[1].second;
      for (int i = 0; i < 4; ++i) {
        EXPECT_NEAR(y.ptr<float>()[i], c ? std::max(xs[i], 0.0f) : -xs[i], 0);
        EXPECT_NEAR(z.ptr<float>()[i], 10.0f * (i + 1) + trips * xs[i], 1e-5);
      }
    }
  }
}
