#include "runtime/node_exec.h"

#include <new>

#include "runtime/engine_impl.h"

namespace kiln {

ConcreteShapes inferConcrete(const Node& node, const OpSchema& schema, int64_t opset,
                             const std::vector<const Tensor*>& inputs, const std::vector<const Tensor*>& values) {
  InferContext ctx(node, opset, inputs.size(), node.outputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    ctx.present[i] = inputs[i] != nullptr;
    if (inputs[i] == nullptr) continue;
    ctx.inputTypes[i] = inputs[i]->dtype;
    ctx.inputShapes[i] = SymShape::of(inputs[i]->shape);
    ctx.inputValues[i] = values[i];
  }
  schema.infer(ctx);
  ConcreteShapes out;
  out.types.resize(node.outputs.size(), DType::Undefined);
  out.shapes.resize(node.outputs.size());
  for (size_t j = 0; j < node.outputs.size(); ++j) {
    if (node.outputs[j] == kNoValue) continue;
    out.types[j] = ctx.outputTypes[j];
    KILN_CHECK(out.types[j] != DType::Undefined, Internal,
               "node '" + node.name + "' (" + qualifiedOp(node) + "): schema left output " + std::to_string(j) +
                   " without a type");
    if (ctx.outputShapes[j].isConcrete()) {
      out.shapes[j] = ctx.outputShapes[j].concrete();
    } else {
      out.concrete = false;
    }
  }
  return out;
}

void rethrowWithNode(const Node& node, const std::exception& e) {
  std::string where = "node '" + node.name + "'";
  if (const auto* k = dynamic_cast<const KilnError*>(&e)) {
    if (std::string(k->what()).find(where) != std::string::npos) throw *k;
    throw KilnError(k->code(), where + " (" + qualifiedOp(node) + "): " + k->what());
  }
  if (dynamic_cast<const std::bad_alloc*>(&e) != nullptr)
    throw KilnError(ErrorCode::OutOfMemory, where + " (" + qualifiedOp(node) + "): out of memory");
  throw KilnError(ErrorCode::Internal, where + " (" + qualifiedOp(node) + "): " + e.what());
}

}  // namespace kiln
