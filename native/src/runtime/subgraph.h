// Runs If/Loop/Scan bodies for the kernels of those ops: a plain interpreter over the body's nodes
// with the engine's kernels (compiled lazily per body node and input types, then cached by the
// engine), heap-allocated intermediates and full shape inference per node. Bodies are small and
// their shapes change per iteration, so static planning would buy little here.
#pragma once
#include "backends/kernel.h"
#include "runtime/engine_impl.h"

namespace kiln {

class SubgraphRunnerImpl final : public SubgraphRunner {
 public:
  explicit SubgraphRunnerImpl(const EngineImpl& engine) : engine_(engine) {}
  std::vector<Tensor> run(const Graph& body, const std::vector<const Tensor*>& inputs,
                          const std::function<const Tensor*(const std::string&)>& outer) override;

 private:
  const EngineImpl& engine_;
};

}  // namespace kiln
