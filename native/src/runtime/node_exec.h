// Helpers shared by the top-level executor (context.cc) and the subgraph interpreter (subgraph.cc).
#pragma once
#include <string>
#include <vector>

#include "core/error.h"
#include "graph/ir.h"
#include "ops/schema.h"

namespace kiln {

// The result of running a node's schema over concrete input shapes.
struct ConcreteShapes {
  std::vector<DType> types;   // per node output (Undefined for omitted outputs)
  std::vector<Shape> shapes;  // per node output, valid where `concrete` says so
  bool concrete = true;       // every present output got a fully known shape
};

// Runs the schema with the inputs' concrete shapes. `values[i]` is the tensor whose contents the
// schema may read for input i, or nullptr to hide them (then the result may be symbolic).
ConcreteShapes inferConcrete(const Node& node, const OpSchema& schema, int64_t opset,
                             const std::vector<const Tensor*>& inputs, const std::vector<const Tensor*>& values);

// Re-throws a kernel's error with the node named when its message does not name it already, so a
// failure deep in a kernel still tells the user where in the model it happened.
[[noreturn]] void rethrowWithNode(const Node& node, const std::exception& e);

}  // namespace kiln
