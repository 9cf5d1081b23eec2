#include "runtime/input_check.h"

#include <map>

#include "core/error.h"
#include "plan/profiles.h"

namespace kiln {
namespace {

std::string inputList(const std::vector<TensorInfo>& infos) {
  std::string s;
  for (const TensorInfo& t : infos) s += (s.empty() ? "'" : ", '") + t.name + "'";
  return s.empty() ? "none" : s;
}

}  // namespace

BoundInputs bindInputs(const EngineImpl& engine, const std::vector<std::pair<std::string, Tensor>>& inputs,
                       bool requireData) {
  const std::vector<TensorInfo>& infos = engine.inputs();
  BoundInputs bound;
  bound.tensors.assign(infos.size(), nullptr);
  for (const auto& [name, tensor] : inputs) {
    size_t k = 0;
    while (k < infos.size() && infos[k].name != name) ++k;
    KILN_CHECK(k < infos.size(), InvalidArgument,
               "unknown input '" + name + "': the engine's inputs are " + inputList(infos));
    KILN_CHECK(bound.tensors[k] == nullptr, InvalidArgument, "input '" + name + "' is given twice");
    bound.tensors[k] = &tensor;
  }

  // Sizes bound to each symbolic dim so far, and which input bound it, for consistent errors.
  std::map<std::string, std::pair<int64_t, std::string>> symbols;
  std::vector<std::pair<std::string, Shape>> shapes;
  for (size_t k = 0; k < infos.size(); ++k) {
    const TensorInfo& info = infos[k];
    const Tensor* t = bound.tensors[k];
    KILN_CHECK(t != nullptr, InvalidArgument,
               "missing input '" + info.name + "' (" + dtypeName(info.dtype) + " " + info.shape.toString() + ")");
    KILN_CHECK(t->dtype == info.dtype, DTypeMismatch,
               "input '" + info.name + "' expects " + dtypeName(info.dtype) + ", got " + dtypeName(t->dtype));
    for (int64_t d : t->shape) {
      KILN_CHECK(d >= 0, ShapeMismatch, "input '" + info.name + "' has a negative dimension in " + shapeToString(t->shape));
    }
    const std::string got = shapeToString(t->shape);
    if (info.shape.hasRank) {
      KILN_CHECK(t->shape.size() == info.shape.rank(), ShapeMismatch,
                 "input '" + info.name + "' has shape " + got + " (rank " + std::to_string(t->shape.size()) +
                     ") but the model expects " + info.shape.toString() + " (rank " +
                     std::to_string(info.shape.rank()) + ")");
      for (size_t d = 0; d < t->shape.size(); ++d) {
        const Dim& dim = info.shape.dims[d];
        if (dim.isKnown()) {
          KILN_CHECK(dim.value == t->shape[d], ShapeMismatch,
                     "input '" + info.name + "' has shape " + got + " but the model expects " + info.shape.toString());
          continue;
        }
        if (dim.symbol.empty()) continue;
        auto [it, inserted] = symbols.emplace(dim.symbol, std::make_pair(t->shape[d], info.name));
        KILN_CHECK(inserted || it->second.first == t->shape[d], ShapeMismatch,
                   "input '" + info.name + "' has shape " + got + " but dim '" + dim.symbol + "' is " +
                       std::to_string(it->second.first) + " in input '" + it->second.second + "'");
      }
    }
    int64_t numel = shapeNumel(t->shape);
    if (requireData) {
      KILN_CHECK(numel == 0 || t->data != nullptr, InvalidArgument, "input '" + info.name + "' has no data");
    }
    shapes.emplace_back(info.name, t->shape);
    for (int64_t d : t->shape) bound.signature += std::to_string(d) + "x";
    bound.signature += ";";
  }
  if (!engine.profiles().empty()) bound.profile = selectProfile(engine.profiles(), shapes);
  return bound;
}

}  // namespace kiln
