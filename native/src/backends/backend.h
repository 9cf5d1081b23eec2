// A backend: where kernels run and where activation memory lives. CPU now, CUDA next (same IR,
// planner and engine format). The runtime only talks to this interface and to Kernel.
#pragma once
#include <memory>
#include <string>

#include "backends/kernel.h"

namespace kiln {

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
};

// The backend for a name ("cpu", "cuda"); throws InvalidArgument when not built in.
std::shared_ptr<Backend> createBackend(const std::string& name);

}  // namespace kiln
