// Attribute logic of the control-flow ops, shared by their schemas and kernels.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "graph/ir.h"

namespace kiln {

// The subgraph in a graph attribute ("then_branch", "body"...); InvalidModel naming the node when absent.
// Kernels hold the shared pointer so the body outlives them whatever happens to the node.
const Graph& controlBody(const Node& node, const char* attr);
std::shared_ptr<const Graph> controlBodyShared(const Node& node, const char* attr);

// Scan-9's layout: the first numStates inputs/outputs are state variables, the rest scan inputs
// and scan outputs, each with a direction (0 forward, 1 reverse) and an axis.
struct ScanConfig {
  size_t numStates = 0, numScanInputs = 0, numScanOutputs = 0;
  std::vector<int64_t> inputDirections, outputDirections, inputAxes, outputAxes;
};
ScanConfig scanConfig(const Node& node, size_t numInputs, size_t numOutputs,
                      const std::function<void(const std::string&)>& onError);

}  // namespace kiln
