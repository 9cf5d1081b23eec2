// Helpers shared by the schemas of the elementwise families (ops/elementwise.cc, activation.cc,
// logic.cc, cast.cc, softmax.cc, reduce.cc, quantize.cc): multi-version registration, type checks
// and the reduction shape rule.
#pragma once
#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "ops/schema.h"

namespace kiln {

// Registers one infer function for each opset version at which the ONNX op changed, so the
// registry lists exactly the versions ONNX defines; infer functions branch on ctx.opset where the
// semantics differ (the registry picks the newest version <= the model's opset).
struct SchemaVersions {
  SchemaVersions(const char* op, InferFn fn, std::initializer_list<int64_t> versions, bool dataDependent = false) {
    for (int64_t v : versions) {
      OpSchema s;
      s.domain = "";
      s.opType = op;
      s.sinceVersion = v;
      s.infer = fn;
      s.dataDependentShape = dataDependent;
      SchemaRegistry::instance().add(std::move(s));
    }
  }
};
#define KILN_REGISTER_SCHEMAS(tag, op, fn, ...) \
  static ::kiln::SchemaVersions KILN_SCHEMA_CAT(kSchemaVersions_##tag##_, __LINE__)(op, fn, {__VA_ARGS__})

// Input i must be present.
inline void inferRequire(InferContext& ctx, size_t i, const char* name) {
  if (!ctx.hasInput(i)) ctx.error(std::string("input ") + std::to_string(i) + " (" + name + ") is required");
}

// Present inputs in [first, end) must share one dtype (Undefined ones are not yet known and pass).
inline DType inferSameType(InferContext& ctx, size_t first = 0, size_t end = SIZE_MAX) {
  DType t = DType::Undefined;
  size_t firstIndex = 0;
  for (size_t i = first; i < ctx.numInputs() && i < end; i++) {
    if (!ctx.hasInput(i) || ctx.inputTypes[i] == DType::Undefined) continue;
    if (t == DType::Undefined) {
      t = ctx.inputTypes[i];
      firstIndex = i;
    } else if (ctx.inputTypes[i] != t) {
      ctx.error("input " + std::to_string(i) + " has type " + dtypeName(ctx.inputTypes[i]) + " but input " +
                std::to_string(firstIndex) + " has type " + dtypeName(t));
    }
  }
  return t;
}

// Input i's dtype must be `want`.
inline void inferRequireType(InferContext& ctx, size_t i, DType want, const char* name) {
  if (ctx.hasInput(i) && ctx.inputTypes[i] != DType::Undefined && ctx.inputTypes[i] != want) {
    ctx.error(std::string("input ") + name + " must be " + dtypeName(want) + ", got " + dtypeName(ctx.inputTypes[i]));
  }
}

// Broadcast of the present inputs' shapes.
inline SymShape inferBroadcastShape(InferContext& ctx, size_t first = 0, size_t end = SIZE_MAX) {
  std::vector<SymShape> shapes;
  for (size_t i = first; i < ctx.numInputs() && i < end; i++) {
    if (ctx.hasInput(i)) shapes.push_back(ctx.inputShapes[i]);
  }
  if (shapes.empty()) ctx.error("at least one input is required");
  return ctx.broadcast(shapes);
}

// Before opset 7 the binary arithmetic/logic ops broadcast B against A only when attribute
// broadcast=1, aligning B's dims at A's `axis` (default: trailing) instead of numpy's right
// alignment. Padding B with trailing 1s turns that into an ordinary numpy broadcast.
inline SymShape legacyAlignedShape(const Node& node, int64_t opset, size_t rankA, const SymShape& b) {
  if (opset >= 7 || node.getInt("broadcast", 0) == 0 || !node.has("axis") || !b.hasRank) return b;
  int64_t axis = node.getInt("axis", 0);
  int64_t ra = static_cast<int64_t>(rankA), rb = static_cast<int64_t>(b.rank());
  if (axis < 0) axis += ra;
  if (axis < 0 || axis + rb > ra) {
    fail(ErrorCode::InvalidModel, "node '" + node.name + "' (" + node.opType + "): legacy broadcast axis " +
                                      std::to_string(node.getInt("axis", 0)) + " does not fit B into A");
  }
  SymShape out = b;
  for (int64_t i = axis + rb; i < ra; i++) out.dims.push_back(Dim::known(1));
  return out;
}

// Reduction over `axes` (already normalised, sorted, unique) of `in`. With keepdims the reduced
// dims become 1, otherwise they are dropped.
inline SymShape reducedShape(const SymShape& in, const std::vector<int64_t>& axes, bool keepdims) {
  SymShape out;
  out.hasRank = true;
  for (size_t d = 0; d < in.rank(); d++) {
    bool reduced = false;
    for (int64_t a : axes) reduced = reduced || a == static_cast<int64_t>(d);
    if (!reduced) {
      out.dims.push_back(in.dims[d]);
    } else if (keepdims) {
      out.dims.push_back(Dim::known(1));
    }
  }
  return out;
}

// Normalises axes against `rank`, rejecting out-of-range and duplicate axes; returns them sorted.
inline std::vector<int64_t> inferAxes(InferContext& ctx, std::vector<int64_t> axes, int64_t rank) {
  for (int64_t& a : axes) {
    if (a < -rank || a >= rank) {
      ctx.error("axis " + std::to_string(a) + " is out of range for rank " + std::to_string(rank));
    }
    if (a < 0) a += rank;
  }
  for (size_t i = 0; i < axes.size(); i++) {
    for (size_t j = i + 1; j < axes.size(); j++) {
      if (axes[i] == axes[j]) ctx.error("axis " + std::to_string(axes[i]) + " is repeated");
    }
  }
  std::sort(axes.begin(), axes.end());
  return axes;
}

}  // namespace kiln
