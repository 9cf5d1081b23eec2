#include "runtime/subgraph.h"

#include "core/thread_pool.h"
#include "runtime/node_exec.h"

namespace kiln {

std::vector<Tensor> SubgraphRunnerImpl::run(const Graph& body, const std::vector<const Tensor*>& inputs,
                                            const std::function<const Tensor*(const std::string&)>& outer) {
  const BodyInfo& info = engine_.body(body);
  KILN_CHECK(inputs.size() == body.inputs.size(), InvalidModel,
             "subgraph '" + body.name + "' takes " + std::to_string(body.inputs.size()) + " inputs, got " +
                 std::to_string(inputs.size()));
  const size_t numValues = body.values.size();
  std::vector<Tensor> owned(numValues);
  std::vector<const Tensor*> bound(numValues, nullptr);
  for (size_t v = 0; v < numValues; ++v) {
    if (body.values[v].constant) bound[v] = body.values[v].constant.get();
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    KILN_CHECK(inputs[i] != nullptr, InvalidModel, "subgraph '" + body.name + "' input " + std::to_string(i) + " is missing");
    bound[body.inputs[i]] = inputs[i];
  }
  // Captures resolve through the enclosing scopes on first use.
  auto resolve = [&](ValueId v) -> const Tensor* {
    if (bound[v] != nullptr) return bound[v];
    const Value& value = body.values[v];
    if (value.producer < 0 && outer) bound[v] = outer(value.name);
    KILN_CHECK(bound[v] != nullptr, InvalidModel,
               "subgraph '" + body.name + "' reads '" + value.name + "', which no enclosing scope defines");
    return bound[v];
  };
  std::function<const Tensor*(const std::string&)> scope = [&](const std::string& name) -> const Tensor* {
    auto it = info.names.find(name);
    if (it != info.names.end()) {
      ValueId v = it->second;
      if (bound[v] != nullptr) return bound[v];
      if (body.values[v].producer >= 0) return nullptr;  // not produced yet
    }
    return outer ? outer(name) : nullptr;
  };

  std::vector<uint8_t> scratch;
  for (size_t n = 0; n < body.nodes.size(); ++n) {
    const Node& node = body.nodes[n];
    try {
      std::vector<const Tensor*> in(node.inputs.size(), nullptr);
      std::vector<DType> inTypes(node.inputs.size(), DType::Undefined);
      for (size_t i = 0; i < node.inputs.size(); ++i) {
        if (node.inputs[i] == kNoValue) continue;
        in[i] = resolve(node.inputs[i]);
        inTypes[i] = in[i]->dtype;
      }
      const OpSchema& schema = *info.schemas[n];
      ConcreteShapes shapes = inferConcrete(node, schema, info.opsets[n], in, in);
      KILN_CHECK(shapes.concrete || schema.dataDependentShape, Internal,
                 "node '" + node.name + "' (" + qualifiedOp(node) + "): output shape not computable from its inputs");
      std::vector<Tensor*> outs(node.outputs.size(), nullptr);
      for (size_t j = 0; j < node.outputs.size(); ++j) {
        ValueId v = node.outputs[j];
        if (v == kNoValue) continue;
        Tensor& t = owned[v];
        if (schema.dataDependentShape) {
          t = Tensor{};
          t.dtype = shapes.types[j];
        } else {
          t = Tensor::allocate(shapes.types[j], shapes.shapes[j]);
        }
        outs[j] = &t;
      }
      const Kernel& kernel = engine_.subgraphKernel(body, n, inTypes, shapes.types);
      KernelContext ctx{node, in, outs, &ThreadPool::global(), nullptr, 0, nullptr, this, {}, {}};
      ctx.outerScope = scope;
      size_t ws = kernel.workspaceBytes(ctx);
      if (ws > 0) {
        // Over-allocate so the workspace can start 64-byte aligned, as kernels expect.
        if (scratch.size() < ws + 64) scratch.resize(ws + 64);
        uintptr_t p = reinterpret_cast<uintptr_t>(scratch.data());
        ctx.workspace = scratch.data() + ((64 - p % 64) % 64);
        ctx.workspaceSize = ws;
      }
      kernel.run(ctx);
      for (size_t j = 0; j < node.outputs.size(); ++j) {
        if (node.outputs[j] != kNoValue) bound[node.outputs[j]] = &owned[node.outputs[j]];
      }
    } catch (const std::exception& e) {
      rethrowWithNode(node, e);
    }
  }

  std::vector<Tensor> results;
  results.reserve(body.outputs.size());
  for (ValueId v : body.outputs) {
    const Tensor* t = resolve(v);
    // Our own intermediates can be handed over; inputs, constants and captures belong to others.
    results.push_back(t == &owned[v] && owned[v].holder ? owned[v] : t->clone());
  }
  return results;
}

}  // namespace kiln
