// A backend: where kernels run and where activation memory lives. CPU now, CUDA next (same IR,
// planner and engine format). The runtime only talks to this interface and to Kernel.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backends/kernel.h"
#include "runtime/api.h"

namespace kiln {

class EngineImpl;
struct RunTrace;

enum class BackendKind { Cpu, Cuda };

class Backend {
 public:
  virtual ~Backend() = default;
  virtual BackendKind kind() const = 0;
  virtual std::string name() const = 0;    // "cpu", "cuda"
  // The target an engine is bound to: "cpu-x86_64-avx2", "cpu-x86_64-generic", "cuda-sm90".
  // Loading an engine whose target differs from the running backend's is an EngineMismatch.
  virtual std::string target() const = 0;
  // Library versions that must match at load time ("" for none), e.g. "cuda=13.0;cublas=13.1".
  virtual std::string libraryVersions() const = 0;

  // Whether a kernel exists for this node (op, opset, input types); false -> "unsupported operator".
  virtual bool supports(const Node& node, int64_t opset) const;
  // Creates the node's kernel (throws KilnError(UnsupportedOp, ...) with the reason when it can't).
  virtual std::unique_ptr<Kernel> compile(const KernelCreateInfo& info) const;

  // Memory for arenas and weights. CPU: aligned host memory. CUDA: device memory.
  virtual void* allocate(size_t bytes) = 0;
  virtual void release(void* ptr) = 0;

  // Backend-specific lowering after optimization, before kernels are chosen: precision (CUDA fp16
  // rewrites float values to half with casts at the graph boundary) and layout rewrites for the
  // backend's own ops. The default builds fp32 only and leaves the graph alone.
  virtual void lowerGraph(Graph& graph, Precision precision, std::vector<std::string>& warnings) const;
  // INT8 builds, after lowerGraph(Int8): honours QuantizeLinear/DequantizeLinear pairs, calibrates
  // on options.calibrationBatches and moves the layers that quantize well to INT8 kernels.
  // nodePrecision gets the precision of every node whose precision is not the build's default.
  // The default: INT8 is not available on this backend.
  virtual void quantizeGraph(Graph& graph, const BuildOptions& options, const std::map<std::string, float>& qdqRanges,
                             std::vector<std::string>& warnings,
                             std::map<std::string, std::string>& nodePrecision) const;
  // Device backends bring their own executor (streams, device arena, graph replay); nullptr means
  // the runtime's host executor (runtime/context.h) runs the engine.
  virtual std::unique_ptr<ExecutionContext> createContext(const std::shared_ptr<const EngineImpl>& engine) const {
    (void)engine;
    return nullptr;
  }
  // For device backends the builder cannot run kernels on host tensors: this fills `trace` as a
  // shape-only run at `shapes` would (shapes, types, workspaces) and returns true. False: the
  // builder traces with the host executor.
  virtual bool traceShapes(const EngineImpl& engine, const std::map<std::string, Shape>& shapes, RunTrace& trace) const {
    (void)engine, (void)shapes, (void)trace;
    return false;
  }
  // Whether graph inputs and outputs get slots in the context's arena (a device backend copies
  // them in and out of device memory, so deviceMemoryBytes counts them).
  virtual bool ioInArena() const { return false; }
  // Offsets in the arena (activations and kernel workspaces) are multiples of this.
  virtual size_t arenaAlignment() const { return 64; }
  // Per-layer timing at the opt shapes for the build report; false: the builder times on the host.
  virtual bool measureLayers(const EngineImpl& engine, const std::map<std::string, Shape>& shapes,
                             std::vector<double>& nodeMs) const {
    (void)engine, (void)shapes, (void)nodeMs;
    return false;
  }
};

// The backend for a name ("cpu", "cuda"); throws InvalidArgument when not built in.
std::shared_ptr<Backend> createBackend(const std::string& name);

}  // namespace kiln
