// The CUDA backend: device memory, kernels from backends/cuda registered under "cuda", its own
// execution context (cuda_context.h), fp16 lowering (cuda_fp16.h). Engines are bound to the GPU
// architecture ("cuda-sm90") and to the CUDA, cuBLASLt and cuDNN versions they were built with.
#include <random>

#include "backends/backend.h"
#include "backends/cuda/cuda_common.h"
#include "backends/cuda/cuda_context.h"
#include "backends/cuda/cuda_libraries.h"
#include "backends/cuda/cuda_lowering.h"
#include "backends/cuda/host_fallback.h"
#include "runtime/build_memory.h"
#include "runtime/context.h"

namespace kiln {
namespace cuda {
namespace {

class CudaBackend final : public Backend {
 public:
  CudaBackend() {
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess || count == 0)
      fail(ErrorCode::InvalidArgument, std::string("backend 'cuda' has no GPU: ") +
                                           (err != cudaSuccess ? cudaGetErrorString(err) : "no CUDA device found"));
    cudaDeviceProp prop{};
    KILN_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    target_ = "cuda-sm" + std::to_string(prop.major) + std::to_string(prop.minor);
    versions_ = cudaLibraryVersions();
  }

  BackendKind kind() const override { return BackendKind::Cuda; }
  std::string name() const override { return "cuda"; }
  std::string target() const override { return target_; }
  std::string libraryVersions() const override { return versions_; }

  // A node runs on a CUDA kernel when one exists and accepts it (types, attributes), else on the
  // host (host_fallback.h).
  bool supports(const Node& node, int64_t opset) const override {
    return Backend::supports(node, opset) || hostFallbackSupports(node, opset);
  }

  std::unique_ptr<Kernel> compile(const KernelCreateInfo& info) const override {
    const Node& node = info.node;
    const std::string op = node.domain.empty() ? node.opType : node.domain + "." + node.opType;
    std::string why = "the cuda backend has no kernel for " + op + " (opset " + std::to_string(info.opset) + ")";
    if (KernelRegistry::instance().find(name(), node.domain, node.opType, info.opset) != nullptr) {
      try {
        return Backend::compile(info);
      } catch (const KilnError& e) {
        if (e.code() != ErrorCode::UnsupportedOp) throw;
        why = e.what();
      }
    }
    return createHostFallback(info, why);
  }

  void* allocate(size_t bytes) override {
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, bytes == 0 ? 256 : bytes);
    if (err != cudaSuccess)
      fail(ErrorCode::OutOfMemory, "cannot allocate " + std::to_string(bytes) + " bytes of GPU memory: " +
                                       cudaGetErrorString(err));
    return p;
  }
  void release(void* ptr) override { cudaFree(ptr); }

  void lowerGraph(Graph& graph, Precision precision, std::vector<std::string>& warnings) const override {
    lowerGraphForCuda(graph, precision, warnings);
  }

  void quantizeGraph(Graph& graph, const BuildOptions& options, const std::map<std::string, float>& qdqRanges,
                     std::vector<std::string>& warnings, std::map<std::string, std::string>& nodePrecision) const override {
    quantizeGraphForCuda(graph, options, qdqRanges, warnings, nodePrecision);
  }

  std::unique_ptr<ExecutionContext> createContext(const std::shared_ptr<const EngineImpl>& engine) const override {
    return std::make_unique<CudaContext>(engine);
  }

  bool traceShapes(const EngineImpl& engine, const std::map<std::string, Shape>& shapes, RunTrace& trace) const override {
    traceStaticShapes(engine, shapes, trace);
    return true;
  }

  bool ioInArena() const override { return true; }
  size_t arenaAlignment() const override { return kCudaArenaAlignment; }

  bool measureLayers(const EngineImpl& engine, const std::map<std::string, Shape>& shapes,
                     std::vector<double>& nodeMs) const override {
    // The draft engine has no memory plan yet: plan one for these shapes and time on it.
    RunTrace trace;
    traceStaticShapes(engine, shapes, trace);
    std::vector<std::string> warnings;
    EngineMemoryPlan memory = planEngineMemory(engine.graph(), {trace}, true, warnings, true, kCudaArenaAlignment);
    auto self = std::static_pointer_cast<const EngineImpl>(engine.shared_from_this());
    CudaContext ctx(self, &memory);
    std::mt19937 rng(20240607);
    std::uniform_real_distribution<float> dist(-1.f, 1.f);
    std::vector<std::pair<std::string, Tensor>> inputs;
    for (const TensorInfo& info : engine.inputs()) {
      auto it = shapes.find(info.name);
      Tensor t = Tensor::allocate(info.dtype, it != shapes.end() ? it->second : info.shape.concrete());
      if (info.dtype == DType::Float32) {
        for (int64_t i = 0; i < t.numel(); ++i) t.ptr<float>()[i] = dist(rng);
      }
      inputs.emplace_back(info.name, std::move(t));
    }
    nodeMs = ctx.timeNodes(inputs, 3);
    return true;
  }

 private:
  std::string target_, versions_;
};

}  // namespace
}  // namespace cuda

std::shared_ptr<Backend> createCudaBackend() {
  // Bound to device 0 of the process (CUDA_VISIBLE_DEVICES picks the GPU); one instance serves all.
  static const std::shared_ptr<Backend> backend = std::make_shared<cuda::CudaBackend>();
  return backend;
}

}  // namespace kiln
