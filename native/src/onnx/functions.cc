#include "onnx/functions.h"

#include <set>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"

namespace kiln {

namespace {

using onnxproto::AttributeProto;
using onnxproto::FunctionProto;
using onnxproto::GraphProto;
using onnxproto::NodeProto;

[[noreturn]] void invalid(const std::string& msg) { fail(ErrorCode::InvalidModel, msg); }

std::string canonicalDomain(const std::string& d) { return d == "ai.onnx" ? std::string() : d; }

void collectNames(const GraphProto& g, std::unordered_set<std::string>& names);

void collectNodeNames(const NodeProto& n, std::unordered_set<std::string>& names) {
  for (const auto& s : n.inputs) names.insert(s);
  for (const auto& s : n.outputs) names.insert(s);
  for (const auto& a : n.attributes) {
    if (a.g) collectNames(*a.g, names);
    for (const auto& g : a.graphs) {
      if (g) collectNames(*g, names);
    }
  }
}

void collectNames(const GraphProto& g, std::unordered_set<std::string>& names) {
  for (const auto& v : g.inputs) names.insert(v.name);
  for (const auto& v : g.outputs) names.insert(v.name);
  for (const auto& t : g.initializers) names.insert(t.name);
  for (const auto& s : g.sparseInitializers) names.insert(s.values.name);
  for (const auto& n : g.nodes) collectNodeNames(n, names);
}

// Renames the names a subgraph reads from outside itself (through `rename`), leaving names the
// subgraph (or a body nested in it) defines for itself alone: those shadow the outer ones.
void renameFree(GraphProto& g, const std::unordered_map<std::string, std::string>& rename) {
  std::unordered_set<std::string> local;
  for (const auto& v : g.inputs) local.insert(v.name);
  for (const auto& t : g.initializers) local.insert(t.name);
  for (const auto& s : g.sparseInitializers) local.insert(s.values.name);
  for (const auto& n : g.nodes) {
    for (const auto& o : n.outputs) local.insert(o);
  }
  std::unordered_map<std::string, std::string> inner;
  for (const auto& [from, to] : rename) {
    if (!local.count(from)) inner.emplace(from, to);
  }
  if (inner.empty()) return;
  auto apply = [&](std::string& name) {
    auto it = inner.find(name);
    if (it != inner.end()) name = it->second;
  };
  for (auto& n : g.nodes) {
    for (auto& in : n.inputs) apply(in);
    for (auto& a : n.attributes) {
      if (a.g) renameFree(*a.g, inner);
      for (auto& sub : a.graphs) {
        if (sub) renameFree(*sub, inner);
      }
    }
  }
  for (auto& out : g.outputs) apply(out.name);
}

// A copy of `g` that shares no subgraph with it, so edits to the copy never leak into a function
// definition that is inlined again elsewhere.
std::shared_ptr<GraphProto> deepClone(const GraphProto& g) {
  auto copy = std::make_shared<GraphProto>(g);
  for (auto& n : copy->nodes) {
    for (auto& a : n.attributes) {
      if (a.g) a.g = deepClone(*a.g);
      for (auto& sub : a.graphs) {
        if (sub) sub = deepClone(*sub);
      }
    }
  }
  return copy;
}

// Resolves ref_attr_name attributes of `n` (and of nodes in its subgraphs, which the caller has
// deep-cloned) against the call's attributes: a reference with no value is dropped, as if the
// attribute were absent.
void bindAttributes(NodeProto& n, const std::map<std::string, const AttributeProto*>& bound) {
  std::vector<AttributeProto> kept;
  kept.reserve(n.attributes.size());
  for (auto& a : n.attributes) {
    if (!a.refAttrName.empty()) {
      auto it = bound.find(a.refAttrName);
      if (it == bound.end()) continue;
      AttributeProto value = *it->second;
      value.name = a.name;
      value.refAttrName.clear();
      if (value.g) value.g = deepClone(*value.g);
      for (auto& sub : value.graphs) {
        if (sub) sub = deepClone(*sub);
      }
      kept.push_back(std::move(value));
    } else {
      if (a.g) {
        for (auto& inner : a.g->nodes) bindAttributes(inner, bound);
      }
      for (auto& sub : a.graphs) {
        if (!sub) continue;
        for (auto& inner : sub->nodes) bindAttributes(inner, bound);
      }
      kept.push_back(std::move(a));
    }
  }
  n.attributes = std::move(kept);
}

class Inliner {
 public:
  Inliner(const std::vector<FunctionProto>& functions, std::map<std::string, int64_t>& opsets,
          const ReadOptions& options)
      : functions_(functions), opsets_(opsets), options_(options) {
    for (size_t i = 0; i < functions.size(); i++) {
      const FunctionProto& f = functions[i];
      if (f.name.empty()) invalid("model-local function " + std::to_string(i) + " has no name");
      auto key = std::make_tuple(canonicalDomain(f.domain), f.name, f.overload);
      if (!index_.emplace(key, i).second) {
        invalid("model-local function '" + f.domain + ":" + f.name + "' is defined more than once");
      }
    }
  }

  void run(GraphProto& g) {
    collectNames(g, used_);
    inlineGraph(g, 0);
  }

 private:
  const FunctionProto* lookup(const NodeProto& n) const {
    auto it = index_.find(std::make_tuple(canonicalDomain(n.domain), n.opType, n.overload));
    return it == index_.end() ? nullptr : &functions_[it->second];
  }

  std::string fresh(const std::string& base) {
    std::string name = base;
    for (int k = 1; used_.count(name); k++) name = base + "_" + std::to_string(k);
    used_.insert(name);
    return name;
  }

  void inlineGraph(GraphProto& g, int depth) {
    std::vector<NodeProto> out;
    out.reserve(g.nodes.size());
    for (auto& n : g.nodes) emit(std::move(n), depth, out);
    g.nodes = std::move(out);
  }

  // Appends `n` to `out`, expanded if it calls a function; function calls inside its subgraphs are
  // expanded too.
  void emit(NodeProto n, int depth, std::vector<NodeProto>& out) {
    if (const FunctionProto* f = lookup(n)) {
      expand(n, *f, depth, out);
      return;
    }
    for (auto& a : n.attributes) {
      if (a.g) inlineGraph(*a.g, depth);
      for (auto& sub : a.graphs) {
        if (sub) inlineGraph(*sub, depth);
      }
    }
    if (++emitted_ > options_.maxNodes) {
      invalid("the model has more than " + std::to_string(options_.maxNodes) + " nodes after inlining functions");
    }
    out.push_back(std::move(n));
  }

  void mergeOpsets(const FunctionProto& f) {
    for (const auto& o : f.opsets) {
      std::string d = canonicalDomain(o.domain);
      auto it = opsets_.find(d);
      if (it == opsets_.end()) {
        opsets_[d] = o.version;
      } else if (it->second != o.version) {
        fail(ErrorCode::UnsupportedOp, "function '" + f.name + "' imports opset '" + (d.empty() ? "ai.onnx" : d) +
                                           "' version " + std::to_string(o.version) + " but the model imports version " +
                                           std::to_string(it->second));
      }
    }
  }

  void expand(const NodeProto& call, const FunctionProto& f, int depth, std::vector<NodeProto>& out) {
    std::string callName = call.name.empty() ? f.name : call.name;
    if (depth >= options_.maxFunctionDepth) {
      invalid("function '" + f.name + "' (called by node '" + callName + "') nests function calls more than " +
              std::to_string(options_.maxFunctionDepth) + " deep (recursive function?)");
    }
    if (call.inputs.size() > f.inputs.size() || call.outputs.size() > f.outputs.size()) {
      invalid("node '" + callName + "' calls function '" + f.name + "' with " + std::to_string(call.inputs.size()) +
              " inputs and " + std::to_string(call.outputs.size()) + " outputs, but it takes " +
              std::to_string(f.inputs.size()) + " and " + std::to_string(f.outputs.size()));
    }
    mergeOpsets(f);

    // Formal -> actual names; everything else the body defines gets a fresh name.
    std::unordered_map<std::string, std::string> rename;
    for (size_t i = 0; i < f.inputs.size(); i++) rename[f.inputs[i]] = i < call.inputs.size() ? call.inputs[i] : "";
    for (size_t i = 0; i < f.outputs.size(); i++) {
      bool bound = i < call.outputs.size() && !call.outputs[i].empty();
      rename[f.outputs[i]] = bound ? call.outputs[i] : fresh(callName + "/" + f.outputs[i]);
    }
    for (const auto& bn : f.nodes) {
      for (const auto& o : bn.outputs) {
        if (!o.empty() && !rename.count(o)) rename[o] = fresh(callName + "/" + o);
      }
    }
    std::map<std::string, const AttributeProto*> bound;
    for (const auto& a : f.attributeDefaults) bound[a.name] = &a;
    for (const auto& a : call.attributes) bound[a.name] = &a;

    for (size_t k = 0; k < f.nodes.size(); k++) {
      NodeProto n = f.nodes[k];
      for (auto& in : n.inputs) {
        if (in.empty()) continue;
        auto it = rename.find(in);
        // A function body sees only its formal inputs and its own values: any other name must stay
        // undefined (reported as such) rather than bind to a caller value that happens to share it.
        if (it == rename.end()) it = rename.emplace(in, fresh(callName + "/" + in)).first;
        in = it->second;
      }
      for (auto& o : n.outputs) {
        auto it = rename.find(o);
        if (it != rename.end()) o = it->second;
      }
      // The body's own subgraphs read the body's names: rename those before binding attribute
      // references (a bound graph comes from the caller and reads the caller's names).
      for (auto& a : n.attributes) {
        if (!a.refAttrName.empty()) continue;
        if (a.g) {
          a.g = deepClone(*a.g);
          renameFree(*a.g, rename);
        }
        for (auto& sub : a.graphs) {
          if (!sub) continue;
          sub = deepClone(*sub);
          renameFree(*sub, rename);
        }
      }
      bindAttributes(n, bound);
      n.name = callName + "/" + (n.name.empty() ? n.opType + "_" + std::to_string(k) : n.name);
      emit(std::move(n), depth + 1, out);
    }
  }

  const std::vector<FunctionProto>& functions_;
  std::map<std::string, int64_t>& opsets_;
  const ReadOptions& options_;
  std::map<std::tuple<std::string, std::string, std::string>, size_t> index_;
  std::unordered_set<std::string> used_;
  size_t emitted_ = 0;
};

}  // namespace

void inlineFunctions(GraphProto& graph, const std::vector<FunctionProto>& functions,
                     std::map<std::string, int64_t>& opsets, const ReadOptions& options) {
  if (functions.empty()) return;
  Inliner(functions, opsets, options).run(graph);
}

}  // namespace kiln
