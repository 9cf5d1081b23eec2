// The CUDA execution context. Per context: one stream, cuBLASLt and cuDNN handles bound to it, a
// device arena of exactly the engine's deviceMemoryBytes (activations, graph inputs and outputs,
// kernel workspaces, all at offsets planned at build time) and pinned host staging for the input
// and output copies of graph inputs and outputs under 1 MiB (larger ones are copied between the
// caller's memory and the device directly). Weights live in the kernels, shared by all contexts of
// the engine.
//
// A run: bind and check the inputs on the host, look up the record for this input-shape signature
// (first time: concrete shapes of every node, pointers into the arena, and a CUDA graph captured
// from the kernels' launches), copy inputs in, replay the graph between two
// CUDA events (RunResult::gpuMs), copy the outputs back. Nothing is allocated during a run, except
// by host layers (ops without a CUDA kernel, host_fallback.h), which split the graph into segments.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backends/cuda/cuda_common.h"
#include "runtime/api.h"
#include "runtime/engine_impl.h"

namespace kiln {
struct RunTrace;
}

namespace kiln::cuda {

// Concrete types and shapes of every value of the top-level graph for given input shapes, from
// the schemas alone (constants are known; everything else is shape-only). The CUDA backend needs
// every shape to follow from the input shapes: a node whose output shape depends on data computed
// on the device is an UnsupportedOp naming it.
struct StaticShapes {
  std::vector<char> known;
  std::vector<DType> types;
  std::vector<Shape> shapes;
};
StaticShapes inferStaticShapes(const EngineImpl& engine, const std::vector<Shape>& inputShapes);

// The builder's shape-only trace (Backend::traceShapes) on the CUDA backend.
void traceStaticShapes(const EngineImpl& engine, const std::map<std::string, Shape>& shapes, RunTrace& trace);

class CudaContext final : public ExecutionContext {
 public:
  // `memory` overrides the engine's plan (the builder times layers before the final plan exists).
  explicit CudaContext(std::shared_ptr<const EngineImpl> engine, const EngineMemoryPlan* memory = nullptr);
  ~CudaContext() override;
  CudaContext(const CudaContext&) = delete;
  CudaContext& operator=(const CudaContext&) = delete;

  RunResult run(const std::vector<std::pair<std::string, Tensor>>& inputs) override;
  // Runs eagerly (no graph) with an event pair around every node: per-node GPU milliseconds.
  std::vector<double> timeNodes(const std::vector<std::pair<std::string, Tensor>>& inputs, int repeats);

 private:
  // Consecutive device layers, replayed as one CUDA graph, or a single host layer (host_fallback.h),
  // run eagerly between them. An engine without host layers has one segment.
  struct Segment {
    size_t begin = 0, end = 0;  // nodes [begin, end)
    bool host = false;
    cudaGraphExec_t graph = nullptr;
  };
  struct Record {
    std::vector<Tensor> values;           // per value: device tensor (arena) or the host constant
    std::vector<char> skip;               // per node: a view the planner made free
    std::vector<size_t> workspace;        // per node
    std::vector<Segment> segments;
    ~Record();
  };
  Record& recordFor(const std::vector<const Tensor*>& inputs, const std::string& signature);
  cudaGraphExec_t capture(Record& r, const Segment& segment);
  void launch(Record& r, size_t node);
  void stageInputs(Record& r, const std::vector<const Tensor*>& inputs);
  RunResult collectOutputs(Record& r);

  std::shared_ptr<const EngineImpl> engine_;
  const Graph& graph_;
  EngineMemoryPlan memory_;
  CudaExec exec_;
  uint8_t* arena_ = nullptr;
  uint8_t* pinned_ = nullptr;
  size_t pinnedBytes_ = 0;
  // Offsets into pinned_ of each graph input and output (graph order); kDirect: copied directly.
  static constexpr size_t kDirect = ~size_t(0);
  std::vector<size_t> pinnedInputAt_, pinnedOutputAt_;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
  bool useGraphs_ = true;
  std::vector<char> hostLayer_;  // per node: runs on the host
  std::map<std::string, std::unique_ptr<Record>> records_;
  static constexpr size_t kMaxRecords = 32;
};

}  // namespace kiln::cuda
