// Builds an engine from an ONNX model with the C++ API and times inference, without the Node
// addon: for profiling kernels in a whole model. Prints the builder's per-op-type time (measured at
// the profile's opt shapes) and the median / best run.
//
//   kiln_bench_model model.onnx [--input name=d0xd1x...]... [--runs N] [--level 0|1|2] [--layers N]
// Inputs are filled with small deterministic values (int64 inputs with 1, so token ids and masks
// stay valid; names containing "token_type" with 0).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "runtime/api.h"

using namespace kiln;

namespace {

Shape parseShape(const std::string& s) {
  Shape shape;
  size_t at = 0;
  while (at <= s.size()) {
    size_t x = s.find('x', at);
    if (x == std::string::npos) x = s.size();
    shape.push_back(std::stoll(s.substr(at, x - at)));
    at = x + 1;
  }
  return shape;
}

Tensor makeInput(const TensorInfo& info, const Shape& shape) {
  Tensor t = Tensor::allocate(info.dtype, shape);
  const int64_t n = t.numel();
  switch (info.dtype) {
    case DType::Float32:
      for (int64_t i = 0; i < n; i++) t.ptr<float>()[i] = float((i * 7919) % 1000) / 1000.f - 0.5f;
      break;
    case DType::Int64:
      for (int64_t i = 0; i < n; i++) t.ptr<int64_t>()[i] = info.name.find("token_type") != std::string::npos ? 0 : 1;
      break;
    case DType::Int32:
      for (int64_t i = 0; i < n; i++) t.ptr<int32_t>()[i] = info.name.find("token_type") != std::string::npos ? 0 : 1;
      break;
    default:
      break;  // zeros
  }
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s model.onnx [--input name=d0xd1x...]... [--runs N] [--level 0|1|2]\n", argv[0]);
    return 2;
  }
  std::map<std::string, Shape> shapes;
  int runs = 20;
  size_t topLayers = 0;
  BuildOptions options;
  for (int i = 2; i < argc; i++) {
    if (!std::strcmp(argv[i], "--input") && i + 1 < argc) {
      std::string spec = argv[++i];
      size_t eq = spec.find('=');
      shapes[spec.substr(0, eq)] = parseShape(spec.substr(eq + 1));
    } else if (!std::strcmp(argv[i], "--runs") && i + 1 < argc) {
      runs = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--layers") && i + 1 < argc) {
      topLayers = size_t(std::atoi(argv[++i]));
    } else if (!std::strcmp(argv[i], "--level") && i + 1 < argc) {
      options.optimizationLevel = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  try {
    std::ifstream file(argv[1], std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    if (!shapes.empty()) {
      Profile p;
      for (auto& [name, s] : shapes) p.min[name] = p.opt[name] = p.max[name] = s;
      options.profiles.push_back(p);
    }
    auto t0 = std::chrono::steady_clock::now();
    BuildResult built = buildEngine(bytes.data(), bytes.size(), options);
    const double buildMs = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::map<std::string, std::pair<double, int>> byOp;
    double total = 0;
    for (const LayerReport& l : built.report.layers) {
      byOp[l.opType].first += l.timeMs;
      byOp[l.opType].second++;
      total += l.timeMs;
    }
    std::printf("built in %.0f ms: %zu -> %zu nodes, arena %.1f MB\n", buildMs, built.report.nodesBefore,
                built.report.nodesAfter, built.report.peakMemoryBytes / 1e6);
    std::vector<std::pair<std::string, std::pair<double, int>>> sorted(byOp.begin(), byOp.end());
    std::sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) { return a.second.first > b.second.first; });
    for (auto& [op, v] : sorted) {
      std::printf("  %-28s %4d nodes %9.3f ms %5.1f%%\n", op.c_str(), v.second, v.first, 100 * v.first / std::max(1e-9, total));
    }
    std::vector<LayerReport> layers = built.report.layers;
    std::sort(layers.begin(), layers.end(), [](auto& a, auto& b) { return a.timeMs > b.timeMs; });
    for (size_t i = 0; i < std::min(topLayers, layers.size()); i++) {
      std::printf("  %8.3f ms  %-40s %-20s %s %s\n", layers[i].timeMs, layers[i].name.c_str(), layers[i].opType.c_str(),
                  layers[i].outputShape.c_str(), layers[i].kernel.c_str());
    }
    std::shared_ptr<Engine> engine = Engine::load(built.engine.data(), built.engine.size());
    std::unique_ptr<ExecutionContext> ctx = engine->createContext();
    std::vector<std::pair<std::string, Tensor>> inputs;
    for (const TensorInfo& info : engine->inputs()) {
      Shape s;
      if (shapes.count(info.name)) s = shapes[info.name];
      else
        for (const Dim& d : info.shape.dims) s.push_back(d.isKnown() ? d.value : 1);
      inputs.emplace_back(info.name, makeInput(info, s));
    }
    for (int i = 0; i < 3; i++) ctx->run(inputs);
    std::vector<double> times;
    for (int i = 0; i < runs; i++) {
      auto s = std::chrono::steady_clock::now();
      ctx->run(inputs);
      times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s).count());
    }
    std::sort(times.begin(), times.end());
    std::printf("%d runs: median %.2f ms, best %.2f ms\n", runs, times[times.size() / 2], times[0]);
  } catch (const KilnError& e) {
    std::fprintf(stderr, "%s: %s\n", errorCodeName(e.code()), e.what());
    return 1;
  }
  return 0;
}
