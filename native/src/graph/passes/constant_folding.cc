// Constant folding. Matches nodes whose every present input is a constant (Constant nodes have
// none) and evaluates them once with the CPU kernels (evaluateNode); the outputs become constants
// and the node goes away. Safe because ONNX ops are pure functions of their inputs and attributes,
// with these exceptions, which are never folded:
//  - random ops (RandomNormal/Uniform[Like], Multinomial, Bernoulli) and Dropout: not deterministic;
//  - If/Loop/Scan: their bodies may read non-constant values of enclosing scopes;
//  - QuantizeLinear/DequantizeLinear: an explicit Q/DQ graph tells the INT8 builder what to
//    quantize, so the pair must survive until it is lowered;
//  - nodes producing a graph output, so graph outputs stay produced by nodes.
// Folding is skipped when the result would be much larger than its inputs (ConstantOfShape,
// Expand, Tile, Range... can turn a few bytes into megabytes of weights): the engine would grow and
// loading it would take longer than computing the values. Outputs must have concrete inferred
// shapes so the size is known before anything is evaluated. A node the CPU backend cannot evaluate
// (no kernel, an error) is simply left in place.
#include <set>

#include "core/error.h"
#include "graph/passes/pass.h"
#include "graph/passes/pattern.h"
#include "graph/shape_inference.h"

namespace kiln {
namespace {

// Results up to this size are always folded; above it, only when no larger than twice the inputs
// (Cast float16 -> float32 weights doubles them and must still fold).
constexpr int64_t kAlwaysFoldBytes = 64 * 1024;
constexpr int64_t kGrowthFactor = 2;

bool neverFolded(const Node& n) {
  static const std::set<std::string> kOps = {"RandomNormal", "RandomUniform", "RandomNormalLike",
                                             "RandomUniformLike", "Multinomial", "Bernoulli",
                                             "Dropout", "If", "Loop", "Scan", "QuantizeLinear",
                                             "DequantizeLinear", "DynamicQuantizeLinear"};
  bool onnxDomain = n.domain.empty() || n.domain == "ai.onnx";
  if (onnxDomain && kOps.count(n.opType)) return true;
  for (const auto& [name, a] : n.attrs) {
    if (a.kind == Attribute::Kind::Graph || a.kind == Attribute::Kind::Graphs) return true;
  }
  return false;
}

int64_t bytesOf(const Value& v) {
  size_t elem = dtypeSize(v.dtype);
  if (elem == 0 || !v.shape.isConcrete()) return -1;
  try {
    int64_t n = shapeNumel(v.shape.concrete());
    if (n > INT64_MAX / (int64_t)elem) return -1;
    return n * (int64_t)elem;
  } catch (const KilnError&) {
    return -1;
  }
}

}  // namespace

int foldConstants(Graph& graph, PassContext&) {
  Rewriter rw(graph);
  int folded = 0;
  for (int32_t i = 0; i < (int32_t)graph.nodes.size(); i++) {
    if (!rw.usable(i)) continue;
    const Node& n = graph.nodes[i];
    if (neverFolded(n) || n.outputs.empty()) continue;
    std::vector<const Tensor*> inputs;
    int64_t inputBytes = 0;
    bool allConstant = true;
    for (ValueId v : n.inputs) {
      if (v == kNoValue) {
        inputs.push_back(nullptr);
        continue;
      }
      const Tensor* t = rw.constant(v);
      if (!t) {
        allConstant = false;
        break;
      }
      inputs.push_back(t);
      inputBytes += (int64_t)t->byteSize();
    }
    if (!allConstant) continue;
    int64_t outputBytes = 0;
    bool ok = true;
    for (ValueId v : n.outputs) {
      if (v == kNoValue) continue;
      int64_t b = bytesOf(graph.values[v]);
      if (b < 0 || graph.isGraphOutput(v)) {
        ok = false;
        break;
      }
      outputBytes += b;
    }
    // A Constant node's output is its own attribute: folding it never grows the model.
    bool isConstantNode = n.opType == "Constant" && (n.domain.empty() || n.domain == "ai.onnx");
    if (!ok) continue;
    if (!isConstantNode && outputBytes > kAlwaysFoldBytes && outputBytes > kGrowthFactor * inputBytes) continue;

    std::vector<Tensor> results;
    try {
      results = evaluateNode(graph, n, inputs);
    } catch (const KilnError&) {
      continue;  // no CPU kernel or an error the runtime will report with full context
    }
    if (results.size() < n.outputs.size()) continue;
    for (size_t k = 0; k < n.outputs.size(); k++) {
      ValueId v = n.outputs[k];
      if (v == kNoValue) continue;
      // A kernel may have returned a view of a constant input; a constant must own its bytes.
      if (!results[k].holder) results[k] = results[k].clone();
      Value& value = graph.values[v];
      value.dtype = results[k].dtype;
      value.shape = SymShape::of(results[k].shape);
      value.constant = std::make_shared<Tensor>(std::move(results[k]));
      value.producer = -1;
    }
    rw.remove(i);
    folded++;
  }
  return folded;
}

}  // namespace kiln
