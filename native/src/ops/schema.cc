#include "ops/schema.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <set>
#include <tuple>

#include "core/error.h"

namespace kiln {

void failMissingInput(const Node& node, size_t index, size_t count) {
  fail(ErrorCode::InvalidModel, "node '" + node.name + "' (" + node.opType + "): input " +
                                    std::to_string(index) + " is required but the node has " +
                                    std::to_string(count) + (count == 1 ? " input" : " inputs"));
}

// ---- InferContext ---------------------------------------------------------------------------------

InferContext::InferContext(const Node& n, int64_t opsetVersion, size_t numIn, size_t numOut)
    : node(n),
      opset(opsetVersion),
      present(numIn, false),
      inputTypes(n, numIn, DType::Undefined),
      inputShapes(n, numIn),
      inputValues(n, numIn, nullptr),
      outputTypes(numOut, DType::Undefined),
      outputShapes(numOut),
      outputValues(numOut) {
  // Presence follows the node by default; drivers may still override it.
  for (size_t i = 0; i < numIn; i++) present[i] = n.hasInput(i);
}

std::optional<std::vector<int64_t>> InferContext::intValues(size_t i) const {
  if (!hasInput(i) || i >= inputValues.size() || inputValues[i] == nullptr) return std::nullopt;
  const Tensor* t = inputValues[i];
  if (t->dtype != DType::Int64 && t->dtype != DType::Int32) return std::nullopt;
  return t->toInt64Vector();
}

void InferContext::setOutput(size_t i, DType type, SymShape shape) {
  // Optional outputs the model omits (Dropout's mask, LayerNorm's mean) need no result; infer
  // functions set them unconditionally and we drop them here.
  if (i >= outputTypes.size()) return;
  outputTypes[i] = type;
  outputShapes[i] = std::move(shape);
}

Dim InferContext::freshDim() {
  static std::atomic<int64_t> processCounter{0};
  int64_t n = symbolCounter ? (*symbolCounter)++ : processCounter.fetch_add(1);
  return Dim::sym("unk_" + std::to_string(n));
}

void InferContext::error(const std::string& what) const {
  // ShapeMismatch: at run time this is the caller's inputs disagreeing with the model. The build-time
  // driver rethrows it as InvalidModel, since there the model itself is inconsistent.
  fail(ErrorCode::ShapeMismatch, "node '" + node.name + "' (" + node.opType + "): " + what);
}

Dim InferContext::mul(const Dim& a, const Dim& b) {
  if (a.isKnown() && b.isKnown()) {
    if (a.value != 0 && b.value > INT64_MAX / a.value) {
      error("dimension " + a.toString() + "*" + b.toString() + " overflows");
    }
    return Dim::known(a.value * b.value);
  }
  if (a.isKnown() && a.value == 1) return b;
  if (b.isKnown() && b.value == 1) return a;
  if ((a.isKnown() && a.value == 0) || (b.isKnown() && b.value == 0)) return Dim::known(0);
  return freshDim();
}

Dim InferContext::add(const Dim& a, const Dim& b) {
  if (a.isKnown() && b.isKnown()) {
    if (b.value > INT64_MAX - a.value) error("dimension " + a.toString() + "+" + b.toString() + " overflows");
    return Dim::known(a.value + b.value);
  }
  if (a.isKnown() && a.value == 0) return b;
  if (b.isKnown() && b.value == 0) return a;
  return freshDim();
}

SymShape InferContext::broadcast(const std::vector<SymShape>& shapes) {
  size_t rank = 0;
  for (const SymShape& s : shapes) {
    if (!s.hasRank) return SymShape::unknown();
    rank = std::max(rank, s.rank());
  }
  SymShape out;
  out.hasRank = true;
  out.dims.resize(rank);
  for (size_t k = 0; k < rank; k++) {  // k counts from the right
    int64_t known = -1;  // the size != 1 every known dim agrees on
    std::set<std::string> symbols;
    bool anonymous = false;  // an unknown dim without a name: equal to nothing
    for (const SymShape& s : shapes) {
      if (k >= s.rank()) continue;
      const Dim& d = s.dims[s.rank() - 1 - k];
      if (d.isKnown()) {
        if (d.value == 1) {
          continue;  // 1 broadcasts against anything
        } else if (known < 0) {
          known = d.value;
        } else if (known != d.value) {
          std::string list;
          for (const SymShape& t : shapes) list += (list.empty() ? "" : ", ") + t.toString();
          error("cannot broadcast shapes " + list);
        }
      } else if (d.symbol.empty()) {
        anonymous = true;
      } else {
        symbols.insert(d.symbol);
      }
    }
    Dim& o = out.dims[rank - 1 - k];
    if (known >= 0) {
      // A symbolic dim broadcast against a known size != 1 must be 1 or that size: either way the
      // result is the known size.
      o = Dim::known(known);
    } else if (!anonymous && symbols.size() == 1) {
      o = Dim::sym(*symbols.begin());  // "batch" vs 1 or vs "batch" is "batch"
    } else if (!anonymous && symbols.empty()) {
      o = Dim::known(1);
    } else {
      o = freshDim();  // "a" vs "b": one of them is 1, but we cannot tell which
    }
  }
  return out;
}

// ---- common inference functions -------------------------------------------------------------------

void inferUnchangedShape(InferContext& ctx) {
  if (!ctx.hasInput(0)) ctx.error("input 0 is required");
  ctx.setOutput(0, ctx.inputTypes[0], ctx.inputShapes[0]);
}

void inferBroadcast(InferContext& ctx) {
  if (!ctx.hasInput(0)) ctx.error("input 0 is required");
  std::vector<SymShape> shapes;
  for (size_t i = 0; i < ctx.numInputs(); i++) {
    if (ctx.hasInput(i)) shapes.push_back(ctx.inputShapes[i]);
  }
  ctx.setOutput(0, ctx.inputTypes[0], ctx.broadcast(shapes));
}

// ---- SchemaRegistry -------------------------------------------------------------------------------

namespace {
// "ai.onnx" and "" name the same default domain.
std::string canonicalDomain(const std::string& d) { return d == "ai.onnx" ? std::string() : d; }

auto schemaKey(const OpSchema& s) { return std::tie(s.domain, s.opType, s.sinceVersion); }
}  // namespace

SchemaRegistry& SchemaRegistry::instance() {
  static SchemaRegistry registry;
  return registry;
}

void SchemaRegistry::add(OpSchema schema) {
  schema.domain = canonicalDomain(schema.domain);
  // Kept sorted by (domain, op, version) so find() is a binary search. Registration happens during
  // static initialisation, before any find(), so returned pointers stay valid afterwards.
  auto pos = std::lower_bound(schemas_.begin(), schemas_.end(), schema,
                              [](const OpSchema& a, const OpSchema& b) { return schemaKey(a) < schemaKey(b); });
  if (pos != schemas_.end() && schemaKey(*pos) == schemaKey(schema)) {
    // Two files registering the same op version is a team bug; keep the first and say so loudly
    // (throwing here would abort the process during static initialisation).
    std::fprintf(stderr, "kiln: duplicate schema %s:%s since %lld ignored\n", schema.domain.c_str(),
                 schema.opType.c_str(), static_cast<long long>(schema.sinceVersion));
    return;
  }
  schemas_.insert(pos, std::move(schema));
}

const OpSchema* SchemaRegistry::find(const std::string& domain, const std::string& opType, int64_t opset) const {
  std::string d = canonicalDomain(domain);
  // First entry past (d, opType, opset); the one before it is the latest version <= opset.
  auto key = std::tie(d, opType, opset);
  auto it = std::upper_bound(schemas_.begin(), schemas_.end(), key,
                             [](const auto& k, const OpSchema& s) { return k < schemaKey(s); });
  if (it == schemas_.begin()) return nullptr;
  --it;
  if (it->domain != d || it->opType != opType || it->sinceVersion > opset) return nullptr;
  return &*it;
}

std::vector<std::string> SchemaRegistry::opTypes(const std::string& domain) const {
  std::string d = canonicalDomain(domain);
  std::vector<std::string> out;
  for (const OpSchema& s : schemas_) {
    if (s.domain == d && (out.empty() || out.back() != s.opType)) out.push_back(s.opType);
  }
  return out;
}

}  // namespace kiln
