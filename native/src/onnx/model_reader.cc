// onnxproto structs -> Graph: name resolution across nested scopes, SSA checks, tensors, declared
// types, node naming, and the final topological sort (which also catches cycles).
#include "onnx/model_reader.h"

#include <set>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "onnx/functions.h"
#include "onnx/proto.h"
#include "onnx/tensor_decode.h"

namespace kiln {

namespace {

using onnxproto::AttributeProto;
using onnxproto::GraphProto;
using onnxproto::NodeProto;
using onnxproto::TypeProto;
using onnxproto::ValueInfoProto;

[[noreturn]] void invalid(const std::string& msg) { fail(ErrorCode::InvalidModel, msg); }

// Declared dims larger than this cannot belong to any tensor Kiln can hold (tensor.cc caps tensors
// at 2^40 bytes); rejecting them here keeps later shape arithmetic far from overflow.
constexpr int64_t kMaxDeclaredDim = int64_t(1) << 40;

std::string canonicalDomain(const std::string& d) { return d == "ai.onnx" ? std::string() : d; }

const char* typeKindName(TypeProto::Kind k) {
  switch (k) {
    case TypeProto::Kind::None: return "untyped";
    case TypeProto::Kind::Tensor: return "tensor";
    case TypeProto::Kind::Sequence: return "sequence";
    case TypeProto::Kind::Map: return "map";
    case TypeProto::Kind::Optional: return "optional";
    case TypeProto::Kind::SparseTensor: return "sparse tensor";
    case TypeProto::Kind::Opaque: return "opaque";
  }
  return "unknown";
}

struct Scope {
  Graph* graph;
  std::unordered_map<std::string, ValueId> names;
  Scope* parent;
};

struct DeclaredType {
  DType dtype = DType::Undefined;
  SymShape shape;
};

class GraphReader {
 public:
  GraphReader(const ReadOptions& options) : options_(options) {}

  void build(const GraphProto& pg, Graph& g, Scope* outer, int depth);

 private:
  DeclaredType declaredType(const ValueInfoProto& v, const std::string& what, bool required);
  ValueId resolve(Scope& scope, const std::string& name);
  void define(Scope& scope, const std::string& name, ValueId id, const std::string& what);
  bool convertAttribute(const AttributeProto& a, const std::string& nodeLabel, Scope& scope, int depth,
                        Attribute& out);
  std::shared_ptr<Graph> buildSubgraph(const GraphProto& pg, Scope& scope, int depth);

  const ReadOptions& options_;
  TensorBudget budget_;
  size_t nodeCount_ = 0;
};

DeclaredType GraphReader::declaredType(const ValueInfoProto& v, const std::string& what, bool required) {
  DeclaredType out;
  if (!v.hasType || v.type.kind == TypeProto::Kind::None) {
    if (required) invalid(what + " has no type");
    return out;
  }
  if (v.type.kind != TypeProto::Kind::Tensor) {
    fail(ErrorCode::UnsupportedOp,
         what + " is of " + typeKindName(v.type.kind) + " type; Kiln supports tensor values only");
  }
  if (v.type.elemType != 0 || required) out.dtype = decodeDType(v.type.elemType, what);
  if (!v.type.hasShape) return out;
  if (v.type.dims.size() > options_.maxRank) {
    invalid(what + " has rank " + std::to_string(v.type.dims.size()) + ", more than the limit of " +
            std::to_string(options_.maxRank));
  }
  out.shape.hasRank = true;
  for (size_t i = 0; i < v.type.dims.size(); i++) {
    const auto& d = v.type.dims[i];
    switch (d.kind) {
      case onnxproto::DimProto::Kind::Value:
        if (d.value < 0 || d.value > kMaxDeclaredDim) {
          invalid(what + " dim " + std::to_string(i) + " is " + std::to_string(d.value) +
                  (d.value < 0 ? ", which is negative" : ", larger than any tensor Kiln can hold"));
        }
        out.shape.dims.push_back(Dim::known(d.value));
        break;
      case onnxproto::DimProto::Kind::Param:
        // An empty dim_param is as good as none: named later like any unknown dim.
        out.shape.dims.push_back(d.param.empty() ? Dim{} : Dim::sym(d.param));
        break;
      case onnxproto::DimProto::Kind::Unknown:
        out.shape.dims.push_back(Dim{});
        break;
    }
  }
  return out;
}

void GraphReader::define(Scope& scope, const std::string& name, ValueId id, const std::string& what) {
  if (name.empty()) invalid(what + " has an empty name");
  auto [it, inserted] = scope.names.emplace(name, id);
  if (!inserted) {
    const Graph& g = *scope.graph;
    const Value& prev = g.values[it->second];
    // The earlier producer may be the very node being read (outputs "y", "y"): it is not in
    // g.nodes yet.
    std::string before = prev.producer >= 0
                             ? (static_cast<size_t>(prev.producer) < g.nodes.size()
                                    ? "node '" + g.nodes[prev.producer].name + "'"
                                    : std::string("the same node"))
                         : prev.constant ? std::string("an initializer")
                                         : std::string("a graph input");
    invalid("value '" + name + "' is defined twice: by " + what + " and by " + before + " (SSA violation)");
  }
}

// A name read by this graph: its own value, or a value of an enclosing graph, which this graph then
// captures through a Value of the same name with no producer.
ValueId GraphReader::resolve(Scope& scope, const std::string& name) {
  auto it = scope.names.find(name);
  if (it != scope.names.end()) return it->second;
  for (Scope* s = scope.parent; s; s = s->parent) {
    auto outer = s->names.find(name);
    if (outer == s->names.end()) continue;
    const Value& v = s->graph->values[outer->second];
    ValueId id = scope.graph->addValue(name, v.dtype, v.shape);
    scope.names.emplace(name, id);
    return id;
  }
  return kNoValue;
}

std::shared_ptr<Graph> GraphReader::buildSubgraph(const GraphProto& pg, Scope& scope, int depth) {
  auto sub = std::make_shared<Graph>();
  sub->parent = scope.graph;
  sub->opsets = scope.graph->opsets;
  build(pg, *sub, &scope, depth + 1);
  return sub;
}

bool GraphReader::convertAttribute(const AttributeProto& a, const std::string& nodeLabel, Scope& scope, int depth,
                                   Attribute& out) {
  const std::string what = "attribute '" + a.name + "' of " + nodeLabel;
  if (a.name.empty()) invalid(nodeLabel + " has an attribute with no name");
  if (!a.refAttrName.empty()) {
    invalid(what + " refers to function attribute '" + a.refAttrName + "' outside a function");
  }
  int32_t type = a.type;
  if (type == onnxproto::kAttrUndefined) {
    // IR version 1 files carry no type discriminator: take the field that is present.
    if (a.hasF) type = onnxproto::kAttrFloat;
    else if (a.hasI) type = onnxproto::kAttrInt;
    else if (a.hasS) type = onnxproto::kAttrString;
    else if (a.hasT) type = onnxproto::kAttrTensor;
    else if (a.hasG) type = onnxproto::kAttrGraph;
    else if (a.hasSparse) type = onnxproto::kAttrSparseTensor;
    else if (!a.floats.empty()) type = onnxproto::kAttrFloats;
    else if (!a.ints.empty()) type = onnxproto::kAttrInts;
    else if (!a.strings.empty()) type = onnxproto::kAttrStrings;
    else if (!a.tensors.empty()) type = onnxproto::kAttrTensors;
    else if (!a.graphs.empty()) type = onnxproto::kAttrGraphs;
    else if (!a.sparseTensors.empty()) type = onnxproto::kAttrSparseTensors;
    else invalid(what + " has no type and no value");
  }
  switch (type) {
    case onnxproto::kAttrFloat:
      out.kind = Attribute::Kind::Float;
      out.f = a.f;
      return true;
    case onnxproto::kAttrInt:
      out.kind = Attribute::Kind::Int;
      out.i = a.i;
      return true;
    case onnxproto::kAttrString:
      out.kind = Attribute::Kind::String;
      out.s = a.s;
      return true;
    case onnxproto::kAttrTensor:
      if (!a.hasT) invalid(what + " is a tensor attribute without a tensor");
      out.kind = Attribute::Kind::Tensor;
      out.t = std::make_shared<Tensor>(decodeTensor(*a.t, what, options_, budget_));
      return true;
    case onnxproto::kAttrSparseTensor:
      // Kept dense: the only ONNX user is Constant's sparse_value, which means the dense tensor.
      if (!a.hasSparse) invalid(what + " is a sparse tensor attribute without a tensor");
      out.kind = Attribute::Kind::Tensor;
      out.t = std::make_shared<Tensor>(decodeSparseTensor(*a.sparse, what, options_, budget_));
      return true;
    case onnxproto::kAttrGraph:
      if (!a.hasG) invalid(what + " is a graph attribute without a graph");
      out.kind = Attribute::Kind::Graph;
      out.g = buildSubgraph(*a.g, scope, depth);
      return true;
    case onnxproto::kAttrFloats:
      out.kind = Attribute::Kind::Floats;
      out.floats = a.floats;
      return true;
    case onnxproto::kAttrInts:
      out.kind = Attribute::Kind::Ints;
      out.ints = a.ints;
      return true;
    case onnxproto::kAttrStrings:
      out.kind = Attribute::Kind::Strings;
      out.strings = a.strings;
      return true;
    case onnxproto::kAttrTensors:
      out.kind = Attribute::Kind::Tensors;
      for (const auto& t : a.tensors) out.tensors.push_back(std::make_shared<Tensor>(decodeTensor(*t, what, options_, budget_)));
      return true;
    case onnxproto::kAttrSparseTensors:
      out.kind = Attribute::Kind::Tensors;
      for (const auto& s : a.sparseTensors) {
        out.tensors.push_back(std::make_shared<Tensor>(decodeSparseTensor(*s, what, options_, budget_)));
      }
      return true;
    case onnxproto::kAttrGraphs:
      out.kind = Attribute::Kind::Graphs;
      for (const auto& g : a.graphs) out.graphs.push_back(buildSubgraph(*g, scope, depth));
      return true;
    case onnxproto::kAttrTypeProto:
    case onnxproto::kAttrTypeProtos:
      // Type attributes only configure sequence/optional ops, which Kiln reports as unsupported;
      // the node keeps its other attributes so that report can name it.
      return false;
    default:
      invalid(what + " has unknown attribute type " + std::to_string(type));
  }
}

void GraphReader::build(const GraphProto& pg, Graph& g, Scope* outer, int depth) {
  if (depth > options_.maxGraphDepth) {
    invalid("subgraphs are nested more than " + std::to_string(options_.maxGraphDepth) + " deep (graph '" + pg.name + "')");
  }
  g.name = pg.name;
  const std::string where = depth == 0 ? std::string("graph") : "subgraph '" + pg.name + "'";
  Scope scope{&g, {}, outer};

  // Initializers first: a graph input of the same name is then a constant (IR < 4 models list every
  // initializer among the inputs).
  for (const auto& t : pg.initializers) {
    std::string what = "initializer '" + t.name + "'";
    if (t.name.empty()) invalid("an initializer of " + where + " has an empty name");
    ValueId id = g.addConstant(t.name, decodeTensor(t, what, options_, budget_));
    define(scope, t.name, id, what);
  }
  for (const auto& s : pg.sparseInitializers) {
    const std::string& name = s.values.name;
    std::string what = "sparse initializer '" + name + "'";
    if (name.empty()) invalid("a sparse initializer of " + where + " has an empty name");
    ValueId id = g.addConstant(name, decodeSparseTensor(s, what, options_, budget_));
    define(scope, name, id, what);
  }
  std::unordered_set<std::string> inputNames;
  for (const auto& v : pg.inputs) {
    std::string what = (depth == 0 ? "graph input '" : "subgraph input '") + v.name + "'";
    if (v.name.empty()) invalid("an input of " + where + " has an empty name");
    if (!inputNames.insert(v.name).second) invalid(what + " is listed twice");
    auto known = scope.names.find(v.name);
    if (known != scope.names.end()) continue;  // an initializer: stays a constant
    // Top-level inputs are fed by callers, so they must say what they are; body inputs (Loop's
    // iteration count...) are typed by the op.
    DeclaredType t = declaredType(v, what, depth == 0);
    ValueId id = g.addValue(v.name, t.dtype, t.shape);
    define(scope, v.name, id, what);
    g.inputs.push_back(id);
  }

  // Pass 1: every node output, so that nodes may appear in any order and subgraphs may read values
  // produced by later nodes (compact() orders them and catches cycles).
  std::unordered_set<std::string> nodeNames;
  g.nodes.reserve(pg.nodes.size());
  for (size_t i = 0; i < pg.nodes.size(); i++) {
    const NodeProto& pn = pg.nodes[i];
    if (++nodeCount_ > options_.maxNodes) {
      invalid("the model has more than " + std::to_string(options_.maxNodes) + " nodes");
    }
    Node n;
    n.opType = pn.opType;
    n.domain = canonicalDomain(pn.domain);
    std::string base = pn.name.empty() ? (pn.opType.empty() ? "node" : pn.opType) + "_" + std::to_string(i) : pn.name;
    n.name = base;
    for (int k = 1; nodeNames.count(n.name); k++) n.name = base + "_" + std::to_string(k);
    nodeNames.insert(n.name);
    if (pn.opType.empty()) invalid("node '" + n.name + "' in " + where + " has no op_type");
    std::string label = "node '" + n.name + "' (" + n.opType + ")";
    int32_t index = static_cast<int32_t>(g.nodes.size());
    for (const auto& o : pn.outputs) {
      if (o.empty()) {
        n.outputs.push_back(kNoValue);
        continue;
      }
      ValueId id = g.addValue(o);
      define(scope, o, id, label);
      g.values[id].producer = index;
      n.outputs.push_back(id);
    }
    g.nodes.push_back(std::move(n));
  }

  // Pass 2: inputs and attributes (subgraphs see every name of this graph).
  for (size_t i = 0; i < pg.nodes.size(); i++) {
    const NodeProto& pn = pg.nodes[i];
    std::string label = "node '" + g.nodes[i].name + "' (" + g.nodes[i].opType + ")";
    std::vector<ValueId> inputs;
    inputs.reserve(pn.inputs.size());
    for (const auto& in : pn.inputs) {
      if (in.empty()) {
        inputs.push_back(kNoValue);
        continue;
      }
      ValueId id = resolve(scope, in);
      if (id == kNoValue) invalid(label + " input '" + in + "' is not defined");
      inputs.push_back(id);
    }
    g.nodes[i].inputs = std::move(inputs);
    std::map<std::string, Attribute> attrs;
    for (const auto& pa : pn.attributes) {
      Attribute a;
      if (!convertAttribute(pa, label, scope, depth, a)) continue;
      if (!attrs.emplace(pa.name, std::move(a)).second) invalid(label + " has attribute '" + pa.name + "' twice");
    }
    g.nodes[i].attrs = std::move(attrs);
  }

  for (const auto& v : pg.outputs) {
    std::string what = (depth == 0 ? "graph output '" : "subgraph output '") + v.name + "'";
    if (v.name.empty()) invalid("an output of " + where + " has an empty name");
    ValueId id = resolve(scope, v.name);
    if (id == kNoValue) invalid(what + " is not defined");
    DeclaredType t = declaredType(v, what, false);
    Value& value = g.values[id];
    if (value.dtype == DType::Undefined) value.dtype = t.dtype;
    if (!value.shape.hasRank) value.shape = t.shape;
    g.outputs.push_back(id);
  }
  if (depth == 0 && g.outputs.empty()) invalid("the graph has no outputs");

  // value_info: declared types of intermediate values (inference may refine them later). Entries
  // for unknown names or non-tensor values describe nothing Kiln computes, so they are ignored.
  for (const auto& v : pg.valueInfo) {
    auto it = scope.names.find(v.name);
    if (it == scope.names.end() || !v.hasType || v.type.kind != TypeProto::Kind::Tensor) continue;
    Value& value = g.values[it->second];
    if (value.constant) continue;
    DeclaredType t = declaredType(v, "value_info '" + v.name + "'", false);
    if (value.dtype == DType::Undefined) value.dtype = t.dtype;
    if (!value.shape.hasRank) value.shape = t.shape;
  }

  g.compact();
}

// Unknown dims get names "unk_<n>" that no declared dim_param uses, so two unknown dims are never
// taken for equal and inference's fresh symbols (also "unk_<n>") continue after them.
void collectSymbols(const Graph& g, std::unordered_set<std::string>& symbols) {
  for (const Value& v : g.values) {
    for (const Dim& d : v.shape.dims) {
      if (!d.isKnown() && !d.symbol.empty()) symbols.insert(d.symbol);
    }
  }
  for (const Node& n : g.nodes) {
    for (const auto& [name, a] : n.attrs) {
      if (a.g) collectSymbols(*a.g, symbols);
      for (const auto& sub : a.graphs) {
        if (sub) collectSymbols(*sub, symbols);
      }
    }
  }
}

void nameUnknownDims(Graph& g, std::unordered_set<std::string>& symbols, int64_t& counter) {
  for (Value& v : g.values) {
    for (Dim& d : v.shape.dims) {
      if (d.isKnown() || !d.symbol.empty()) continue;
      std::string name;
      do {
        name = "unk_" + std::to_string(counter++);
      } while (symbols.count(name));
      symbols.insert(name);
      d.symbol = name;
    }
  }
  for (Node& n : g.nodes) {
    for (auto& [name, a] : n.attrs) {
      if (a.g) nameUnknownDims(*a.g, symbols, counter);
      for (auto& sub : a.graphs) {
        if (sub) nameUnknownDims(*sub, symbols, counter);
      }
    }
  }
}

std::map<std::string, int64_t> readOpsets(const onnxproto::ModelProto& m) {
  std::map<std::string, int64_t> opsets;
  for (const auto& o : m.opsets) {
    std::string d = canonicalDomain(o.domain);
    std::string label = d.empty() ? "ai.onnx" : d;
    if (!o.hasVersion || o.version < 1) {
      invalid("opset import for domain '" + label + "' has invalid version " + std::to_string(o.version));
    }
    auto [it, inserted] = opsets.emplace(d, o.version);
    if (!inserted && it->second != o.version) {
      invalid("domain '" + label + "' is imported twice, with versions " + std::to_string(it->second) + " and " +
              std::to_string(o.version));
    }
  }
  if (opsets.empty()) {
    // IR version < 3 predates opset_import; such models used opset 1 implicitly.
    if (m.irVersion < 3) opsets[""] = 1;
    else invalid("the model imports no operator set (opset_import is empty)");
  }
  return opsets;
}

}  // namespace

Graph readModel(const uint8_t* data, size_t size, const ReadOptions& options, ModelMetadata* metadata) {
  if (size == 0) invalid("the file is empty: not an ONNX model");
  if (data == nullptr) fail(ErrorCode::InvalidArgument, "readModel: null data");
  if (size > options.maxModelBytes) {
    fail(ErrorCode::OutOfMemory, "the model is " + std::to_string(size) + " bytes, more than the limit of " +
                                     std::to_string(options.maxModelBytes));
  }
  onnxproto::ModelProto m = onnxproto::parseModelProto(data, size);
  if (!m.hasIrVersion || m.irVersion <= 0) invalid("not an ONNX model: ir_version is missing");
  if (!m.hasGraph) invalid("not an ONNX model: it has no graph");

  Graph g;
  g.opsets = readOpsets(m);
  inlineFunctions(m.graph, m.functions, g.opsets, options);
  GraphReader reader(options);
  reader.build(m.graph, g, nullptr, 0);

  std::unordered_set<std::string> symbols;
  collectSymbols(g, symbols);
  int64_t counter = 0;
  nameUnknownDims(g, symbols, counter);
  linkSubgraphs(g);

  if (metadata) {
    metadata->irVersion = m.irVersion;
    metadata->producerName = m.producerName;
    metadata->producerVersion = m.producerVersion;
    metadata->domain = m.domain;
    metadata->docString = m.docString;
    metadata->modelVersion = m.modelVersion;
    metadata->metadataProps = m.metadataProps;
  }
  return g;
}

Tensor readTensorProto(const uint8_t* data, size_t size, const ReadOptions& options) {
  if (data == nullptr && size > 0) fail(ErrorCode::InvalidArgument, "readTensorProto: null data");
  if (size > options.maxModelBytes) {
    fail(ErrorCode::OutOfMemory, "the tensor file is " + std::to_string(size) + " bytes, more than the limit");
  }
  onnxproto::TensorProto t = onnxproto::parseTensorProto(data, size);
  TensorBudget budget;
  return decodeTensor(t, t.name.empty() ? std::string("tensor") : "tensor '" + t.name + "'", options, budget);
}

std::string readTensorProtoName(const uint8_t* data, size_t size) {
  return onnxproto::parseTensorProto(data, size).name;
}

}  // namespace kiln
