// The parts of Backend shared by every backend: kernel lookup through the KernelRegistry, and the
// factory that maps a backend name to the backends compiled into this binary.
#include "backends/backend.h"

#include "core/error.h"

namespace kiln {

std::shared_ptr<Backend> createCpuBackend();  // backends/cpu/cpu_backend.cc
#ifdef KILN_WITH_CUDA
std::shared_ptr<Backend> createCudaBackend();  // backends/cuda/cuda_backend.cc
#endif

bool Backend::supports(const Node& node, int64_t opset) const {
  return KernelRegistry::instance().find(name(), node.domain, node.opType, opset) != nullptr;
}

std::unique_ptr<Kernel> Backend::compile(const KernelCreateInfo& info) const {
  const Node& node = info.node;
  const KernelDef* def = KernelRegistry::instance().find(name(), node.domain, node.opType, info.opset);
  std::string op = node.domain.empty() ? node.opType : node.domain + "." + node.opType;
  if (def == nullptr)
    fail(ErrorCode::UnsupportedOp, "unsupported operator " + op + " (opset " + std::to_string(info.opset) +
                                       ") at node '" + node.name + "' on the " + name() + " backend");
  std::unique_ptr<Kernel> kernel = def->create(info);
  KILN_CHECK(kernel != nullptr, Internal,
             "the " + name() + " kernel factory for " + op + " returned no kernel for node '" + node.name + "'");
  return kernel;
}

void Backend::lowerGraph(Graph& graph, Precision precision, std::vector<std::string>& warnings) const {
  (void)graph, (void)warnings;
  KILN_CHECK(precision == Precision::Fp32, InvalidArgument,
             std::string("precision ") + precisionName(precision) + " is not available on the " + name() +
                 " backend: it builds fp32 only");
}

void Backend::quantizeGraph(Graph& graph, const BuildOptions& options, const std::map<std::string, float>& qdqRanges,
                             std::vector<std::string>& warnings,
                            std::map<std::string, std::string>& nodePrecision) const {
  (void)graph, (void)options, (void)qdqRanges, (void)warnings, (void)nodePrecision;
  fail(ErrorCode::InvalidArgument, "precision int8 is not available on the " + name() + " backend");
}

std::shared_ptr<Backend> createBackend(const std::string& name) {
  if (name == "cpu") return createCpuBackend();
  if (name == "cuda") {
#ifdef KILN_WITH_CUDA
    return createCudaBackend();
#else
    fail(ErrorCode::InvalidArgument, "backend 'cuda' is not available: this binary was built without CUDA");
#endif
  }
  fail(ErrorCode::InvalidArgument, "unknown backend '" + name + "' (expected cpu or cuda)");
}

}  // namespace kiln
