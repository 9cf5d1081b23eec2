// The engine's public C++ API: build an engine from ONNX bytes, load a serialized engine, create
// execution contexts and run them. The Node addon (node/) and the tools (tools/) use only this.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "graph/ir.h"

namespace kiln {

enum class Precision { Fp32, Fp16, Int8 };
const char* precisionName(Precision p);  // "fp32", "fp16", "int8"

// How INT8 calibration picks each activation's range from the calibration set: the KL-divergence
// minimizing threshold (entropy, the default), a percentile of |x|, or the plain maximum of |x|.
enum class CalibrationMethod { Entropy, Percentile, MinMax };

// min/opt/max for each dynamic input. A run's input shapes must fit one profile.
struct Profile {
  std::map<std::string, Shape> min, opt, max;
};

struct BuildProgress {
  std::string stage;    // "parse", "optimize", "plan", "compile", "tune", "serialize"
  double fraction = 0;  // 0..1 over the whole build
  std::string message;
};

struct BuildOptions {
  std::string backend = "cpu";
  Precision precision = Precision::Fp32;
  std::vector<Profile> profiles;  // empty: one profile from the model's static shapes (dynamic dims -> 1)
  int optimizationLevel = 2;      // 0: no passes, 1: cleanup + folding, 2: + fusions
  bool planMemory = true;         // off switch for the static memory planner (debugging)
  std::string modelDirectory;     // where external data files are looked up ("" forbids them)
  std::function<void(const BuildProgress&)> onProgress;
  const std::atomic<bool>* cancel = nullptr;  // set to true to cancel (throws Cancelled)
  // FP32 engines on the cuda backend: let convolutions and GEMMs use TF32 tensor cores.
  bool tf32 = false;
  // INT8 (precision Int8, cuda backend). Calibration batches: each maps every model input name to a
  // tensor whose first dim is the sample index (samples stacked); batches larger than the profile
  // allows are split. Not needed for a model that carries QuantizeLinear/DequantizeLinear pairs.
  std::vector<std::map<std::string, Tensor>> calibrationBatches;
  CalibrationMethod calibrationMethod = CalibrationMethod::Entropy;
  double calibrationPercentile = 99.99;  // for CalibrationMethod::Percentile
  // A layer whose estimated INT8 relative error (weights, input and output quantization) exceeds
  // this stays in fp16; the build report says so.
  double int8MaxLayerError = 0.15;
};

struct TensorInfo {
  std::string name;
  DType dtype = DType::Undefined;
  SymShape shape;
};

struct LayerReport {
  std::string name, opType, kernel;
  std::string outputShape;  // at the first profile's opt shapes
  double timeMs = 0;        // measured at the opt shapes during the build
  std::string precision;    // what the layer computes in: "fp32", "tf32", "fp16" or "int8"
};

struct BuildReport {
  size_t nodesBefore = 0, nodesAfter = 0;
  std::map<std::string, int> fusions;  // pass name -> times applied
  std::vector<LayerReport> layers;
  size_t peakMemoryBytes = 0;          // the activation arena of one context
  size_t weightBytes = 0;
  std::vector<std::string> warnings;
};

struct BuildResult {
  std::vector<uint8_t> engine;
  BuildReport report;
};

// Parses, optimizes, plans, compiles and serializes. Throws KilnError on any failure.
BuildResult buildEngine(const uint8_t* onnx, size_t size, const BuildOptions& options);

// Model signature without building (for uploads): validates the file and describes it.
struct ModelSignature {
  std::vector<TensorInfo> inputs, outputs;
  std::map<std::string, int64_t> opsets;
  std::vector<std::string> operators;    // distinct "domain:OpType" or "OpType"
  std::vector<std::string> unsupported;  // "unsupported operator X (opset N) at node 'name'"
  int64_t parameterCount = 0;
  std::string producer, graphName;
};
ModelSignature inspectModel(const uint8_t* onnx, size_t size, const std::string& modelDirectory = "");

class ExecutionContext;

class Engine : public std::enable_shared_from_this<Engine> {
 public:
  virtual ~Engine() = default;
  // Verifies magic, versions, checksum and that the target matches this machine's backend.
  static std::shared_ptr<Engine> load(const uint8_t* data, size_t size);

  virtual const std::vector<TensorInfo>& inputs() const = 0;
  virtual const std::vector<TensorInfo>& outputs() const = 0;
  virtual const std::vector<Profile>& profiles() const = 0;
  virtual std::string backend() const = 0;
  virtual std::string target() const = 0;
  virtual Precision precision() const = 0;
  virtual size_t deviceMemoryBytes() const = 0;  // exact activation arena bytes per context
  virtual size_t weightBytes() const = 0;
  // A JSON document describing the engine (for `kiln inspect`): header, layers, memory plan.
  virtual std::string describeJson() const = 0;
  virtual std::unique_ptr<ExecutionContext> createContext() = 0;
};

struct RunResult {
  std::vector<std::pair<std::string, Tensor>> outputs;  // in engine output order, owned tensors
  double computeMs = 0;  // time spent executing kernels (GPU time on CUDA)
  double gpuMs = -1;     // GPU time of the run measured with CUDA events; -1 on the CPU backend
};

class ExecutionContext {
 public:
  virtual ~ExecutionContext() = default;
  // Thread-compatible: one run at a time per context; many contexts run concurrently.
  // Throws ShapeMismatch / DTypeMismatch / InvalidArgument naming the input on bad inputs.
  virtual RunResult run(const std::vector<std::pair<std::string, Tensor>>& inputs) = 0;
};

std::string builderVersion();  // e.g. "0.1.0"

}  // namespace kiln
