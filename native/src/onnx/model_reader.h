// ONNX ModelProto bytes -> Graph. Everything malformed, truncated, inconsistent or hostile becomes a
// KilnError (InvalidModel, or UnsupportedOp for valid ONNX that Kiln does not handle) naming what and
// where; the reader never reads outside the buffer or an external file, and never allocates more than
// the declared limits.
//
// The returned Graph:
//  - lists real inputs in `inputs` (a graph input that also has an initializer is a constant, as in
//    IR < 4 models), initializers (dense and sparse) as Values with `constant` set;
//  - has every node named uniquely (unnamed nodes become "<OpType>_<index>"), topologically sorted
//    (Graph::compact(); a cycle is InvalidModel naming a node on it);
//  - has subgraphs (If/Loop/Scan bodies) as Graph attributes whose `parent` is the enclosing graph;
//    a body reads an outer value through a capture Value of the same name (see outerScopeNames);
//  - has model-local functions (ModelProto.functions) inlined into the graph;
//  - carries declared types: dtype and symbolic shape from inputs, outputs and value_info; an unknown
//    dim (neither dim_value nor dim_param) gets a fresh symbol "unk_<n>" unused elsewhere in the model.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "graph/ir.h"

namespace kiln {

struct ReadOptions {
  // Folder that external data locations are relative to; "" forbids external data.
  std::string modelDirectory;
  size_t maxModelBytes = size_t(1) << 32;          // the ONNX bytes themselves
  int64_t maxTensorBytes = int64_t(1) << 36;       // one tensor (dense, after decoding)
  int64_t maxTotalTensorBytes = int64_t(1) << 38;  // all initializers and tensor attributes together
  int maxGraphDepth = 32;                          // nesting of If/Loop/Scan bodies
  size_t maxNodes = size_t(1) << 22;               // all graphs together, after function inlining
  size_t maxRank = 64;                             // dims of one tensor or declared shape
  int maxFunctionDepth = 16;                       // functions calling functions
};

// Model-level fields that are not part of the graph (for inspectModel and build reports).
struct ModelMetadata {
  int64_t irVersion = 0;
  std::string producerName, producerVersion, domain, docString;
  int64_t modelVersion = 0;
  std::vector<std::pair<std::string, std::string>> metadataProps;
};

Graph readModel(const uint8_t* data, size_t size, const ReadOptions& options = {},
                ModelMetadata* metadata = nullptr);

// A serialized TensorProto (the ONNX test-data format: input_0.pb, output_0.pb) -> Tensor. External
// data is read relative to options.modelDirectory.
Tensor readTensorProto(const uint8_t* data, size_t size, const ReadOptions& options = {});
// The name stored in a serialized TensorProto ("" when unnamed), without decoding its data.
std::string readTensorProtoName(const uint8_t* data, size_t size);

}  // namespace kiln
