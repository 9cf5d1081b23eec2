// The loaded engine behind the public Engine interface: the deserialized plan, one compiled kernel
// per node (created once, shared by every context), and the lazily compiled kernels of subgraph
// bodies. Everything here is immutable after construction except the subgraph kernel cache, which
// is guarded by its own mutex, so any number of contexts may run concurrently.
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "backends/backend.h"
#include "ops/schema.h"
#include "plan/serialize.h"
#include "runtime/api.h"

namespace kiln {

// What the runtime knows about one top-level node.
struct NodeInfo {
  const OpSchema* schema = nullptr;
  int64_t opset = 0;
  std::unique_ptr<Kernel> kernel;
  bool isView = false;        // Reshape-like: the output is the input's bytes under a new shape
  bool hasSubgraphs = false;  // If/Loop/Scan: the kernel needs the scope resolver
};

// Ops whose output is a reinterpretation of input 0's bytes. The planner may let their output share
// the input's buffer; the runtime then skips the kernel.
bool isViewOp(const Node& node);
// Ops whose kernel may write output 0 over input 0 (pure elementwise, same shape and dtype).
bool isInPlaceOp(const Node& node);
// The opset of the node's domain, looking through enclosing graphs (bodies often declare none).
int64_t opsetOf(const Graph& graph, const Node& node);
// The node's schema; throws UnsupportedOp naming op, opset and node when there is none.
const OpSchema* requireSchema(const Graph& graph, const Node& node);
// "Relu" or "kiln.FusedConv".
std::string qualifiedOp(const Node& node);

// Per subgraph body, computed once at load: name lookup (captures, scope resolution) and the
// schema and opset of each body node.
struct BodyInfo {
  std::unordered_map<std::string, ValueId> names;
  std::vector<const OpSchema*> schemas;
  std::vector<int64_t> opsets;
};

class EngineImpl final : public Engine {
 public:
  // Compiles every node's kernel on `backend`. The plan must be internally consistent (as produced
  // by the builder or validated by deserializeEngine).
  EngineImpl(EnginePlan plan, std::shared_ptr<Backend> backend);

  const std::vector<TensorInfo>& inputs() const override { return inputs_; }
  const std::vector<TensorInfo>& outputs() const override { return outputs_; }
  const std::vector<Profile>& profiles() const override { return plan_.profiles; }
  std::string backend() const override { return plan_.identity.backend; }
  std::string target() const override { return plan_.identity.target; }
  Precision precision() const override { return plan_.identity.precision; }
  size_t deviceMemoryBytes() const override { return plan_.memory.arenaBytes; }
  size_t weightBytes() const override { return plan_.weightBytes; }
  std::string describeJson() const override;
  std::unique_ptr<ExecutionContext> createContext() override;

  const EnginePlan& plan() const { return plan_; }
  const Graph& graph() const { return *plan_.graph; }
  const NodeInfo& node(size_t i) const { return nodes_[i]; }
  Backend& backendImpl() const { return *backend_; }
  // Value id of a top-level name, or kNoValue.
  ValueId findName(const std::string& name) const;

  // The kernel of a node inside a subgraph body, compiled on first use for these input types and
  // cached for the engine's lifetime (bodies are part of the immutable graph, so pointers are stable).
  const Kernel& subgraphKernel(const Graph& body, size_t nodeIndex, const std::vector<DType>& inputTypes,
                               const std::vector<DType>& outputTypes) const;
  // Name map, schemas and opsets of a body of this engine's graph (any depth).
  const BodyInfo& body(const Graph& graph) const;

 private:
  EnginePlan plan_;
  std::shared_ptr<Backend> backend_;
  std::vector<NodeInfo> nodes_;
  std::vector<TensorInfo> inputs_, outputs_;
  std::unordered_map<std::string, ValueId> names_;
  std::map<const Graph*, BodyInfo> bodies_;
  void indexBodies(const Graph& graph);

  struct SubgraphKey {
    const Graph* body;
    size_t node;
    std::vector<DType> types;
    bool operator<(const SubgraphKey& o) const {
      if (body != o.body) return body < o.body;
      if (node != o.node) return node < o.node;
      return types < o.types;
    }
  };
  mutable std::mutex subgraphMutex_;
  mutable std::map<SubgraphKey, std::unique_ptr<Kernel>> subgraphKernels_;
};

}  // namespace kiln
