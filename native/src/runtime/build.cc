// buildEngine (runtime/api.h): parse -> infer -> optimize -> profiles -> support check -> compile ->
// measure layers at the opt shapes -> plan memory at the max shapes -> serialize.
#include <cmath>
#include <cstring>
#include <random>

#include "core/error.h"
#include "graph/passes/pass.h"
#include "graph/shape_inference.h"
#include "onnx/model_reader.h"
#include "plan/profiles.h"
#include "runtime/build_memory.h"
#include "runtime/context.h"
#include "runtime/qdq.h"
#include "runtime/engine_impl.h"

namespace kiln {
namespace {

class Builder {
 public:
  explicit Builder(const BuildOptions& options) : options_(options) {}

  BuildResult build(const uint8_t* onnx, size_t size) {
    KILN_CHECK(onnx != nullptr || size == 0, InvalidArgument, "buildEngine: null model bytes");
    KILN_CHECK(options_.optimizationLevel >= 0 && options_.optimizationLevel <= 2, InvalidArgument,
               "optimizationLevel must be 0, 1 or 2, got " + std::to_string(options_.optimizationLevel));
    std::shared_ptr<Backend> backend = createBackend(options_.backend);

    progress("parse", 0.0, "reading the ONNX model");
    ReadOptions read;
    read.modelDirectory = options_.modelDirectory;
    auto graph = std::make_shared<Graph>(readModel(onnx, size, read));
    BuildReport report;
    report.nodesBefore = countNodes(*graph);

    progress("optimize", 0.1, "inferring shapes");
    inferShapes(*graph);
    std::map<std::string, float> qdqRanges;
    if (options_.precision == Precision::Int8) qdqRanges = stripQdqPairs(*graph, report.warnings);
    checkCancel();
    if (options_.optimizationLevel > 0) {
      progress("optimize", 0.15, "optimizing at level " + std::to_string(options_.optimizationLevel));
      optimizeGraph(*graph, options_.optimizationLevel, report.fusions);
    }
    KILN_CHECK(!options_.tf32 || (backend->kind() == BackendKind::Cuda && options_.precision == Precision::Fp32),
               InvalidArgument, "tf32 applies to fp32 builds on the cuda backend");
    backend->lowerGraph(*graph, options_.precision, report.warnings);
    if (options_.precision == Precision::Int8) {
      progress("calibrate", 0.2, "INT8: calibrating and quantizing");
      backend->quantizeGraph(*graph, options_, qdqRanges, report.warnings, nodePrecision_);
    }
    if (options_.tf32) {
      // Read by the CUDA convolution and GEMM kernels (serialized with the graph).
      Attribute on;
      on.kind = Attribute::Kind::Int;
      on.i = 1;
      for (Node& node : graph->nodes) node.attrs["kiln_tf32"] = on;
    }
    report.nodesAfter = countNodes(*graph);
    checkCancel();

    std::vector<Profile> profiles = resolveProfiles(*graph, options_.profiles);
    checkSupport(*graph, *backend);

    progress("compile", 0.3, "creating kernels for " + std::to_string(graph->nodes.size()) + " nodes");
    EnginePlan plan;
    plan.identity.builderVersion = builderVersion();
    plan.identity.backend = backend->name();
    plan.identity.target = backend->target();
    plan.identity.libraryVersions = backend->libraryVersions();
    plan.identity.precision = options_.precision;
    plan.profiles = profiles;
    plan.graph = graph;
    plan.memory.slots.assign(graph->values.size(), EngineSlot{});
    plan.memory.workspaces.assign(graph->nodes.size(), EngineSlot{});
    plan.weightBytes = weightBytesOf(*graph);
    // An engine without a memory plan (every activation on the heap) serves the measurements below.
    auto draft = std::make_shared<EngineImpl>(plan, backend);
    for (size_t n = 0; n < graph->nodes.size(); ++n) plan.kernelNames.push_back(draft->node(n).kernel->name());
    warnAboutHostLayers(*graph, plan.kernelNames, *backend, report.warnings);
    checkCancel();

    progress("tune", 0.45, "measuring layers at the opt shapes of profile 0");
    report.layers = measureLayers(draft, *backend, profiles.empty() ? nullptr : &profiles[0], report.warnings);
    checkCancel();

    progress("plan", 0.75, "planning memory at the max shapes of " + std::to_string(profiles.size()) + " profile(s)");
    std::vector<RunTrace> traces;
    for (const Profile& p : profiles) {
      RunTrace trace;
      trace.shapeOnly = true;
      if (!backend->traceShapes(*draft, p.max, trace)) {
        ContextImpl ctx(draft);
        std::vector<std::pair<std::string, Tensor>> inputs = shapeOnlyInputs(*graph, p.max);
        ctx.runTraced(inputs, &trace);
      }
      traces.push_back(std::move(trace));
      checkCancel();
    }
    plan.memory = planEngineMemory(*graph, traces, options_.planMemory, report.warnings, backend->ioInArena(),
                                   backend->arenaAlignment());
    report.peakMemoryBytes = plan.memory.arenaBytes;
    report.weightBytes = plan.weightBytes;
    plan.report = report;

    progress("serialize", 0.9, "writing the engine");
    BuildResult result;
    result.engine = serializeEngine(plan);
    result.report = std::move(report);
    progress("serialize", 1.0, "done: " + std::to_string(result.engine.size()) + " bytes");
    return result;
  }

 private:
  void progress(const char* stage, double fraction, const std::string& message) {
    checkCancel();
    if (options_.onProgress) options_.onProgress(BuildProgress{stage, fraction, message});
  }

  void checkCancel() const {
    if (options_.cancel != nullptr && options_.cancel->load()) fail(ErrorCode::Cancelled, "build cancelled");
  }

  // A device backend runs the layers it has no kernel for on the host (kernel names "host.*"):
  // correct, but not accelerated, and each one costs a device round trip. Say which.
  static void warnAboutHostLayers(const Graph& g, const std::vector<std::string>& kernelNames, const Backend& backend,
                                  std::vector<std::string>& warnings) {
    std::vector<std::string> host;
    for (size_t n = 0; n < g.nodes.size() && n < kernelNames.size(); ++n) {
      if (kernelNames[n].rfind("host.", 0) == 0) host.push_back(qualifiedOp(g.nodes[n]) + " '" + g.nodes[n].name + "'");
    }
    if (host.empty()) return;
    std::string msg = std::to_string(host.size()) + " layer(s) run on the host CPU because the " + backend.name() +
                      " backend has no kernel for them: ";
    for (size_t i = 0; i < host.size() && i < 8; ++i) msg += (i ? ", " : "") + host[i];
    if (host.size() > 8) msg += ", ...";
    warnings.push_back(msg);
  }

  static size_t countNodes(const Graph& g) {
    size_t n = 0;
    for (const Node& node : g.nodes) n += node.dead ? 0 : 1;
    return n;
  }

  static void addWeights(const Graph& g, size_t& total) {
    for (const Value& v : g.values) {
      if (v.constant) total += v.constant->byteSize();
    }
    for (const Node& node : g.nodes) {
      for (const auto& [name, attr] : node.attrs) {
        if (attr.t) total += attr.t->byteSize();
        for (const auto& t : attr.tensors) total += t ? t->byteSize() : 0;
        if (attr.g) addWeights(*attr.g, total);
        for (const auto& body : attr.graphs) {
          if (body) addWeights(*body, total);
        }
      }
    }
  }
  static size_t weightBytesOf(const Graph& g) {
    size_t total = 0;
    addWeights(g, total);
    return total;
  }

  // Every node, in bodies too, needs a schema and a kernel on this backend. All offenders are
  // listed so a user learns about every missing operator from one build.
  static void collectUnsupported(const Graph& g, const Backend& backend, std::vector<std::string>& out) {
    for (const Node& node : g.nodes) {
      int64_t opset = opsetOf(g, node);
      bool ok = SchemaRegistry::instance().find(node.domain, node.opType, opset) != nullptr &&
                backend.supports(node, opset);
      if (!ok)
        out.push_back("unsupported operator " + qualifiedOp(node) + " (opset " + std::to_string(opset) +
                      ") at node '" + node.name + "'");
      for (const auto& [name, attr] : node.attrs) {
        if (attr.g) collectUnsupported(*attr.g, backend, out);
        for (const auto& body : attr.graphs) {
          if (body) collectUnsupported(*body, backend, out);
        }
      }
    }
  }
  static void checkSupport(const Graph& g, const Backend& backend) {
    std::vector<std::string> unsupported;
    collectUnsupported(g, backend, unsupported);
    if (unsupported.empty()) return;
    std::string msg = unsupported[0];
    if (unsupported.size() > 1) {
      msg += " (and " + std::to_string(unsupported.size() - 1) + " more: " + unsupported[1];
      if (unsupported.size() > 2) msg += ", ...";
      msg += ")";
    }
    fail(ErrorCode::UnsupportedOp, msg + " on the " + backend.name() + " backend");
  }

  // Synthetic inputs for timing: floats uniform in [-1, 1]; integers and booleans zero, which is a
  // valid index, id and mask value for every model input we know of.
  static Tensor randomInput(DType dtype, const Shape& shape, std::mt19937& rng) {
    Tensor t = Tensor::allocate(dtype, shape);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    const int64_t n = t.numel();
    switch (dtype) {
      case DType::Float32:
        for (int64_t i = 0; i < n; ++i) t.ptr<float>()[i] = dist(rng);
        break;
      case DType::Float64:
        for (int64_t i = 0; i < n; ++i) t.ptr<double>()[i] = dist(rng);
        break;
      case DType::Float16:
        for (int64_t i = 0; i < n; ++i) t.ptr<uint16_t>()[i] = floatToHalf(dist(rng));
        break;
      case DType::BFloat16:
        for (int64_t i = 0; i < n; ++i) t.ptr<uint16_t>()[i] = floatToBfloat16(dist(rng));
        break;
      case DType::Undefined:
      case DType::UInt8:
      case DType::Int8:
      case DType::UInt16:
      case DType::Int16:
      case DType::Int32:
      case DType::Int64:
      case DType::String:
      case DType::Bool:
      case DType::UInt32:
      case DType::UInt64:
        break;  // allocate() zero-fills (and default-constructs strings)
    }
    return t;
  }

  static std::vector<std::pair<std::string, Tensor>> shapeOnlyInputs(const Graph& g,
                                                                     const std::map<std::string, Shape>& shapes) {
    std::vector<std::pair<std::string, Tensor>> inputs;
    for (ValueId v : g.inputs) {
      Tensor t;
      t.dtype = g.values[v].dtype;
      auto it = shapes.find(g.values[v].name);
      t.shape = it != shapes.end() ? it->second : g.values[v].shape.concrete();
      inputs.emplace_back(g.values[v].name, std::move(t));
    }
    return inputs;
  }

  std::vector<LayerReport> measureLayers(const std::shared_ptr<EngineImpl>& enginePtr, const Backend& backend,
                                         const Profile* profile, std::vector<std::string>& warnings) {
    EngineImpl& engine = *enginePtr;
    const Graph& g = engine.graph();
    std::vector<LayerReport> layers;
    std::mt19937 rng(20240607);
    std::vector<std::pair<std::string, Tensor>> inputs;
    std::map<std::string, Shape> shapes;
    for (ValueId v : g.inputs) {
      const Value& value = g.values[v];
      Shape shape;
      if (profile != nullptr && profile->opt.count(value.name)) {
        shape = profile->opt.at(value.name);
      } else {
        shape = value.shape.concrete();
      }
      shapes[value.name] = shape;
      inputs.emplace_back(value.name, randomInput(value.dtype, shape, rng));
    }
    RunTrace trace;
    try {
      if (!backend.measureLayers(engine, shapes, trace.nodeMs)) {
        ContextImpl ctx(enginePtr);
        // The first run warms caches and the thread pool; the second is the one reported.
        ctx.runTraced(inputs, &trace);
        checkCancel();
        ctx.runTraced(inputs, &trace);
      }
    } catch (const KilnError& e) {
      if (e.code() == ErrorCode::Cancelled) throw;
      // Synthetic inputs can be invalid for a model (a token id that must be > 0...): the engine
      // is still correct, only the timings are missing.
      warnings.push_back(std::string("layer timings skipped: a run on synthetic inputs failed: ") + e.what());
      trace = RunTrace{};
    }
    for (size_t n = 0; n < g.nodes.size(); ++n) {
      const Node& node = g.nodes[n];
      LayerReport l;
      l.name = node.name;
      l.opType = qualifiedOp(node);
      l.kernel = engine.node(n).kernel->name();
      ValueId out = node.outputs.empty() ? kNoValue : node.outputs[0];
      if (out != kNoValue && static_cast<size_t>(out) < trace.shapeKnown.size() && trace.shapeKnown[out]) {
        l.outputShape = shapeToString(trace.shapes[out]);
      } else if (out != kNoValue) {
        l.outputShape = g.values[out].shape.toString();
      }
      l.timeMs = n < trace.nodeMs.size() ? trace.nodeMs[n] : 0.0;
      auto p = nodePrecision_.find(node.name);
      if (p != nodePrecision_.end()) {
        l.precision = p->second;
      } else if (options_.precision == Precision::Fp32) {
        l.precision = options_.tf32 ? "tf32" : "fp32";
      } else if (l.kernel.rfind("host.", 0) == 0) {
        l.precision = "fp32";  // host layers of an fp16 or int8 build compute on the CPU in float32
      } else {
        l.precision = "fp16";  // fp16 builds, and the layers of an int8 build that stay in fp16
      }
      layers.push_back(std::move(l));
    }
    return layers;
  }

  const BuildOptions& options_;
  std::map<std::string, std::string> nodePrecision_;
};

}  // namespace

BuildResult buildEngine(const uint8_t* onnx, size_t size, const BuildOptions& options) {
  Builder builder(options);
  return builder.build(onnx, size);
}

}  // namespace kiln
