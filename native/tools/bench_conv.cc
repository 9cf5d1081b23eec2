// Micro-benchmark for the Conv kernels (through the kernel registry, weights constant so they are
// pre-packed, as in a built engine): every distinct conv of ResNet-50 and MobileNetV2 at batch 1
// with its count in the model, so the per-model totals estimate the conv share of an inference.
//
//   kiln_bench_conv [--threads N] [--filter substring] [--seconds S]
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/kernel.h"
#include "core/thread_pool.h"
#include "graph/ir.h"

using namespace kiln;

namespace {

struct ConvLayer {
  const char* model;
  int count;  // occurrences in the model
  int64_t c, h, w, m, k, stride, group;
  const char* act;  // fused activation ("" none)
};

// Batch 1, 224x224 inputs; pads are k/2 (same-size at stride 1).
const ConvLayer kLayers[] = {
    {"resnet50", 1, 3, 224, 224, 64, 7, 2, 1, "Relu"},
    {"resnet50", 1, 64, 56, 56, 64, 1, 1, 1, "Relu"},
    {"resnet50", 3, 64, 56, 56, 64, 3, 1, 1, "Relu"},
    {"resnet50", 4, 64, 56, 56, 256, 1, 1, 1, ""},
    {"resnet50", 2, 256, 56, 56, 64, 1, 1, 1, "Relu"},
    {"resnet50", 1, 256, 56, 56, 128, 1, 1, 1, "Relu"},
    {"resnet50", 1, 128, 56, 56, 128, 3, 2, 1, "Relu"},
    {"resnet50", 4, 128, 28, 28, 512, 1, 1, 1, ""},
    {"resnet50", 1, 256, 56, 56, 512, 1, 2, 1, ""},
    {"resnet50", 3, 512, 28, 28, 128, 1, 1, 1, "Relu"},
    {"resnet50", 3, 128, 28, 28, 128, 3, 1, 1, "Relu"},
    {"resnet50", 1, 512, 28, 28, 256, 1, 1, 1, "Relu"},
    {"resnet50", 1, 256, 28, 28, 256, 3, 2, 1, "Relu"},
    {"resnet50", 6, 256, 14, 14, 1024, 1, 1, 1, ""},
    {"resnet50", 1, 512, 28, 28, 1024, 1, 2, 1, ""},
    {"resnet50", 5, 1024, 14, 14, 256, 1, 1, 1, "Relu"},
    {"resnet50", 5, 256, 14, 14, 256, 3, 1, 1, "Relu"},
    {"resnet50", 1, 1024, 14, 14, 512, 1, 1, 1, "Relu"},
    {"resnet50", 1, 512, 14, 14, 512, 3, 2, 1, "Relu"},
    {"resnet50", 3, 512, 7, 7, 2048, 1, 1, 1, ""},
    {"resnet50", 1, 1024, 14, 14, 2048, 1, 2, 1, ""},
    {"resnet50", 2, 2048, 7, 7, 512, 1, 1, 1, "Relu"},
    {"resnet50", 2, 512, 7, 7, 512, 3, 1, 1, "Relu"},
    {"mobilenetv2", 1, 3, 224, 224, 32, 3, 2, 1, "Clip"},
    {"mobilenetv2", 1, 32, 112, 112, 32, 3, 1, 32, "Clip"},
    {"mobilenetv2", 1, 32, 112, 112, 16, 1, 1, 1, ""},
    {"mobilenetv2", 1, 16, 112, 112, 96, 1, 1, 1, "Clip"},
    {"mobilenetv2", 1, 96, 112, 112, 96, 3, 2, 96, "Clip"},
    {"mobilenetv2", 1, 96, 56, 56, 24, 1, 1, 1, ""},
    {"mobilenetv2", 2, 24, 56, 56, 144, 1, 1, 1, "Clip"},
    {"mobilenetv2", 1, 144, 56, 56, 144, 3, 1, 144, "Clip"},
    {"mobilenetv2", 1, 144, 56, 56, 24, 1, 1, 1, ""},
    {"mobilenetv2", 1, 144, 56, 56, 144, 3, 2, 144, "Clip"},
    {"mobilenetv2", 1, 144, 28, 28, 32, 1, 1, 1, ""},
    {"mobilenetv2", 3, 32, 28, 28, 192, 1, 1, 1, "Clip"},
    {"mobilenetv2", 2, 192, 28, 28, 192, 3, 1, 192, "Clip"},
    {"mobilenetv2", 2, 192, 28, 28, 32, 1, 1, 1, ""},
    {"mobilenetv2", 1, 192, 28, 28, 192, 3, 2, 192, "Clip"},
    {"mobilenetv2", 1, 192, 14, 14, 64, 1, 1, 1, ""},
    {"mobilenetv2", 4, 64, 14, 14, 384, 1, 1, 1, "Clip"},
    {"mobilenetv2", 4, 384, 14, 14, 384, 3, 1, 384, "Clip"},
    {"mobilenetv2", 3, 384, 14, 14, 64, 1, 1, 1, ""},
    {"mobilenetv2", 1, 384, 14, 14, 96, 1, 1, 1, ""},
    {"mobilenetv2", 3, 96, 14, 14, 576, 1, 1, 1, "Clip"},
    {"mobilenetv2", 2, 576, 14, 14, 576, 3, 1, 576, "Clip"},
    {"mobilenetv2", 2, 576, 14, 14, 96, 1, 1, 1, ""},
    {"mobilenetv2", 1, 576, 14, 14, 576, 3, 2, 576, "Clip"},
    {"mobilenetv2", 1, 576, 7, 7, 160, 1, 1, 1, ""},
    {"mobilenetv2", 3, 160, 7, 7, 960, 1, 1, 1, "Clip"},
    {"mobilenetv2", 3, 960, 7, 7, 960, 3, 1, 960, "Clip"},
    {"mobilenetv2", 2, 960, 7, 7, 160, 1, 1, 1, ""},
    {"mobilenetv2", 1, 960, 7, 7, 320, 1, 1, 1, ""},
    {"mobilenetv2", 1, 320, 7, 7, 1280, 1, 1, 1, "Clip"},
};

Tensor randomTensor(const Shape& shape, uint32_t seed) {
  Tensor t = Tensor::allocate(DType::Float32, shape);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  for (int64_t i = 0; i < t.numel(); i++) t.ptr<float>()[i] = dist(rng);
  return t;
}

double cpuSeconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_utime.tv_usec * 1e-6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec * 1e-6;
}

Attribute ints(std::vector<int64_t> v) {
  Attribute a;
  a.kind = Attribute::Kind::Ints;
  a.ints = std::move(v);
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0;
  double seconds = 0.2;
  std::string filter;
  for (int i = 1; i < argc; i++) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--filter") && i + 1 < argc) filter = argv[++i];
    else if (!std::strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = std::atof(argv[++i]);
    else {
      std::fprintf(stderr, "usage: %s [--threads N] [--filter substring] [--seconds S]\n", argv[0]);
      return 2;
    }
  }
  ThreadPool pool(threads);
  std::printf("%d thread(s)\n%-12s %5s %22s %-36s %8s %8s %11s\n", pool.size(), "model", "count", "layer", "kernel", "ms",
              "GFLOP/s", "GFLOP/cpu-s");
  std::map<std::string, double> totalMs, totalFlops;
  for (const ConvLayer& l : kLayers) {
    const std::string label = std::string(l.model) + " " + std::to_string(l.c) + "x" + std::to_string(l.h) + " k" +
                              std::to_string(l.k) + "s" + std::to_string(l.stride) + " ->" + std::to_string(l.m) +
                              (l.group > 1 ? " dw" : "");
    if (!filter.empty() && label.find(filter) == std::string::npos) continue;
    const int64_t pad = l.k / 2;
    Node node;
    node.name = "conv";
    node.opType = "FusedConv";
    node.domain = "kiln";
    node.attrs["strides"] = ints({l.stride, l.stride});
    node.attrs["pads"] = ints({pad, pad, pad, pad});
    Attribute g;
    g.kind = Attribute::Kind::Int;
    g.i = l.group;
    node.attrs["group"] = g;
    if (*l.act) {
      Attribute a;
      a.kind = Attribute::Kind::String;
      a.s = l.act;
      node.attrs["activation"] = a;
      if (!std::strcmp(l.act, "Clip")) {
        Attribute p;
        p.kind = Attribute::Kind::Floats;
        p.floats = {0.f, 6.f};
        node.attrs["activation_params"] = p;
      }
    }
    const int64_t oh = (l.h + 2 * pad - l.k) / l.stride + 1, ow = (l.w + 2 * pad - l.k) / l.stride + 1;
    Tensor x = randomTensor({1, l.c, l.h, l.w}, 1), w = randomTensor({l.m, l.c / l.group, l.k, l.k}, 2);
    Tensor b = randomTensor({l.m}, 3), y = Tensor::allocate(DType::Float32, {1, l.m, oh, ow});
    Graph graph;
    node.inputs = {graph.addValue("x", DType::Float32, SymShape::of(x.shape)), graph.addValue("w", DType::Float32, SymShape::of(w.shape)),
                   graph.addValue("b", DType::Float32, SymShape::of(b.shape))};
    node.outputs = {graph.addValue("y", DType::Float32, SymShape::of(y.shape))};
    KernelCreateInfo info{node, 1, graph, {DType::Float32, DType::Float32, DType::Float32},
                          {SymShape::of(x.shape), SymShape::of(w.shape), SymShape::of(b.shape)}, {nullptr, &w, &b},
                          {DType::Float32}, {SymShape::of(y.shape)}};
    const KernelDef* def = KernelRegistry::instance().find("cpu", "kiln", "FusedConv", 1);
    if (!def) {
      std::fprintf(stderr, "no FusedConv kernel registered\n");
      return 1;
    }
    std::unique_ptr<Kernel> kernel = def->create(info);
    KernelContext ctx{node, {&x, &w, &b}, {&y}};
    ctx.pool = &pool;
    const size_t wsBytes = kernel->workspaceBytes(ctx);
    std::unique_ptr<void, void (*)(void*)> ws(std::aligned_alloc(64, (wsBytes + 127) / 64 * 64), std::free);
    ctx.workspace = ws.get();
    ctx.workspaceSize = wsBytes;
    kernel->run(ctx);  // warm-up
    int iters = 0;
    const double cpuStart = cpuSeconds();
    auto start = std::chrono::steady_clock::now();
    double elapsed = 0;
    do {
      kernel->run(ctx);
      iters++;
      elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    } while (elapsed < seconds);
    const double cpu = cpuSeconds() - cpuStart;
    const double ms = elapsed * 1e3 / iters;
    const double gflop = 2.0 * l.m * (l.c / l.group) * l.k * l.k * oh * ow * 1e-9;
    std::printf("%-12s %5d %22s %-36s %8.3f %8.1f %11.1f\n", l.model, l.count, label.c_str() + std::strlen(l.model) + 1,
                kernel->name().c_str(), ms, gflop / (ms * 1e-3), gflop * iters / cpu);
    totalMs[l.model] += ms * l.count;
    totalFlops[l.model] += gflop * l.count;
  }
  for (auto& [model, ms] : totalMs) {
    std::printf("%s: convs total %.2f ms (%.2f GFLOP, %.1f GFLOP/s)\n", model.c_str(), ms, totalFlops[model],
                totalFlops[model] / (ms * 1e-3));
  }
  return 0;
}
