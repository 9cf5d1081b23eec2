// The engine's graph IR. An ONNX model is read into a Graph; passes rewrite it in place; the planner
// and backends consume it. Values and nodes are addressed by index: a ValueId names a tensor (graph
// input, initializer or node output) and survives rewrites; nodes removed by a pass are marked dead
// and dropped by Graph::compact().
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"

namespace kiln {

using ValueId = int32_t;
constexpr ValueId kNoValue = -1;  // an omitted optional input/output ("" in ONNX)

// A dimension that is either a known size or a named symbol ("batch", "seq", or a generated
// "unk_7" when inference cannot name it). Symbols with the same name are equal sizes.
struct Dim {
  int64_t value = -1;  // >= 0 when known
  std::string symbol;  // set when value < 0

  static Dim known(int64_t v) { return Dim{v, {}}; }
  static Dim sym(std::string s) { return Dim{-1, std::move(s)}; }
  bool isKnown() const { return value >= 0; }
  bool operator==(const Dim& o) const { return value == o.value && symbol == o.symbol; }
  bool operator!=(const Dim& o) const { return !(*this == o); }
  std::string toString() const;  // "3" or "batch"
};

// A shape whose rank may be unknown (hasRank == false) and whose dims may be symbolic.
struct SymShape {
  bool hasRank = false;
  std::vector<Dim> dims;

  static SymShape unknown() { return SymShape{}; }
  static SymShape of(const Shape& s);
  bool isConcrete() const;     // rank known and every dim known
  Shape concrete() const;      // requires isConcrete()
  size_t rank() const { return dims.size(); }
  std::string toString() const;  // "[batch,3,224,224]" or "?"
};

struct Graph;

struct Attribute {
  enum class Kind { Float, Int, String, Tensor, Graph, Floats, Ints, Strings, Tensors, Graphs };
  Kind kind = Kind::Int;
  float f = 0;
  int64_t i = 0;
  std::string s;
  std::shared_ptr<Tensor> t;
  std::shared_ptr<Graph> g;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
  std::vector<std::shared_ptr<Tensor>> tensors;
  std::vector<std::shared_ptr<Graph>> graphs;
};

struct Value {
  std::string name;
  DType dtype = DType::Undefined;
  SymShape shape;
  int32_t producer = -1;            // node index, -1 for graph inputs and initializers
  std::shared_ptr<Tensor> constant;  // set for initializers and folded constants
};

struct Node {
  std::string name;    // unique within the graph after reading (the reader names unnamed nodes)
  std::string opType;  // "Conv", or a fused op such as "kiln.FusedConv" (see graph/fused_ops.h)
  std::string domain;  // "" for ai.onnx, "com.microsoft", "kiln" for fused ops
  std::vector<ValueId> inputs;   // kNoValue for omitted optional inputs
  std::vector<ValueId> outputs;  // kNoValue for omitted optional outputs
  std::map<std::string, Attribute> attrs;
  bool dead = false;

  bool has(const std::string& attr) const { return attrs.count(attr) != 0; }
  int64_t getInt(const std::string& attr, int64_t fallback) const;
  float getFloat(const std::string& attr, float fallback) const;
  std::string getString(const std::string& attr, const std::string& fallback) const;
  std::vector<int64_t> getInts(const std::string& attr, std::vector<int64_t> fallback = {}) const;
  std::vector<float> getFloats(const std::string& attr, std::vector<float> fallback = {}) const;
  // Input i exists and is not omitted.
  bool hasInput(size_t i) const { return i < inputs.size() && inputs[i] != kNoValue; }
};

struct Graph {
  std::string name;
  std::vector<Value> values;
  std::vector<Node> nodes;      // topologically sorted after reading and after every pass
  std::vector<ValueId> inputs;  // real inputs only (initializers are not listed here)
  std::vector<ValueId> outputs;
  std::map<std::string, int64_t> opsets;  // domain -> version ("" is ai.onnx)
  // Names visible from an enclosing graph (subgraphs of If/Loop/Scan capture outer values by name).
  const Graph* parent = nullptr;

  ValueId addValue(const std::string& name, DType dtype = DType::Undefined, SymShape shape = {});
  ValueId addConstant(const std::string& name, Tensor tensor);
  // Appends a node and sets the producer of its outputs. Callers keep topological order.
  int32_t addNode(Node node);
  std::optional<ValueId> findValue(const std::string& name) const;
  int64_t opsetFor(const std::string& domain) const;  // 0 when not imported
  // Nodes that read each value (rebuilt on demand; invalid after edits until recomputed).
  std::vector<std::vector<int32_t>> consumers() const;
  // Removes dead nodes, renumbers producers, re-sorts topologically; throws InvalidModel on a cycle.
  void compact();
  // Replaces every use of `from` (node inputs and graph outputs) with `to`.
  void replaceAllUses(ValueId from, ValueId to);
  bool isGraphOutput(ValueId v) const;
};

// Names a subgraph body reads from enclosing scopes (If/Loop/Scan bodies capture outer values by
// name), including those read by bodies nested in it. In a body, such a capture is a Value with no
// producer, no constant, not listed in body.inputs. The node owning the body depends on them:
// Graph::consumers() and compact() count them, and the runtime must keep them alive.
std::vector<std::string> outerScopeNames(const Graph& body);

// Points every subgraph's `parent` at the graph that holds it, recursively. Subgraphs are held by
// shared_ptr, but a Graph moved or copied to a new address leaves its direct subgraphs pointing at
// the old one: call this after moving a Graph (compact() and inferShapes() call it too).
void linkSubgraphs(Graph& graph);

}  // namespace kiln
