// evaluateNode and interpretGraph: the reference evaluator over schemas + CPU kernels (see
// graph/shape_inference.h).
#include <new>
#include <unordered_map>
#include <unordered_set>

#include "backends/kernel.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "graph/shape_inference.h"
#include "ops/schema.h"

namespace kiln {

namespace {

std::string nodeLabel(const Node& n) { return "node '" + n.name + "' (" + n.opType + ")"; }

std::string qualifiedOp(const Node& n) { return n.domain.empty() ? n.opType : n.domain + "." + n.opType; }

// A tensor that owns its bytes: kernels and the interpreter may hand out views of inputs.
Tensor owned(const Tensor& t) { return t.holder || t.data == nullptr ? t : t.clone(); }

std::vector<Tensor> runGraph(const Graph& g, const std::vector<const Tensor*>& inputs, const ScopeResolver& outer);

// Runs If/Loop/Scan bodies for kernels through the same interpreter.
class InterpreterSubgraphs : public SubgraphRunner {
 public:
  std::vector<Tensor> run(const Graph& body, const std::vector<const Tensor*>& inputs,
                          const std::function<const Tensor*(const std::string&)>& outer) override {
    return runGraph(body, inputs, outer);
  }
};

std::vector<Tensor> runGraph(const Graph& g, const std::vector<const Tensor*>& inputs, const ScopeResolver& outer) {
  KILN_CHECK(inputs.size() == g.inputs.size(), InvalidArgument,
             "graph '" + g.name + "' takes " + std::to_string(g.inputs.size()) + " inputs, got " +
                 std::to_string(inputs.size()));
  const size_t numValues = g.values.size();
  std::vector<Tensor> computed(numValues);
  std::vector<const Tensor*> avail(numValues, nullptr);
  for (size_t i = 0; i < numValues; i++) {
    if (g.values[i].constant) avail[i] = g.values[i].constant.get();
  }
  for (size_t i = 0; i < g.inputs.size(); i++) avail[g.inputs[i]] = inputs[i];

  std::unordered_map<std::string, ValueId> byName;
  for (size_t i = 0; i < numValues; i++) byName.emplace(g.values[i].name, static_cast<ValueId>(i));

  // When each value is last read, so intermediates are freed early. Values read by subgraphs (by
  // name) and graph outputs live to the end.
  std::vector<int64_t> lastUse(numValues, -1);
  std::vector<bool> pinned(numValues, false);
  for (ValueId v : g.outputs) {
    if (v >= 0) pinned[v] = true;
  }
  for (size_t k = 0; k < g.nodes.size(); k++) {
    const Node& n = g.nodes[k];
    for (ValueId v : n.inputs) {
      if (v >= 0) lastUse[v] = static_cast<int64_t>(k);
    }
    for (const auto& [name, a] : n.attrs) {
      std::vector<const Graph*> subs;
      if (a.kind == Attribute::Kind::Graph && a.g) subs.push_back(a.g.get());
      if (a.kind == Attribute::Kind::Graphs) {
        for (const auto& s : a.graphs) subs.push_back(s.get());
      }
      for (const Graph* s : subs) {
        if (!s) continue;
        for (const std::string& captured : outerScopeNames(*s)) {
          auto it = byName.find(captured);
          if (it != byName.end()) pinned[it->second] = true;
        }
      }
    }
  }

  ScopeResolver here = [&](const std::string& name) -> const Tensor* {
    auto it = byName.find(name);
    if (it != byName.end() && avail[it->second]) return avail[it->second];
    return outer ? outer(name) : nullptr;
  };
  auto get = [&](ValueId v, const Node& n) -> const Tensor* {
    if (avail[v]) return avail[v];
    // A capture: a value of an enclosing graph, read by name.
    const Tensor* t = outer ? outer(g.values[v].name) : nullptr;
    if (!t) {
      fail(ErrorCode::InvalidModel,
           nodeLabel(n) + " input '" + g.values[v].name + "' has no value (not computed and not in any enclosing scope)");
    }
    avail[v] = t;
    return t;
  };

  for (size_t k = 0; k < g.nodes.size(); k++) {
    const Node& n = g.nodes[k];
    if (n.dead) continue;
    std::vector<const Tensor*> in(n.inputs.size(), nullptr);
    for (size_t i = 0; i < n.inputs.size(); i++) {
      if (n.inputs[i] != kNoValue) in[i] = get(n.inputs[i], n);
    }
    std::vector<Tensor> out = evaluateNodeIn(g, n, in, here);
    for (size_t i = 0; i < n.outputs.size() && i < out.size(); i++) {
      ValueId v = n.outputs[i];
      if (v == kNoValue) continue;
      computed[v] = std::move(out[i]);
      avail[v] = &computed[v];
    }
    for (ValueId v : n.inputs) {
      if (v >= 0 && lastUse[v] == static_cast<int64_t>(k) && !pinned[v] && g.values[v].producer >= 0) {
        computed[v] = Tensor();
        avail[v] = nullptr;
      }
    }
  }

  std::vector<Tensor> results;
  results.reserve(g.outputs.size());
  for (ValueId v : g.outputs) {
    const Tensor* t = avail[v] ? avail[v] : (outer ? outer(g.values[v].name) : nullptr);
    KILN_CHECK(t != nullptr, InvalidModel, "graph output '" + g.values[v].name + "' was not computed");
    results.push_back(owned(*t));
  }
  return results;
}

}  // namespace

std::vector<Tensor> evaluateNodeIn(const Graph& graph, const Node& node, const std::vector<const Tensor*>& inputs,
                                   const ScopeResolver& scope) {
  const int64_t opset = graph.opsetFor(node.domain);
  auto unsupported = [&]() {
    fail(ErrorCode::UnsupportedOp, "unsupported operator " + qualifiedOp(node) + " (opset " + std::to_string(opset) +
                                       ") at node '" + node.name + "'");
  };
  const OpSchema* schema = SchemaRegistry::instance().find(node.domain, node.opType, opset);
  if (!schema) unsupported();
  const KernelDef* def = KernelRegistry::instance().find("cpu", node.domain, node.opType, opset);
  if (!def) unsupported();
  KILN_CHECK(inputs.size() <= node.inputs.size(), InvalidArgument,
             nodeLabel(node) + " takes " + std::to_string(node.inputs.size()) + " inputs, got " +
                 std::to_string(inputs.size()));

  std::vector<const Tensor*> in(node.inputs.size(), nullptr);
  for (size_t i = 0; i < inputs.size(); i++) in[i] = inputs[i];
  InferContext ctx(node, opset, in.size(), node.outputs.size());
  int64_t symbols = 0;
  ctx.symbolCounter = &symbols;
  for (size_t i = 0; i < in.size(); i++) {
    ctx.present[i] = in[i] != nullptr;
    if (!in[i]) continue;
    ctx.inputTypes[i] = in[i]->dtype;
    ctx.inputShapes[i] = SymShape::of(in[i]->shape);
    ctx.inputValues[i] = in[i];
  }
  schema->infer(ctx);

  std::vector<Tensor> results(node.outputs.size());
  // Values the schema computed itself (Shape, Constant...) need no kernel.
  bool allKnown = true;
  for (size_t i = 0; i < node.outputs.size(); i++) {
    if (node.outputs[i] != kNoValue && !ctx.outputValues[i]) allKnown = false;
  }
  if (allKnown) {
    for (size_t i = 0; i < node.outputs.size(); i++) {
      if (node.outputs[i] != kNoValue) results[i] = owned(*ctx.outputValues[i]);
    }
    return results;
  }

  std::vector<Tensor*> outPtrs(node.outputs.size(), nullptr);
  for (size_t i = 0; i < node.outputs.size(); i++) {
    if (node.outputs[i] == kNoValue) continue;
    DType type = ctx.outputTypes[i];
    KILN_CHECK(type != DType::Undefined, Internal,
               nodeLabel(node) + ": the schema left output " + std::to_string(i) + " without a type");
    if (schema->dataDependentShape) {
      results[i].dtype = type;  // the kernel allocates it with allocateOutput
    } else {
      KILN_CHECK(ctx.outputShapes[i].isConcrete(), Internal,
                 nodeLabel(node) + ": output " + std::to_string(i) + " shape " + ctx.outputShapes[i].toString() +
                     " is not concrete although every input is");
      results[i] = Tensor::allocate(type, ctx.outputShapes[i].concrete());
    }
    outPtrs[i] = &results[i];
  }

  std::vector<SymShape> inShapes = ctx.inputShapes;
  KernelCreateInfo info{node, opset, graph, ctx.inputTypes, inShapes, in, ctx.outputTypes, ctx.outputShapes};
  std::unique_ptr<Kernel> kernel = def->create(info);
  KILN_CHECK(kernel != nullptr, Internal, nodeLabel(node) + ": the cpu kernel factory returned nothing");
  InterpreterSubgraphs subgraphs;
  KernelContext kc{node, in, outPtrs, &ThreadPool::global()};
  kc.subgraphs = &subgraphs;
  kc.outerScope = scope;
  Tensor workspace;
  size_t wsBytes = kernel->workspaceBytes(kc);
  if (wsBytes > 0) {
    workspace = Tensor::allocate(DType::UInt8, {static_cast<int64_t>(wsBytes)});
    kc.workspace = workspace.data;
    kc.workspaceSize = wsBytes;
  }
  try {
    kernel->run(kc);
  } catch (const std::bad_alloc&) {
    fail(ErrorCode::OutOfMemory, nodeLabel(node) + ": out of memory");
  }
  for (size_t i = 0; i < node.outputs.size(); i++) {
    if (outPtrs[i] && outPtrs[i]->data == nullptr && outPtrs[i]->numel() != 0) {
      fail(ErrorCode::Internal, nodeLabel(node) + ": kernel '" + kernel->name() + "' did not produce output " +
                                    std::to_string(i));
    }
  }
  return results;
}

std::vector<Tensor> evaluateNode(const Graph& graph, const Node& node, const std::vector<const Tensor*>& inputs) {
  // A standalone node sees its graph's constants (a body capturing an initializer still works).
  ScopeResolver constants = [&graph](const std::string& name) -> const Tensor* {
    for (const Graph* g = &graph; g; g = g->parent) {
      auto id = g->findValue(name);
      if (id && g->values[*id].constant) return g->values[*id].constant.get();
    }
    return nullptr;
  };
  return evaluateNodeIn(graph, node, inputs, constants);
}

std::vector<Tensor> interpretGraph(const Graph& graph, const std::vector<std::pair<std::string, Tensor>>& inputs) {
  std::unordered_map<std::string, const Tensor*> byName;
  for (const auto& [name, t] : inputs) {
    if (!byName.emplace(name, &t).second) fail(ErrorCode::InvalidArgument, "input '" + name + "' is given twice");
  }
  std::vector<const Tensor*> ordered;
  std::unordered_map<std::string, int64_t> symbols;  // one size per symbol across all inputs
  std::unordered_set<std::string> expected;
  for (ValueId id : graph.inputs) {
    const Value& v = graph.values[id];
    expected.insert(v.name);
    auto it = byName.find(v.name);
    KILN_CHECK(it != byName.end(), InvalidArgument, "missing input '" + v.name + "'");
    const Tensor& t = *it->second;
    if (v.dtype != DType::Undefined && t.dtype != v.dtype) {
      fail(ErrorCode::DTypeMismatch, "input '" + v.name + "' is " + dtypeName(t.dtype) + ", the model expects " +
                                         dtypeName(v.dtype));
    }
    if (v.shape.hasRank) {
      bool ok = t.shape.size() == v.shape.rank();
      for (size_t d = 0; ok && d < t.shape.size(); d++) {
        const Dim& dim = v.shape.dims[d];
        if (dim.isKnown()) {
          ok = dim.value == t.shape[d];
        } else if (!dim.symbol.empty()) {
          auto [s, inserted] = symbols.emplace(dim.symbol, t.shape[d]);
          ok = inserted || s->second == t.shape[d];
        }
      }
      if (!ok) {
        fail(ErrorCode::ShapeMismatch, "input '" + v.name + "' has shape " + shapeToString(t.shape) +
                                           ", the model expects " + v.shape.toString());
      }
    }
    ordered.push_back(&t);
  }
  for (const auto& [name, t] : inputs) {
    KILN_CHECK(expected.count(name), InvalidArgument, "unknown input '" + name + "'");
  }
  return runGraph(graph, ordered, nullptr);
}

}  // namespace kiln
