// Operator schemas: backend-independent shape and type inference, one registration per op and
// opset range. Inference runs in two modes with the same code:
//  - at build time over symbolic shapes (dims may be named symbols, values mostly unknown), and
//  - at run time over the concrete shapes and values of the actual inputs (everything known),
// so each op's shape logic is written once. Kernels live per backend in backends/<b>/ops/.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "graph/ir.h"

namespace kiln {

[[noreturn]] void failMissingInput(const Node& node, size_t index, size_t count);

// Per-input vectors of an InferContext. Infer functions index required inputs directly, and a
// hostile model may simply omit them: an index past the node's inputs is an InvalidModel error
// naming the node, never a read past the end.
template <typename T>
class NodeInputs : public std::vector<T> {
 public:
  NodeInputs(const Node& node, size_t count, const T& init = T())
      : std::vector<T>(count, init), node_(&node) {}
  T& operator[](size_t i) {
    check(i);
    return std::vector<T>::operator[](i);
  }
  const T& operator[](size_t i) const {
    check(i);
    return std::vector<T>::operator[](i);
  }

 private:
  void check(size_t i) const {
    if (i >= this->size()) failMissingInput(*node_, i, this->size());
  }
  const Node* node_;
};

class InferContext {
 public:
  InferContext(const Node& node, int64_t opset, size_t numInputs, size_t numOutputs);

  const Node& node;
  int64_t opset;

  // Inputs (index i may be an omitted optional input: hasInput(i) is false).
  std::vector<bool> present;
  NodeInputs<DType> inputTypes;
  NodeInputs<SymShape> inputShapes;
  NodeInputs<const Tensor*> inputValues;  // known value or nullptr (always set at run time)

  // Results, filled by the op's infer function. An output left with DType::Undefined is an error.
  std::vector<DType> outputTypes;
  std::vector<SymShape> outputShapes;
  // Optional: the op may compute its output value when cheap and known (e.g. Shape of a concrete
  // input). Inference also evaluates small nodes whose inputs are all known (constant propagation).
  std::vector<std::shared_ptr<Tensor>> outputValues;
  // Counter for freshDim() names, shared across a whole inference run so fresh symbols are unique
  // within a graph and deterministic; when null a process-wide counter is used.
  int64_t* symbolCounter = nullptr;

  bool hasInput(size_t i) const { return i < present.size() && present[i]; }
  size_t numInputs() const { return present.size(); }
  size_t numOutputs() const { return outputTypes.size(); }
  // Known integer contents of input i (Int32/Int64), or nullopt when not known at this point.
  std::optional<std::vector<int64_t>> intValues(size_t i) const;
  // Sets output i's type and shape.
  void setOutput(size_t i, DType type, SymShape shape);
  // A fresh symbol for a dim that cannot be computed symbolically (e.g. "unk_3").
  Dim freshDim();
  // Throws a ShapeMismatch/InvalidModel KilnError prefixed with the node's op and name.
  [[noreturn]] void error(const std::string& what) const;

  // Helper arithmetic on dims: known op known -> known; otherwise a fresh symbol (or the same
  // symbol when the op is the identity, e.g. d*1, d+0).
  Dim mul(const Dim& a, const Dim& b);
  Dim add(const Dim& a, const Dim& b);
  // Numpy/ONNX multidirectional broadcasting of input shapes; error() when incompatible.
  SymShape broadcast(const std::vector<SymShape>& shapes);
};

using InferFn = std::function<void(InferContext&)>;

struct OpSchema {
  std::string domain;  // "" for ai.onnx
  std::string opType;
  int64_t sinceVersion = 1;  // applies from this opset until the next registered version
  InferFn infer;
  // Output shapes depend on input *values* computed at run time (NonZero, Unique, NonMaxSuppression,
  // Compress, TopK with a runtime k...): the planner cannot size these statically and the kernel
  // allocates its outputs with KernelContext::allocateOutput.
  bool dataDependentShape = false;
};

class SchemaRegistry {
 public:
  static SchemaRegistry& instance();
  void add(OpSchema schema);
  // The schema with the greatest sinceVersion <= opset, or nullptr.
  const OpSchema* find(const std::string& domain, const std::string& opType, int64_t opset) const;
  std::vector<std::string> opTypes(const std::string& domain) const;

 private:
  std::vector<OpSchema> schemas_;
};

// Static registration beside each op's inference code:
//   KILN_REGISTER_SCHEMA(Relu, (OpSchema{"", "Relu", 1, inferUnchangedShape}));
struct SchemaRegistrar {
  explicit SchemaRegistrar(OpSchema schema) { SchemaRegistry::instance().add(std::move(schema)); }
};
#define KILN_SCHEMA_CAT2(a, b) a##b
#define KILN_SCHEMA_CAT(a, b) KILN_SCHEMA_CAT2(a, b)
#define KILN_REGISTER_SCHEMA(tag, ...) \
  static ::kiln::SchemaRegistrar KILN_SCHEMA_CAT(kSchemaRegistrar_##tag##_, __LINE__)(__VA_ARGS__)

// Common inference functions.
void inferUnchangedShape(InferContext& ctx);  // output 0 = input 0's type and shape
void inferBroadcast(InferContext& ctx);       // output 0 = broadcast of all inputs, type of input 0

}  // namespace kiln
