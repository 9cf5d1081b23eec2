// inferShapes: the build-time inference driver with constant propagation (see shape_inference.h).
#include "graph/shape_inference.h"

#include <cstdlib>
#include <new>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "ops/schema.h"

namespace kiln {

namespace {

// Outputs larger than this are not propagated as known values: propagation exists to make shapes
// concrete (shape tensors, small index tensors), not to fold weights.
constexpr int64_t kMaxPropagatedElements = 64 * 1024;
// Bound on the work of one propagated evaluation, measured by its input elements.
constexpr int64_t kMaxPropagatedInputElements = int64_t(1) << 22;

std::string nodeLabel(const Node& n) { return "node '" + n.name + "' (" + n.opType + ")"; }

// Ops whose result is not a function of their inputs: never evaluated at build time.
bool isNondeterministic(const Node& n) {
  static const std::unordered_set<std::string> ops = {"RandomNormal", "RandomUniform", "RandomNormalLike",
                                                      "RandomUniformLike", "Multinomial", "Bernoulli"};
  return n.domain.empty() && ops.count(n.opType) != 0;
}

bool hasSubgraph(const Node& n) {
  for (const auto& [name, a] : n.attrs) {
    if (a.kind == Attribute::Kind::Graph || a.kind == Attribute::Kind::Graphs) return true;
  }
  return false;
}

bool isFreshSymbol(const Dim& d) { return !d.isKnown() && d.symbol.rfind("unk_", 0) == 0; }

// The inferred shape, with dims inference could not compute taken from the declaration (or from an
// earlier inference run).
SymShape mergeShapes(const SymShape& inferred, const SymShape& declared) {
  if (!inferred.hasRank) return declared;
  if (!declared.hasRank || declared.rank() != inferred.rank()) return inferred;
  SymShape out = inferred;
  for (size_t i = 0; i < out.dims.size(); i++) {
    const Dim& d = declared.dims[i];
    if (out.dims[i].isKnown()) continue;
    // A fresh symbol says nothing; a declared symbol (or the one an earlier run chose, which keeps
    // repeated inference stable) says more.
    if (d.isKnown() || (isFreshSymbol(out.dims[i]) && !d.symbol.empty())) out.dims[i] = d;
  }
  return out;
}

// The first free N for "unk_<N>": after every fresh symbol already in the graph.
void scanSymbols(const Graph& g, int64_t& next) {
  for (const Value& v : g.values) {
    for (const Dim& d : v.shape.dims) {
      if (!isFreshSymbol(d) || d.symbol.size() <= 4 || d.symbol.size() > 22) continue;
      char* end = nullptr;
      long long n = std::strtoll(d.symbol.c_str() + 4, &end, 10);
      if (end && *end == '\0' && n >= 0 && n >= next) next = n + 1;
    }
  }
  for (const Node& n : g.nodes) {
    for (const auto& [name, a] : n.attrs) {
      if (a.g) scanSymbols(*a.g, next);
      for (const auto& s : a.graphs) {
        if (s) scanSymbols(*s, next);
      }
    }
  }
}

struct Scope {
  Graph* graph;
  std::vector<std::shared_ptr<Tensor>> known;  // by ValueId
  std::unordered_map<std::string, ValueId> byName;
  const Scope* parent;

  // The value named `name` in an enclosing scope, with its known contents.
  const Value* outer(const std::string& name, std::shared_ptr<Tensor>* value) const {
    for (const Scope* s = parent; s; s = s->parent) {
      auto it = s->byName.find(name);
      if (it == s->byName.end()) continue;
      if (value) *value = s->known[it->second];
      return &s->graph->values[it->second];
    }
    return nullptr;
  }
};

class Inferrer {
 public:
  void run(Graph& g) {
    scanSymbols(g, counter_);
    inferGraph(g, nullptr);
  }

 private:
  void inferGraph(Graph& g, const Scope* parent);
  void inferNode(Scope& scope, Node& n);
  void prepareBodies(Scope& scope, Node& n);
  void propagate(Scope& scope, const Node& n, const OpSchema& schema, const InferContext& ctx);

  int64_t counter_ = 0;
};

void Inferrer::inferGraph(Graph& g, const Scope* parent) {
  Scope scope{&g, std::vector<std::shared_ptr<Tensor>>(g.values.size()), {}, parent};
  std::vector<bool> isInput(g.values.size(), false);
  for (ValueId v : g.inputs) isInput[v] = true;
  for (size_t i = 0; i < g.values.size(); i++) {
    Value& v = g.values[i];
    scope.byName.emplace(v.name, static_cast<ValueId>(i));
    if (v.constant) {
      scope.known[i] = v.constant;
      v.dtype = v.constant->dtype;
      v.shape = SymShape::of(v.constant->shape);
    } else if (v.producer < 0 && !isInput[i] && parent) {
      // A capture takes the type (and any known contents) of the outer value it names.
      std::shared_ptr<Tensor> value;
      if (const Value* o = scope.outer(v.name, &value)) {
        if (o->dtype != DType::Undefined) v.dtype = o->dtype;
        if (o->shape.hasRank) v.shape = o->shape;
        scope.known[i] = value;
      }
    }
  }
  for (Node& n : g.nodes) {
    if (n.dead) continue;
    inferNode(scope, n);
  }
}

// Loop and Scan bodies often leave their inputs untyped: iteration count (int64 scalar), condition (bool
// scalar), then the loop-carried values, typed like the Loop's inputs 2...
void Inferrer::prepareBodies(Scope& scope, Node& n) {
  Graph& g = *scope.graph;
  if (n.domain.empty() && n.opType == "Loop") {
    auto it = n.attrs.find("body");
    if (it != n.attrs.end() && it->second.kind == Attribute::Kind::Graph && it->second.g) {
      Graph& body = *it->second.g;
      for (size_t i = 0; i < body.inputs.size(); i++) {
        Value& v = body.values[body.inputs[i]];
        if (v.dtype != DType::Undefined) continue;
        if (i == 0) {
          v.dtype = DType::Int64;
        } else if (i == 1) {
          v.dtype = DType::Bool;
        } else if (n.hasInput(i)) {
          v.dtype = g.values[n.inputs[i]].dtype;  // shapes may change across iterations: dtype only
        }
      }
    }
  }
  // Scan bodies likewise (the expanded ONNX functions leave them untyped): body input i takes the
  // type of the Scan's input i, the state values and then one slice of each scanned input. Scan-8
  // has the optional sequence_lens first.
  if (n.domain.empty() && n.opType == "Scan") {
    auto it = n.attrs.find("body");
    if (it != n.attrs.end() && it->second.kind == Attribute::Kind::Graph && it->second.g) {
      Graph& body = *it->second.g;
      const size_t offset = g.opsetFor("") < 9 ? 1 : 0;
      for (size_t i = 0; i < body.inputs.size(); i++) {
        Value& v = body.values[body.inputs[i]];
        if (v.dtype == DType::Undefined && n.hasInput(i + offset)) v.dtype = g.values[n.inputs[i + offset]].dtype;
      }
    }
  }
  for (auto& [name, a] : n.attrs) {
    if (a.kind == Attribute::Kind::Graph && a.g) inferGraph(*a.g, &scope);
    if (a.kind == Attribute::Kind::Graphs) {
      for (auto& s : a.graphs) {
        if (s) inferGraph(*s, &scope);
      }
    }
  }
}

void Inferrer::inferNode(Scope& scope, Node& n) {
  Graph& g = *scope.graph;
  if (hasSubgraph(n)) {
    prepareBodies(scope, n);
    // Body outputs are inputs of the op in all but name: when one is untyped (an unsupported op
    // inside the body), the op cannot be inferred either; the unsupported op is reported where it is.
    for (const auto& [name, a] : n.attrs) {
      std::vector<const Graph*> bodies;
      if (a.kind == Attribute::Kind::Graph && a.g) bodies.push_back(a.g.get());
      if (a.kind == Attribute::Kind::Graphs) {
        for (const auto& b : a.graphs) {
          if (b) bodies.push_back(b.get());
        }
      }
      for (const Graph* b : bodies) {
        for (ValueId v : b->outputs) {
          if (b->values[v].dtype == DType::Undefined) return;
        }
      }
    }
  }
  const int64_t opset = g.opsetFor(n.domain);
  const OpSchema* schema = SchemaRegistry::instance().find(n.domain, n.opType, opset);
  if (!schema) return;  // unsupported: outputs keep their declared types; the builder reports it

  InferContext ctx(n, opset, n.inputs.size(), n.outputs.size());
  ctx.symbolCounter = &counter_;
  for (size_t i = 0; i < n.inputs.size(); i++) {
    if (!ctx.present[i]) continue;
    const Value& v = g.values[n.inputs[i]];
    // An input of unknown type comes from an op Kiln cannot infer; this node cannot be inferred
    // either, and the unsupported op is reported where it is.
    if (v.dtype == DType::Undefined) return;
    ctx.inputTypes[i] = v.dtype;
    ctx.inputShapes[i] = v.shape;
    ctx.inputValues[i] = scope.known[n.inputs[i]].get();
  }
  try {
    schema->infer(ctx);
  } catch (const KilnError& e) {
    // At build time a shape conflict means the model itself is inconsistent.
    if (e.code() == ErrorCode::ShapeMismatch) fail(ErrorCode::InvalidModel, e.what());
    throw;
  } catch (const std::bad_alloc&) {
    fail(ErrorCode::OutOfMemory, nodeLabel(n) + ": out of memory during shape inference");
  } catch (const std::exception& e) {
    fail(ErrorCode::Internal, nodeLabel(n) + ": shape inference failed: " + e.what());
  }
  for (size_t i = 0; i < n.outputs.size(); i++) {
    ValueId id = n.outputs[i];
    if (id == kNoValue) continue;
    KILN_CHECK(ctx.outputTypes[i] != DType::Undefined, Internal,
               nodeLabel(n) + ": the schema left output " + std::to_string(i) + " without a type");
    Value& v = g.values[id];
    v.dtype = ctx.outputTypes[i];
    v.shape = mergeShapes(ctx.outputShapes[i], v.shape);
    if (ctx.outputValues[i]) scope.known[id] = ctx.outputValues[i];
  }
  propagate(scope, n, *schema, ctx);
}

void Inferrer::propagate(Scope& scope, const Node& n, const OpSchema& schema, const InferContext& ctx) {
  Graph& g = *scope.graph;
  if (isNondeterministic(n) || hasSubgraph(n)) return;
  bool needed = false;
  for (size_t i = 0; i < n.outputs.size(); i++) {
    ValueId id = n.outputs[i];
    if (id == kNoValue || scope.known[id]) continue;
    needed = true;
    const SymShape& s = g.values[id].shape;
    if (!schema.dataDependentShape) {
      if (!s.isConcrete()) return;
      int64_t numel = 1;
      for (const Dim& d : s.dims) {
        if (__builtin_mul_overflow(numel, d.value, &numel) || numel > kMaxPropagatedElements) return;
      }
    }
  }
  if (!needed) return;
  std::vector<const Tensor*> inputs(n.inputs.size(), nullptr);
  int64_t inputElements = 0;
  for (size_t i = 0; i < n.inputs.size(); i++) {
    if (n.inputs[i] == kNoValue) continue;
    const Tensor* t = scope.known[n.inputs[i]].get();
    if (!t) return;
    inputElements += t->numel();
    if (inputElements > kMaxPropagatedInputElements) return;
    inputs[i] = t;
  }
  std::vector<Tensor> results;
  try {
    results = evaluateNode(g, n, inputs);
  } catch (const KilnError&) {
    return;  // no CPU kernel, or an error the runtime reports with full context: stay unknown
  } catch (const std::bad_alloc&) {
    return;
  }
  for (size_t i = 0; i < n.outputs.size() && i < results.size(); i++) {
    ValueId id = n.outputs[i];
    if (id == kNoValue || scope.known[id]) continue;
    const Tensor& r = results[i];
    if (r.data == nullptr || r.numel() > kMaxPropagatedElements) continue;
    scope.known[id] = std::make_shared<Tensor>(r.holder ? r : r.clone());
    // Data-dependent outputs (NonZero of a constant...) now have a concrete shape.
    g.values[id].shape = SymShape::of(r.shape);
    g.values[id].dtype = r.dtype;
  }
}

}  // namespace

void inferShapes(Graph& graph) {
  linkSubgraphs(graph);
  Inferrer().run(graph);
}

}  // namespace kiln
