#include "runtime/context.h"

#include <chrono>

#include "core/error.h"
#include "core/thread_pool.h"
#include "runtime/input_check.h"
#include "runtime/node_exec.h"

namespace kiln {
namespace {

using Clock = std::chrono::steady_clock;

double msSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// Whether a node's output *values* (not just shapes) follow from the input shapes when its inputs'
// values do: true for Shape/Size and deterministic ops over such values, so Reshape's target shape
// computed by Shape -> Gather -> Concat is known for a given input shape signature.
bool valueFollowsInputs(const Node& node, const std::vector<const Tensor*>& in, const std::vector<char>& valueStable) {
  if (node.domain.empty() && (node.opType == "Shape" || node.opType == "Size")) return true;
  if (node.opType.rfind("Random", 0) == 0 || node.opType == "Multinomial" || node.opType == "Bernoulli") return false;
  bool anyInput = false;
  for (size_t i = 0; i < node.inputs.size(); ++i) {
    if (in[i] == nullptr) continue;
    anyInput = true;
    if (!valueStable[node.inputs[i]]) return false;
  }
  return anyInput || node.opType == "Constant";
}

bool hasData(const Tensor* t) { return t != nullptr && (t->data != nullptr || t->numel() == 0); }

// Shape computations worth running in a shape-only pass: small enough to be shape vectors.
constexpr int64_t kShapeValueLimit = 1 << 16;

}  // namespace

ContextImpl::ContextImpl(std::shared_ptr<const EngineImpl> engine)
    : engine_(std::move(engine)), graph_(engine_->graph()), subgraphs_(*engine_) {
  const size_t arenaBytes = engine_->deviceMemoryBytes();
  // The whole activation memory of this context, allocated once: runs never allocate except for
  // data-dependent tensors that outgrow their slot and for graph outputs handed to the caller.
  if (arenaBytes > 0) arena_ = static_cast<uint8_t*>(engine_->backendImpl().allocate(arenaBytes));
  values_.resize(graph_.values.size());
  isGraphInput_.assign(graph_.values.size(), 0);
  isGraphOutput_.assign(graph_.values.size(), 0);
  for (ValueId v : graph_.inputs) isGraphInput_[v] = 1;
  for (ValueId v : graph_.outputs) isGraphOutput_[v] = 1;
}

ContextImpl::~ContextImpl() {
  if (arena_ != nullptr) engine_->backendImpl().release(arena_);
}

RunResult ContextImpl::run(const std::vector<std::pair<std::string, Tensor>>& inputs) {
  return runTraced(inputs, nullptr);
}

RunResult ContextImpl::runTraced(const std::vector<std::pair<std::string, Tensor>>& inputs, RunTrace* trace) {
  BoundInputs bound = bindInputs(*engine_, inputs, trace == nullptr || !trace->shapeOnly);
  if (trace != nullptr) {
    ShapePlan plan;
    return execute(bound.tensors, &plan, true, trace);
  }
  auto it = cache_.find(bound.signature);
  bool record = it == cache_.end();
  if (record) {
    // Serving sees a handful of shapes; a client cycling through many just re-records.
    if (cache_.size() >= kMaxCachedSignatures) cache_.clear();
    it = cache_.emplace(bound.signature, std::make_unique<ShapePlan>()).first;
  }
  try {
    return execute(bound.tensors, it->second.get(), record, nullptr);
  } catch (...) {
    if (record) cache_.erase(it);
    throw;
  }
}

const Tensor* ContextImpl::tensorOf(ValueId v) const { return bound_[v]; }

void ContextImpl::place(ValueId v, Tensor& t, bool forceHeap) {
  const EngineMemoryPlan& mem = engine_->plan().memory;
  const bool planned = v < static_cast<ValueId>(mem.slots.size());
  if (forceHeap || !planned || t.dtype == DType::String) {
    t = Tensor::allocate(t.dtype, t.shape);
    return;
  }
  const EngineSlot& slot = mem.slots[v];
  const size_t bytes = t.byteSize();
  if (slot.aliasOf != kNoValue) {
    // A view or in-place result granted by the planner: share the source's buffer, wherever it is.
    const Tensor* src = bound_[slot.aliasOf];
    if (src != nullptr && hasData(src) && bytes <= src->byteSize()) {
      t.data = src->data;
      t.holder = src->holder;
      return;
    }
  } else if (slot.offset >= 0 && bytes <= slot.bytes) {
    t.data = arena_ + slot.offset;
    return;
  }
  // Data-dependent sizes can exceed what the plan saw at the max shapes.
  t = Tensor::allocate(t.dtype, t.shape);
}

void* ContextImpl::workspaceFor(size_t node, size_t bytes) {
  if (bytes == 0) return nullptr;
  const EngineMemoryPlan& mem = engine_->plan().memory;
  if (node < mem.workspaces.size()) {
    const EngineSlot& slot = mem.workspaces[node];
    if (slot.offset >= 0 && bytes <= slot.bytes) return arena_ + slot.offset;
  }
  if (scratch_.byteSize() < bytes) scratch_ = Tensor::allocate(DType::UInt8, {static_cast<int64_t>(bytes)});
  return scratch_.data;
}

RunResult ContextImpl::execute(const std::vector<const Tensor*>& inputs, ShapePlan* plan, bool record, RunTrace* trace) {
  const Graph& g = graph_;
  const size_t numNodes = g.nodes.size();
  const size_t numValues = g.values.size();
  const bool shapeOnly = trace != nullptr && trace->shapeOnly;
  if (record) plan->nodes.assign(numNodes, NodeShapes{});

  bound_.assign(numValues, nullptr);
  for (size_t v = 0; v < numValues; ++v) {
    if (g.values[v].constant) bound_[v] = g.values[v].constant.get();
  }
  for (size_t k = 0; k < inputs.size(); ++k) bound_[g.inputs[k]] = inputs[k];

  // While recording: which values have shapes (and values) fixed by the input shape signature.
  std::vector<char> shapeStable, valueStable;
  if (record) {
    shapeStable.assign(numValues, 0);
    valueStable.assign(numValues, 0);
    for (size_t v = 0; v < numValues; ++v) {
      if (g.values[v].constant) shapeStable[v] = valueStable[v] = 1;
    }
    for (ValueId v : g.inputs) shapeStable[v] = 1;
  }
  if (trace != nullptr) {
    trace->nodeMs.assign(numNodes, 0.0);
    trace->workspaceBytes.assign(numNodes, 0);
    trace->plannable.assign(numValues, 0);
    trace->shapeKnown.assign(numValues, 0);
    trace->shapes.assign(numValues, Shape{});
    trace->types.assign(numValues, DType::Undefined);
    for (size_t v = 0; v < numValues; ++v) {
      if (bound_[v] == nullptr) continue;
      trace->shapeKnown[v] = 1;
      trace->shapes[v] = bound_[v]->shape;
      trace->types[v] = bound_[v]->dtype;
    }
  }

  std::function<const Tensor*(const std::string&)> scope = [this](const std::string& name) -> const Tensor* {
    ValueId v = engine_->findName(name);
    return v == kNoValue ? nullptr : bound_[v];
  };

  const Clock::time_point start = Clock::now();
  for (size_t n = 0; n < numNodes; ++n) {
    const Node& node = g.nodes[n];
    const NodeInfo& info = engine_->node(n);
    NodeShapes& ns = plan->nodes[n];
    try {
      std::vector<const Tensor*> in(node.inputs.size(), nullptr);
      bool inputsKnown = true, inputsHaveData = true, inputsStable = true;
      for (size_t i = 0; i < node.inputs.size(); ++i) {
        ValueId v = node.inputs[i];
        if (v == kNoValue) continue;
        in[i] = bound_[v];
        if (in[i] == nullptr) {
          // Only a shape-only run leaves values unknown (downstream of data it did not compute).
          KILN_CHECK(shapeOnly, Internal, "value '" + g.values[v].name + "' used before it was computed");
          inputsKnown = false;
          continue;
        }
        if (!hasData(in[i])) inputsHaveData = false;
        if (record && !shapeStable[v]) inputsStable = false;
      }
      if (!inputsKnown) continue;
      const bool dataDependent = info.schema->dataDependentShape;

      // 1. Output types and shapes: cached, or inferred from shapes and shape values only (stable),
      //    or inferred from the actual data (unstable: re-done on every run).
      bool haveShapes = false;
      std::vector<DType> types;
      std::vector<Shape> shapes;
      if (!record && ns.stable) {
        types = ns.types;
        shapes = ns.shapes;
        haveShapes = true;
      } else if (record && !dataDependent && inputsStable) {
        std::vector<const Tensor*> shapeValues(in.size(), nullptr);
        for (size_t i = 0; i < in.size(); ++i) {
          if (in[i] != nullptr && valueStable[node.inputs[i]] && hasData(in[i])) shapeValues[i] = in[i];
        }
        try {
          ConcreteShapes cs = inferConcrete(node, *info.schema, info.opset, in, shapeValues);
          if (cs.concrete) {
            types = std::move(cs.types);
            shapes = std::move(cs.shapes);
            haveShapes = true;
            ns.stable = true;
            ns.types = types;
            ns.shapes = shapes;
          }
        } catch (const KilnError&) {
          // Hidden values made the schema give up; the full inference below decides.
        }
      }
      if (!haveShapes) {
        if (!inputsHaveData) continue;  // shape-only run: the shapes depend on data not computed
        ConcreteShapes cs = inferConcrete(node, *info.schema, info.opset, in, in);
        KILN_CHECK(cs.concrete || dataDependent, Internal,
                   "node '" + node.name + "' (" + qualifiedOp(node) +
                       "): the output shape cannot be computed from the inputs");
        types = std::move(cs.types);
        shapes = std::move(cs.shapes);
        if (shapeOnly && dataDependent) continue;
      }
      if (record) {
        bool flows = ns.stable && valueFollowsInputs(node, in, valueStable);
        for (ValueId v : node.outputs) {
          if (v == kNoValue) continue;
          shapeStable[v] = ns.stable;
          valueStable[v] = flows;
        }
      }

      // 2. Outputs: at their planned offsets (or views of their source), graph outputs on the heap.
      bool compute = !shapeOnly;
      if (shapeOnly) {
        int64_t elements = 0;
        bool allValues = true;
        for (size_t j = 0; j < node.outputs.size(); ++j) {
          if (node.outputs[j] == kNoValue) continue;
          allValues = allValues && valueStable[node.outputs[j]];
          elements += shapeNumel(shapes[j]);
        }
        // Shape and Size read only their input's shape, which a shape-only run always has.
        bool shapeOf = node.domain.empty() && (node.opType == "Shape" || node.opType == "Size");
        compute = allValues && (inputsHaveData || shapeOf) && elements <= kShapeValueLimit && !info.hasSubgraphs;
      }
      std::vector<Tensor*> outs(node.outputs.size(), nullptr);
      bool viewOnly = false;
      for (size_t j = 0; j < node.outputs.size(); ++j) {
        ValueId v = node.outputs[j];
        if (v == kNoValue) continue;
        Tensor& t = values_[v];
        t = Tensor{};
        t.dtype = types[j];
        outs[j] = &t;
        if (dataDependent) continue;  // the kernel allocates it (KernelContext::allocateOutput)
        t.shape = shapes[j];
        if (shapeOnly) {
          if (compute) t = Tensor::allocate(t.dtype, t.shape);
        } else {
          place(v, t, isGraphOutput_[v] != 0);
        }
      }
      if (!shapeOnly && info.isView && outs[0] != nullptr && in[0] != nullptr && outs[0]->data == in[0]->data &&
          outs[0]->data != nullptr) {
        viewOnly = true;  // the planner made the output a view of the input: nothing to copy
      }

      // 3. Workspace and kernel.
      KernelContext ctx{node, in, outs, &ThreadPool::global(), nullptr, 0, nullptr, &subgraphs_, {}, {}};
      if (info.hasSubgraphs) ctx.outerScope = scope;
      const Kernel& kernel = *info.kernel;
      size_t ws = ns.workspace;
      if (!ns.workspaceKnown && !dataDependent) {
        ws = kernel.workspaceBytes(ctx);
        ns.workspace = ws;
        ns.workspaceKnown = ns.stable;
      } else if (dataDependent) {
        ws = kernel.workspaceBytes(ctx);
      }
      if (compute && !viewOnly) {
        if (shapeOnly) {
          if (ws > 0 && scratch_.byteSize() < ws) scratch_ = Tensor::allocate(DType::UInt8, {static_cast<int64_t>(ws)});
          ctx.workspace = ws > 0 ? scratch_.data : nullptr;
        } else {
          ctx.workspace = workspaceFor(n, ws);
        }
        ctx.workspaceSize = ws;
        const Clock::time_point kernelStart = Clock::now();
        kernel.run(ctx);
        if (trace != nullptr) trace->nodeMs[n] = msSince(kernelStart);
        if (dataDependent) {
          for (size_t j = 0; j < outs.size(); ++j) {
            KILN_CHECK(outs[j] == nullptr || hasData(outs[j]), Internal,
                       "kernel " + kernel.name() + " did not allocate output " + std::to_string(j));
          }
        }
      }
      if (trace != nullptr) trace->workspaceBytes[n] = ws;
      for (size_t j = 0; j < node.outputs.size(); ++j) {
        ValueId v = node.outputs[j];
        if (v == kNoValue) continue;
        bound_[v] = &values_[v];
        if (trace != nullptr) {
          trace->shapeKnown[v] = 1;
          trace->shapes[v] = values_[v].shape;
          trace->types[v] = values_[v].dtype;
          trace->plannable[v] = record && shapeStable[v] && !dataDependent;
        }
      }
    } catch (const std::exception& e) {
      rethrowWithNode(node, e);
    }
  }

  RunResult result;
  result.computeMs = msSince(start);
  if (!shapeOnly) {
    for (size_t k = 0; k < g.outputs.size(); ++k) {
      ValueId v = g.outputs[k];
      const Tensor* t = bound_[v];
      KILN_CHECK(t != nullptr, Internal, "graph output '" + g.values[v].name + "' was not computed");
      // Graph outputs were allocated on the heap for the caller; anything else is copied out.
      bool own = t == &values_[v] && values_[v].holder != nullptr && !isGraphInput_[v];
      result.outputs.emplace_back(g.values[v].name, own ? values_[v] : t->clone());
    }
  }
  // Drop this run's references (heap fallbacks, outputs now owned by the caller).
  for (Tensor& t : values_) t = Tensor{};
  bound_.assign(numValues, nullptr);
  return result;
}

}  // namespace kiln
