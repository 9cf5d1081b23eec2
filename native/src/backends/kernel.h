// The narrow interface between the runtime and a backend's kernels. A Kernel is created once per
// node when an engine is built or loaded (it may pre-pack weights then) and runs many times, from
// many execution contexts at once: run() must not mutate the kernel (keep per-run state in the
// workspace). Tensor data pointers are host memory on the CPU backend and device memory on CUDA.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "graph/ir.h"

namespace kiln {

class Kernel;

// Runs a subgraph (If/Loop/Scan bodies). Provided by the runtime.
class SubgraphRunner {
 public:
  virtual ~SubgraphRunner() = default;
  // Runs `body` with the given graph inputs (in body.inputs order); values the body captures from
  // enclosing scopes are resolved through `outer`. Returns the body's outputs (owned tensors).
  virtual std::vector<Tensor> run(const Graph& body, const std::vector<const Tensor*>& inputs,
                                  const std::function<const Tensor*(const std::string&)>& outer) = 0;
};

struct KernelContext {
  const Node& node;
  std::vector<const Tensor*> inputs;  // nullptr for omitted optional inputs
  // Outputs, allocated by the runtime with their inferred shapes (nullptr when omitted). For ops
  // whose schema says dataDependentShape, outputs arrive with data == nullptr and the kernel must
  // call allocateOutput.
  std::vector<Tensor*> outputs;
  ThreadPool* pool = nullptr;
  void* workspace = nullptr;  // workspaceBytes() bytes, 64-byte aligned, uninitialised
  size_t workspaceSize = 0;
  void* stream = nullptr;     // backend stream (cudaStream_t on CUDA), null on CPU
  SubgraphRunner* subgraphs = nullptr;
  // Resolves a name from the enclosing scope (for nodes inside subgraphs); may be empty.
  std::function<const Tensor*(const std::string&)> outerScope;

  // Storage for an output the model omits (outputs[i] == nullptr) but a kernel allocates anyway;
  // allocateOutput puts it here so kernels need not special-case omitted optional outputs.
  std::vector<std::shared_ptr<Tensor>> discardedOutputs;

  // Allocates (heap, owned) output i with the given type and shape and returns it.
  Tensor& allocateOutput(size_t i, DType dtype, const Shape& shape);
};

// Everything a kernel may look at when it is created.
struct KernelCreateInfo {
  const Node& node;
  int64_t opset;
  const Graph& graph;
  std::vector<DType> inputTypes;     // Undefined for omitted inputs
  std::vector<SymShape> inputShapes;
  std::vector<const Tensor*> constantInputs;  // value of each input when it is a constant, else null
  std::vector<DType> outputTypes;
  std::vector<SymShape> outputShapes;
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  // Scratch bytes needed for a run with these concrete inputs/outputs (im2col buffers...).
  virtual size_t workspaceBytes(const KernelContext& ctx) const { (void)ctx; return 0; }
  virtual void run(KernelContext& ctx) const = 0;
  // The tactic's name for build reports ("conv2d.im2col_sgemm_avx2", "gemm.packed_6x16_fma").
  virtual std::string name() const = 0;
};

using KernelFactory = std::function<std::unique_ptr<Kernel>(const KernelCreateInfo&)>;

struct KernelDef {
  std::string backend;  // "cpu", "cuda"
  std::string domain;   // "" for ai.onnx, "kiln" for fused ops
  std::string opType;
  int64_t sinceVersion = 1;
  KernelFactory create;  // may throw KilnError(UnsupportedOp) for unsupported dtypes/attributes
};

class KernelRegistry {
 public:
  static KernelRegistry& instance();
  void add(KernelDef def);
  // The def with the greatest sinceVersion <= opset for this backend, or nullptr.
  const KernelDef* find(const std::string& backend, const std::string& domain,
                        const std::string& opType, int64_t opset) const;
  std::vector<std::string> opTypes(const std::string& backend, const std::string& domain) const;

 private:
  std::vector<KernelDef> defs_;
};

struct KernelRegistrar {
  explicit KernelRegistrar(KernelDef def) { KernelRegistry::instance().add(std::move(def)); }
};
#define KILN_KERNEL_CAT2(a, b) a##b
#define KILN_KERNEL_CAT(a, b) KILN_KERNEL_CAT2(a, b)
// KILN_REGISTER_KERNEL(Relu, (KernelDef{"cpu", "", "Relu", 6, createReluKernel}));
#define KILN_REGISTER_KERNEL(tag, ...) \
  static ::kiln::KernelRegistrar KILN_KERNEL_CAT(kKernelRegistrar_##tag##_, __LINE__)(__VA_ARGS__)

}  // namespace kiln
