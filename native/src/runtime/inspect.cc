// inspectModel (runtime/api.h): validates an uploaded model and describes its signature without
// building an engine.
#include <set>

#include "backends/kernel.h"
#include "core/error.h"
#include "graph/shape_inference.h"
#include "onnx/model_reader.h"
#include "ops/schema.h"
#include "runtime/api.h"

namespace kiln {

namespace {

void forEachNode(const Graph& g, const std::function<void(const Graph&, const Node&)>& fn) {
  for (const Node& n : g.nodes) {
    if (n.dead) continue;
    fn(g, n);
    for (const auto& [name, a] : n.attrs) {
      if (a.kind == Attribute::Kind::Graph && a.g) forEachNode(*a.g, fn);
      if (a.kind == Attribute::Kind::Graphs) {
        for (const auto& s : a.graphs) {
          if (s) forEachNode(*s, fn);
        }
      }
    }
  }
}

int64_t countParameters(const Graph& g) {
  int64_t total = 0;
  for (const Value& v : g.values) {
    if (v.constant && v.producer < 0) total += v.constant->numel();
  }
  for (const Node& n : g.nodes) {
    for (const auto& [name, a] : n.attrs) {
      if (a.kind == Attribute::Kind::Graph && a.g) total += countParameters(*a.g);
      if (a.kind == Attribute::Kind::Graphs) {
        for (const auto& s : a.graphs) {
          if (s) total += countParameters(*s);
        }
      }
    }
  }
  return total;
}

TensorInfo describe(const Value& v) { return TensorInfo{v.name, v.dtype, v.shape}; }

}  // namespace

ModelSignature inspectModel(const uint8_t* onnx, size_t size, const std::string& modelDirectory) {
  ReadOptions options;
  options.modelDirectory = modelDirectory;
  ModelMetadata meta;
  Graph g = readModel(onnx, size, options, &meta);
  try {
    inferShapes(g);
  } catch (const KilnError& e) {
    // A model whose shapes contradict each other is invalid, and the message names the node. An
    // internal inference failure is Kiln's bug, not the uploader's: describe the declared types.
    if (e.code() != ErrorCode::Internal) throw;
  }

  ModelSignature sig;
  sig.producer = meta.producerName;
  sig.graphName = g.name;
  sig.opsets = g.opsets;
  for (ValueId id : g.inputs) sig.inputs.push_back(describe(g.values[id]));
  for (ValueId id : g.outputs) sig.outputs.push_back(describe(g.values[id]));
  sig.parameterCount = countParameters(g);

  std::set<std::string> operators;
  forEachNode(g, [&](const Graph& owner, const Node& n) {
    operators.insert(n.domain.empty() ? n.opType : n.domain + ":" + n.opType);
    int64_t opset = owner.opsetFor(n.domain);
    bool supported = SchemaRegistry::instance().find(n.domain, n.opType, opset) != nullptr &&
                     KernelRegistry::instance().find("cpu", n.domain, n.opType, opset) != nullptr;
    if (!supported) {
      std::string op = n.domain.empty() ? n.opType : n.domain + "." + n.opType;
      sig.unsupported.push_back("unsupported operator " + op + " (opset " + std::to_string(opset) + ") at node '" +
                                n.name + "'");
    }
  });
  sig.operators.assign(operators.begin(), operators.end());
  return sig;
}

}  // namespace kiln
