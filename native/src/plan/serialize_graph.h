// Graph (de)serialization for the engine format: values, nodes, attributes, tensors and subgraphs.
// Internal to plan/serialize*.cc.
#pragma once
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "graph/ir.h"
#include "plan/serialize_io.h"

namespace kiln {

// Collects tensor data while the graph is written; the bytes go to the weights section afterwards.
// A tensor shared by several values (same data pointer and size) is stored once.
class WeightWriter {
 public:
  // Returns the tensor's offset inside the weights blob (a multiple of kWeightAlignment).
  uint64_t add(const Tensor& t);
  uint64_t size() const { return size_; }
  // Appends the blob (tensors at their offsets, zero padding between them).
  void writeBlob(ByteWriter& out) const;

 private:
  std::map<std::pair<const void*, size_t>, uint64_t> offsets_;
  std::vector<std::pair<const Tensor*, uint64_t>> tensors_;
  uint64_t size_ = 0;
};

// The weights blob after loading: one aligned allocation that every constant tensor points into.
struct WeightBlob {
  std::shared_ptr<uint8_t> base;
  uint64_t size = 0;
};

void writeGraph(ByteWriter& out, const Graph& graph, WeightWriter& weights);
// `parent` is the enclosing graph for subgraphs (nullptr at top level); depth bounds recursion.
std::shared_ptr<Graph> readGraph(ByteReader& in, const WeightBlob& weights, const Graph* parent, int depth);

}  // namespace kiln
