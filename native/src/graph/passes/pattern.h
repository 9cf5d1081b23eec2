// Pattern-matching helpers shared by the passes. A Rewriter takes a snapshot of the graph's
// consumer lists when a pass starts. A pass only ever removes consumers or replaces several reads
// of a value by one (a fused node reads what the nodes it replaces read), so a snapshot can only
// overcount a value's readers; and every node a rewrite touches is claimed, so a later match in the
// same run that would need fresh information about it fails instead of trusting stale data. The
// pipeline re-runs the pass with a fresh snapshot, so nothing is missed.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "graph/fused_ops.h"
#include "graph/ir.h"

namespace kiln {

class Rewriter {
 public:
  explicit Rewriter(Graph& graph);

  Graph& graph;

  // The node is live and no rewrite of this run touched it.
  bool usable(int32_t node) const;
  // The node is usable, in the ONNX domain and of this type.
  bool isOp(int32_t node, const char* opType) const;
  // The usable node producing v, or -1 (graph inputs, constants, touched producers).
  int32_t producer(ValueId v) const;
  // producer(v) when it is an ONNX `opType` node, else -1.
  int32_t producerOp(ValueId v, const char* opType) const;
  // Readers of v in the snapshot (a node reading v twice is listed once).
  const std::vector<int32_t>& consumers(ValueId v) const;
  // The one node reading v, when v is an intermediate result a fusion may swallow: exactly one
  // reader, usable, and v is not a graph output. Else -1.
  int32_t soleConsumer(ValueId v) const;
  // soleConsumer(v) when it is an ONNX `opType` node, else -1.
  int32_t soleConsumerOp(ValueId v, const char* opType) const;
  // v is read by nothing but `nodes` (each usable) and is not a graph output.
  bool onlyReadBy(ValueId v, const std::vector<int32_t>& nodes) const;

  // The constant value of v, or nullptr.
  const Tensor* constant(ValueId v) const;
  // The single element of a one-element numeric constant (any rank), or nullopt.
  std::optional<double> scalar(ValueId v) const;
  // For a binary node, the input that is not `v` (nullopt when neither or both inputs are v, or
  // the node does not have exactly two inputs).
  std::optional<ValueId> otherInput(int32_t node, ValueId v) const;

  // Marks a node as rewritten in this run (it stays live) / removes it.
  void claim(int32_t node);
  void remove(int32_t node);

  // Turns node `anchor` into kiln `opType` with these inputs and attributes, keeping its outputs
  // (so graph output names survive) and taking `name`. Claims it and imports the kiln domain.
  Node& becomeFused(int32_t anchor, const std::string& opType, std::vector<ValueId> inputs,
                    std::map<std::string, Attribute> attrs, const std::string& name);

  // Adds a constant / a plain value with a name derived from `base` that no other value has.
  ValueId addConstant(const std::string& base, Tensor tensor);
  ValueId addValue(const std::string& base, DType dtype, SymShape shape);

 private:
  std::vector<std::vector<int32_t>> uses_;
  std::vector<bool> claimed_;
};

// Attribute constructors.
Attribute intAttr(int64_t v);
Attribute floatAttr(float v);
Attribute stringAttr(const std::string& v);
Attribute intsAttr(std::vector<int64_t> v);
Attribute floatsAttr(std::vector<float> v);

// The fused kernels are written for float32; every fusion checks this before rewriting.
bool isFloat32(const Graph& graph, ValueId v);
// Both shapes have a known rank and equal dims (known sizes equal, symbols equal by name).
bool sameShape(const SymShape& a, const SymShape& b);
// Elements of a numeric tensor converted to double (small parameter tensors only).
std::vector<double> toDoubles(const Tensor& t);
// `t` viewed with another shape of the same element count (shares the bytes).
Tensor reshaped(const Tensor& t, const Shape& shape);
// |a - b| <= tol * max(1, |b|).
bool near(double a, double b, double tol);

// An activation found after a value (graph/fused_ops.h lists the kinds).
struct ActivationMatch {
  Activation kind = Activation::None;
  std::vector<float> params;
  std::vector<int32_t> nodes;  // the nodes it replaces, in order
  ValueId output = kNoValue;   // the activation's result
};
// Recognises an activation applied to v and nothing else reading v: Relu, LeakyRelu, Sigmoid,
// Tanh, Clip with constant bounds, HardSigmoid, HardSwish, Gelu (ONNX-20 or kiln.Gelu) and
// x * Sigmoid(x) (SiLU / Swish). Nullopt when there is none or it cannot be fused exactly.
std::optional<ActivationMatch> matchActivation(const Rewriter& rw, ValueId v);
// Adds `activation` / `activation_params` for a match (nothing for Activation::None).
void addActivationAttrs(std::map<std::string, Attribute>& attrs, const ActivationMatch& act);

}  // namespace kiln
