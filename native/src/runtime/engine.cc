#include <cstring>

#include "core/error.h"
#include "runtime/context.h"
#include "runtime/engine_impl.h"

namespace kiln {

bool isViewOp(const Node& node) {
  if (!node.domain.empty()) return false;
  const std::string& op = node.opType;
  return op == "Reshape" || op == "Flatten" || op == "Squeeze" || op == "Unsqueeze" || op == "Identity";
}

bool isInPlaceOp(const Node& node) {
  // Unary elementwise ops only: each output element depends on the same input element alone, so
  // writing over the input is safe for any kernel that reads an element before writing it.
  if (!node.domain.empty() || node.inputs.size() != 1 || node.outputs.size() != 1) return false;
  static const char* const kOps[] = {"Relu", "LeakyRelu", "Sigmoid", "Tanh", "Exp", "Log", "Abs", "Neg",
                                     "Sqrt", "Erf", "Elu", "Selu", "Softplus", "HardSigmoid", "HardSwish",
                                     "Reciprocal", "Floor", "Ceil", "Round", "Sin", "Cos"};
  for (const char* op : kOps) {
    if (node.opType == op) return true;
  }
  return false;
}

int64_t opsetOf(const Graph& graph, const Node& node) {
  for (const Graph* g = &graph; g != nullptr; g = g->parent) {
    auto it = g->opsets.find(node.domain);
    if (it != g->opsets.end()) return it->second;
    if (node.domain == "ai.onnx") {
      it = g->opsets.find("");
      if (it != g->opsets.end()) return it->second;
    }
  }
  // Kiln's own ops are versioned by the engine, not by the model.
  return node.domain == "kiln" ? 1 : 0;
}

std::string qualifiedOp(const Node& node) {
  return node.domain.empty() || node.domain == "ai.onnx" ? node.opType : node.domain + "." + node.opType;
}

const OpSchema* requireSchema(const Graph& graph, const Node& node) {
  int64_t opset = opsetOf(graph, node);
  const OpSchema* schema = SchemaRegistry::instance().find(node.domain, node.opType, opset);
  if (schema == nullptr)
    fail(ErrorCode::UnsupportedOp, "unsupported operator " + qualifiedOp(node) + " (opset " + std::to_string(opset) +
                                       ") at node '" + node.name + "'");
  return schema;
}

std::shared_ptr<Engine> Engine::load(const uint8_t* data, size_t size) {
  KILN_CHECK(data != nullptr || size == 0, InvalidArgument, "Engine::load: null data");
  EngineIdentity built = readEngineIdentity(data, size);
  EngineIdentity runtime;
  runtime.builderVersion = builderVersion();
  std::shared_ptr<Backend> backend;
  try {
    backend = createBackend(built.backend);
  } catch (const KilnError& e) {
    // This binary lacks the engine's backend (a CUDA engine on a CPU-only build): describe the
    // runtime by its CPU backend, which every build has.
    std::shared_ptr<Backend> cpu = createBackend("cpu");
    runtime.backend = cpu->name();
    runtime.target = cpu->target();
    fail(ErrorCode::EngineMismatch, "engine was built for " + built.describe() + ", this runtime is " +
                                        runtime.describe() + ": " + e.what());
  }
  runtime.backend = backend->name();
  runtime.target = backend->target();
  runtime.libraryVersions = backend->libraryVersions();
  checkEngineCompatible(built, runtime);
  return std::make_shared<EngineImpl>(deserializeEngine(data, size), std::move(backend));
}

EngineImpl::EngineImpl(EnginePlan plan, std::shared_ptr<Backend> backend)
    : plan_(std::move(plan)), backend_(std::move(backend)) {
  const Graph& g = *plan_.graph;
  for (size_t v = 0; v < g.values.size(); ++v) names_.emplace(g.values[v].name, static_cast<ValueId>(v));
  for (ValueId v : g.inputs) inputs_.push_back(TensorInfo{g.values[v].name, g.values[v].dtype, g.values[v].shape});
  for (ValueId v : g.outputs) outputs_.push_back(TensorInfo{g.values[v].name, g.values[v].dtype, g.values[v].shape});

  nodes_.resize(g.nodes.size());
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    const Node& node = g.nodes[n];
    NodeInfo& info = nodes_[n];
    info.schema = requireSchema(g, node);
    info.opset = opsetOf(g, node);
    info.isView = isViewOp(node);
    for (const auto& [name, attr] : node.attrs) {
      if (attr.kind == Attribute::Kind::Graph || attr.kind == Attribute::Kind::Graphs) info.hasSubgraphs = true;
    }
    KernelCreateInfo create{node, info.opset, g, {}, {}, {}, {}, {}};
    for (ValueId v : node.inputs) {
      create.inputTypes.push_back(v == kNoValue ? DType::Undefined : g.values[v].dtype);
      create.inputShapes.push_back(v == kNoValue ? SymShape::unknown() : g.values[v].shape);
      create.constantInputs.push_back(v == kNoValue ? nullptr : g.values[v].constant.get());
    }
    for (ValueId v : node.outputs) {
      create.outputTypes.push_back(v == kNoValue ? DType::Undefined : g.values[v].dtype);
      create.outputShapes.push_back(v == kNoValue ? SymShape::unknown() : g.values[v].shape);
    }
    info.kernel = backend_->compile(create);
  }
  indexBodies(g);
}

ValueId EngineImpl::findName(const std::string& name) const {
  auto it = names_.find(name);
  return it == names_.end() ? kNoValue : it->second;
}

void EngineImpl::indexBodies(const Graph& graph) {
  for (const Node& node : graph.nodes) {
    for (const auto& [name, attr] : node.attrs) {
      std::vector<const Graph*> bodies;
      if (attr.kind == Attribute::Kind::Graph && attr.g) bodies.push_back(attr.g.get());
      if (attr.kind == Attribute::Kind::Graphs) {
        for (const auto& g : attr.graphs) {
          if (g) bodies.push_back(g.get());
        }
      }
      for (const Graph* body : bodies) {
        BodyInfo& info = bodies_[body];
        for (size_t v = 0; v < body->values.size(); ++v) info.names.emplace(body->values[v].name, static_cast<ValueId>(v));
        for (const Node& n : body->nodes) {
          info.schemas.push_back(requireSchema(*body, n));
          info.opsets.push_back(opsetOf(*body, n));
        }
        indexBodies(*body);
      }
    }
  }
}

const BodyInfo& EngineImpl::body(const Graph& graph) const {
  auto it = bodies_.find(&graph);
  KILN_CHECK(it != bodies_.end(), Internal, "subgraph '" + graph.name + "' does not belong to this engine");
  return it->second;
}

const Kernel& EngineImpl::subgraphKernel(const Graph& body, size_t nodeIndex, const std::vector<DType>& inputTypes,
                                         const std::vector<DType>& outputTypes) const {
  SubgraphKey key{&body, nodeIndex, inputTypes};
  std::lock_guard<std::mutex> lock(subgraphMutex_);
  auto it = subgraphKernels_.find(key);
  if (it != subgraphKernels_.end()) return *it->second;
  const Node& node = body.nodes.at(nodeIndex);
  // Shapes come from the graph (symbolic, valid for every run), types from this run: a kernel
  // cached here is reused for every later run with the same input types.
  KernelCreateInfo create{node, opsetOf(body, node), body, inputTypes, {}, {}, {}, {}};
  for (ValueId v : node.inputs) {
    create.inputShapes.push_back(v == kNoValue ? SymShape::unknown() : body.values[v].shape);
    create.constantInputs.push_back(v == kNoValue ? nullptr : body.values[v].constant.get());
  }
  for (ValueId v : node.outputs) {
    create.outputShapes.push_back(v == kNoValue ? SymShape::unknown() : body.values[v].shape);
  }
  create.outputTypes = outputTypes;
  std::unique_ptr<Kernel> kernel = backend_->compile(create);
  const Kernel& ref = *kernel;
  subgraphKernels_.emplace(std::move(key), std::move(kernel));
  return ref;
}

std::unique_ptr<ExecutionContext> EngineImpl::createContext() {
  auto self = std::static_pointer_cast<const EngineImpl>(shared_from_this());
  if (std::unique_ptr<ExecutionContext> device = backend_->createContext(self)) return device;
  return std::make_unique<ContextImpl>(std::move(self));
}

}  // namespace kiln
