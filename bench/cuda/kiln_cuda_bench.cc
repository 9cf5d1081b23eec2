// Builds a Kiln CUDA engine from an ONNX model and times it, for bench/cuda/bench.py.
//
//   kiln_cuda_bench --model m.onnx --precision fp16 --input x=x.bin --shape x=32x3x224x224
//                   [--runs 100] [--warmup 20] [--dump out/]  (--input/--shape once per input)
//                   [--calib x=calib.bin --calib-shape x=256x3x224x224] [--calib-method entropy]
//                   [--tf32 1]
//
// INT8 (--precision int8): --calib files hold the calibration samples of each input stacked along
// the first dim (raw, the input's dtype).
// Input files hold raw little-endian elements of the engine input's dtype. The engine is built
// with one profile at exactly the given shapes, serialized and loaded back (the serving path),
// then run `warmup` times and `runs` times. Prints one JSON object: build seconds, median and p10/
// p90 GPU time (CUDA events around the graph replay), median end-to-end time (host input copy
// to host outputs), device memory; with --dump, writes each output as raw float32/int64 bytes.
#include <algorithm>
#include <chrono>
#include <cstdio>
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

std::vector<char> readFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + path);
  return std::vector<char>(std::istreambuf_iterator<char>(f), {});
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5))];
}

}  // namespace

int main(int argc, char** argv) {
  std::string modelPath, precision = "fp16", dump;
  std::map<std::string, std::string> files;
  std::map<std::string, Shape> shapes, calibShapes;
  std::map<std::string, std::string> calibFiles;
  std::string calibMethod = "entropy";
  bool tf32 = false;
  int runs = 100, warmup = 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    auto split = [&](std::string& name, std::string& rest) {
      size_t eq = v.find('=');
      name = v.substr(0, eq);
      rest = v.substr(eq + 1);
    };
    std::string name, rest;
    if (k == "--model") modelPath = v;
    else if (k == "--precision") precision = v;
    else if (k == "--runs") runs = std::stoi(v);
    else if (k == "--warmup") warmup = std::stoi(v);
    else if (k == "--dump") dump = v;
    else if (k == "--input") { split(name, rest); files[name] = rest; }
    else if (k == "--shape") { split(name, rest); shapes[name] = parseShape(rest); }
    else if (k == "--calib") { split(name, rest); calibFiles[name] = rest; }
    else if (k == "--calib-shape") { split(name, rest); calibShapes[name] = parseShape(rest); }
    else if (k == "--calib-method") calibMethod = v;
    else if (k == "--tf32") tf32 = v == "1";
    else { std::fprintf(stderr, "unknown option %s\n", k.c_str()); return 2; }
  }
  try {
    std::vector<char> onnx = readFile(modelPath);
    BuildOptions options;
    options.backend = "cuda";
    options.precision = precision == "fp32" ? Precision::Fp32 : precision == "int8" ? Precision::Int8 : Precision::Fp16;
    Profile profile;
    profile.min = profile.opt = profile.max = shapes;
    options.profiles = {profile};
    options.tf32 = tf32;
    options.calibrationMethod = calibMethod == "minmax" ? CalibrationMethod::MinMax
                                : calibMethod == "percentile" ? CalibrationMethod::Percentile
                                                              : CalibrationMethod::Entropy;
    if (!calibFiles.empty()) {
      std::map<std::string, Tensor> batch;
      for (const auto& [name, path] : calibFiles) {
        std::vector<char> bytes = readFile(path);
        int64_t numel = 1;
        for (int64_t d : calibShapes.at(name)) numel *= d;
        // float32 or int64 samples (token ids), told apart by the file size.
        const DType dtype = numel > 0 && bytes.size() == size_t(numel) * 8 ? DType::Int64 : DType::Float32;
        Tensor t = Tensor::allocate(dtype, calibShapes.at(name));
        if (bytes.size() != t.byteSize()) throw std::runtime_error("calibration " + name + ": file size does not match its shape");
        std::memcpy(t.data, bytes.data(), bytes.size());
        batch.emplace(name, std::move(t));
      }
      options.calibrationBatches.push_back(std::move(batch));
    }
    auto t0 = std::chrono::steady_clock::now();
    BuildResult built = buildEngine(reinterpret_cast<const uint8_t*>(onnx.data()), onnx.size(), options);
    double buildS = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::shared_ptr<Engine> engine = Engine::load(built.engine.data(), built.engine.size());
    std::unique_ptr<ExecutionContext> ctx = engine->createContext();
    std::vector<std::pair<std::string, Tensor>> inputs;
    for (const TensorInfo& info : engine->inputs()) {
      Tensor t = Tensor::allocate(info.dtype, shapes.at(info.name));
      std::vector<char> bytes = readFile(files.at(info.name));
      if (bytes.size() != t.byteSize()) throw std::runtime_error("input " + info.name + ": file size does not match its shape");
      std::memcpy(t.data, bytes.data(), bytes.size());
      inputs.emplace_back(info.name, std::move(t));
    }
    RunResult last;
    for (int i = 0; i < warmup; ++i) last = ctx->run(inputs);
    std::vector<double> gpu, e2e;
    for (int i = 0; i < runs; ++i) {
      auto s = std::chrono::steady_clock::now();
      last = ctx->run(inputs);
      e2e.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s).count());
      gpu.push_back(last.gpuMs);
    }
    if (!dump.empty()) {
      for (auto& [name, t] : last.outputs) {
        std::string safe = name;
        for (char& c : safe) if (c == '/' || c == ':') c = '_';
        std::ofstream f(dump + "/" + safe + ".bin", std::ios::binary);
        f.write(static_cast<const char*>(t.data), static_cast<std::streamsize>(t.byteSize()));
      }
    }
    std::map<std::string, int> kernels, precisions;
    std::map<std::string, double> opMs;  // build-time per-layer GPU time at these shapes, by op
    for (const LayerReport& l : built.report.layers) {
      kernels[l.kernel]++;
      precisions[l.precision]++;
      opMs[l.opType] += l.timeMs;
    }
    std::printf("{\"model\":\"%s\",\"precision\":\"%s\",\"target\":\"%s\",\"build_s\":%.2f,\"gpu_ms\":%.4f,"
                "\"gpu_ms_p10\":%.4f,\"gpu_ms_p90\":%.4f,\"e2e_ms\":%.4f,\"device_memory_bytes\":%zu,"
                "\"weight_bytes\":%zu,\"nodes\":%zu,\"runs\":%d,\"kernels\":{",
                modelPath.c_str(), precision.c_str(), engine->target().c_str(), buildS, percentile(gpu, 0.5),
                percentile(gpu, 0.1), percentile(gpu, 0.9), percentile(e2e, 0.5), engine->deviceMemoryBytes(),
                engine->weightBytes(), built.report.nodesAfter, runs);
    size_t k = 0;
    for (const auto& [name, count] : kernels) std::printf("%s\"%s\":%d", k++ ? "," : "", name.c_str(), count);
    std::printf("},\"op_ms\":{");
    k = 0;
    for (const auto& [name, ms] : opMs) std::printf("%s\"%s\":%.4f", k++ ? "," : "", name.c_str(), ms);
    // Every layer, slowest first (build-time timing at these shapes): where a model's time goes.
    std::vector<const LayerReport*> slowest;
    for (const LayerReport& l : built.report.layers) slowest.push_back(&l);
    std::sort(slowest.begin(), slowest.end(), [](const LayerReport* a, const LayerReport* b) { return a->timeMs > b->timeMs; });
    std::printf("},\"layers_by_time\":[");
    for (size_t i = 0; i < slowest.size(); ++i) {
      const LayerReport& l = *slowest[i];
      std::printf("%s{\"name\":\"%s\",\"kernel\":\"%s\",\"shape\":\"%s\",\"precision\":\"%s\",\"ms\":%.4f}",
                  i ? "," : "", l.name.c_str(), l.kernel.c_str(), l.outputShape.c_str(), l.precision.c_str(), l.timeMs);
    }
    std::printf("],\"layer_precisions\":{");
    k = 0;
    for (const auto& [name, count] : precisions) std::printf("%s\"%s\":%d", k++ ? "," : "", name.c_str(), count);
    std::printf("},\"warnings\":[");
    k = 0;
    for (const std::string& w : built.report.warnings) {
      std::string q;
      for (char c : w) q += c == '"' ? std::string("\\\"") : c == '\\' ? std::string("/") : std::string(1, c);
      std::printf("%s\"%s\"", k++ ? "," : "", q.c_str());
    }
    std::printf("]}\n");
    return 0;
  } catch (const std::exception& e) {
    std::printf("{\"model\":\"%s\",\"precision\":\"%s\",\"error\":", modelPath.c_str(), precision.c_str());
    std::string msg = e.what();
    std::string q;
    for (char c : msg) q += c == '"' ? std::string("\\\"") : c == '\n' ? std::string(" ") : std::string(1, c);
    std::printf("\"%s\"}\n", q.c_str());
    return 1;
  }
}
