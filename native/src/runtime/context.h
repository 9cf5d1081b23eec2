// An execution context: one arena of exactly the engine's deviceMemoryBytes, allocated once, and a
// cache of per-shape execution plans. Runs place each activation at its planned arena offset, reuse
// the cached concrete shapes of every node whose shape follows from the input shapes alone, and fall
// back to the heap only for tensors whose size depends on data (NonZero...) and outgrows its slot.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/api.h"
#include "runtime/engine_impl.h"
#include "runtime/subgraph.h"

namespace kiln {

// What the builder learns from a run (runtime/build.cc): per-node timing at the opt shapes, and the
// concrete sizes the memory planner needs at the max shapes.
struct RunTrace {
  // Shape-only runs skip every kernel except the small ones that compute shape values (Shape,
  // Gather/Concat over shape vectors...), so planning at the max shapes costs almost nothing.
  bool shapeOnly = false;
  std::vector<double> nodeMs;          // per node: kernel time in milliseconds
  std::vector<char> plannable;         // per value: its shape follows from the input shapes alone
  std::vector<char> shapeKnown;        // per value: the shape was computed in this run
  std::vector<Shape> shapes;           // per value, where shapeKnown
  std::vector<DType> types;            // per value, where shapeKnown
  std::vector<size_t> workspaceBytes;  // per node, where its inputs' shapes were known
};

class ContextImpl final : public ExecutionContext {
 public:
  explicit ContextImpl(std::shared_ptr<const EngineImpl> engine);
  ~ContextImpl() override;
  ContextImpl(const ContextImpl&) = delete;
  ContextImpl& operator=(const ContextImpl&) = delete;

  RunResult run(const std::vector<std::pair<std::string, Tensor>>& inputs) override;
  // run() with a trace for the builder. In a shape-only run the result has no outputs.
  RunResult runTraced(const std::vector<std::pair<std::string, Tensor>>& inputs, RunTrace* trace);

 private:
  // Concrete output types and shapes of every node for one input shape signature. A node is
  // `stable` when its output shapes follow from the input shapes and shape values alone; unstable
  // nodes (data-dependent shapes, or downstream of one) are re-inferred on every run.
  struct NodeShapes {
    bool stable = false;
    std::vector<DType> types;
    std::vector<Shape> shapes;
    size_t workspace = 0;
    bool workspaceKnown = false;
  };
  struct ShapePlan {
    std::vector<NodeShapes> nodes;
  };
  static constexpr size_t kMaxCachedSignatures = 64;

  RunResult execute(const std::vector<const Tensor*>& inputs, ShapePlan* plan, bool record, RunTrace* trace);
  const Tensor* tensorOf(ValueId v) const;
  void place(ValueId v, Tensor& t, bool forceHeap);
  void* workspaceFor(size_t node, size_t bytes);

  std::shared_ptr<const EngineImpl> engine_;
  const Graph& graph_;
  uint8_t* arena_ = nullptr;
  std::vector<Tensor> values_;              // this run's tensors of node outputs
  std::vector<const Tensor*> bound_;        // this run's tensor of every value (null: not yet)
  std::vector<char> isGraphInput_, isGraphOutput_;
  std::map<std::string, std::unique_ptr<ShapePlan>> cache_;
  Tensor scratch_;                          // heap workspace for kernels that outgrow their slot
  SubgraphRunnerImpl subgraphs_;
};

}  // namespace kiln
