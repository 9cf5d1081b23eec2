#include "ops/tensor_util.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "core/error.h"

namespace kiln {

std::string describeNode(const Node& node) {
  std::string op = node.domain.empty() ? node.opType : node.domain + "." + node.opType;
  return op + " node '" + node.name + "'";
}

void nodeFail(const Node& node, ErrorCode code, const std::string& what) {
  fail(code, describeNode(node) + ": " + what);
}

int64_t inferAxis(InferContext& ctx, int64_t axis, int64_t rank, const std::string& what) {
  if (axis < -rank || axis >= rank) {
    ctx.error(what + " " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  }
  return axis < 0 ? axis + rank : axis;
}

int64_t kernelAxis(const Node& node, int64_t axis, int64_t rank, const std::string& what) {
  if (axis < -rank || axis >= rank) {
    nodeFail(node, ErrorCode::InvalidArgument,
             what + " " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  }
  return axis < 0 ? axis + rank : axis;
}

std::vector<int64_t> normalizeAxes(const std::vector<int64_t>& axes, int64_t rank, const std::string& what,
                                   const std::function<void(const std::string&)>& onError) {
  std::vector<int64_t> out;
  std::vector<bool> seen((size_t)std::max<int64_t>(rank, 0), false);
  for (int64_t a : axes) {
    if (a < -rank || a >= rank) {
      onError(what + " " + std::to_string(a) + " is out of range for rank " + std::to_string(rank));
    }
    int64_t n = a < 0 ? a + rank : a;
    if (seen[(size_t)n]) onError(what + " lists axis " + std::to_string(a) + " twice");
    seen[(size_t)n] = true;
    out.push_back(n);
  }
  return out;
}

IntsArg readIntsArg(const InferContext& ctx, const std::string& attr, size_t input, int64_t inputSince) {
  IntsArg arg;
  if (ctx.opset < inputSince) {
    auto it = ctx.node.attrs.find(attr);
    if (it == ctx.node.attrs.end()) return arg;
    arg.present = arg.known = arg.lengthKnown = true;
    arg.values = it->second.ints;
    if (it->second.kind == Attribute::Kind::Int) arg.values = {it->second.i};
    arg.knownLength = arg.values.size();
    return arg;
  }
  if (!ctx.hasInput(input)) return arg;
  arg.present = true;
  if (auto v = ctx.intValues(input)) {
    arg.known = arg.lengthKnown = true;
    arg.values = *v;
    arg.knownLength = arg.values.size();
    return arg;
  }
  const SymShape& s = ctx.inputShapes[input];
  if (s.hasRank && s.rank() == 1 && s.dims[0].isKnown()) {
    arg.lengthKnown = true;
    arg.knownLength = (size_t)s.dims[0].value;
  } else if (s.hasRank && s.rank() == 0) {
    arg.lengthKnown = true;
    arg.knownLength = 1;
  }
  return arg;
}

std::vector<double> tensorToDoubles(const Tensor& t) {
  int64_t n = t.numel();
  std::vector<double> out((size_t)n);
  for (int64_t i = 0; i < n; i++) out[(size_t)i] = t.scalarAsDouble(i);
  return out;
}

namespace {
template <class T>
T saturate(double v) {
  if (std::isnan(v)) return T(0);
  if (v <= (double)std::numeric_limits<T>::lowest()) return std::numeric_limits<T>::lowest();
  if (v >= (double)std::numeric_limits<T>::max()) return std::numeric_limits<T>::max();
  return (T)v;
}
}  // namespace

void storeDouble(Tensor& t, int64_t i, double v) {
  KILN_CHECK(i >= 0 && i < t.numel(), Internal, "storeDouble: element index out of range");
  switch (t.dtype) {
    case DType::Float32: t.ptr<float>()[i] = (float)v; return;
    case DType::Float64: t.ptr<double>()[i] = v; return;
    case DType::Float16: t.ptr<uint16_t>()[i] = floatToHalf((float)v); return;
    case DType::BFloat16: t.ptr<uint16_t>()[i] = floatToBfloat16((float)v); return;
    case DType::Int8: t.ptr<int8_t>()[i] = saturate<int8_t>(v); return;
    case DType::UInt8: t.ptr<uint8_t>()[i] = saturate<uint8_t>(v); return;
    case DType::Int16: t.ptr<int16_t>()[i] = saturate<int16_t>(v); return;
    case DType::UInt16: t.ptr<uint16_t>()[i] = saturate<uint16_t>(v); return;
    case DType::Int32: t.ptr<int32_t>()[i] = saturate<int32_t>(v); return;
    case DType::UInt32: t.ptr<uint32_t>()[i] = saturate<uint32_t>(v); return;
    case DType::Int64: t.ptr<int64_t>()[i] = saturate<int64_t>(v); return;
    case DType::UInt64: t.ptr<uint64_t>()[i] = saturate<uint64_t>(v); return;
    case DType::Bool: t.ptr<uint8_t>()[i] = v != 0; return;
    case DType::String:
    case DType::Undefined:
      break;
  }
  fail(ErrorCode::InvalidArgument, std::string("cannot store a number in a tensor of type ") + dtypeName(t.dtype));
}

std::optional<std::vector<double>> knownFloats(const InferContext& ctx, size_t i) {
  if (!ctx.hasInput(i) || i >= ctx.inputValues.size() || ctx.inputValues[i] == nullptr) return std::nullopt;
  const Tensor* t = ctx.inputValues[i];
  if (!isFloating(t->dtype)) return std::nullopt;
  return tensorToDoubles(*t);
}

int64_t inferNumel(InferContext& ctx, const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) ctx.error("shape " + shapeToString(shape) + " has a negative dimension");
    if (__builtin_mul_overflow(n, d, &n) || n > (int64_t(1) << 40)) ctx.error("shape " + shapeToString(shape) + " is too large");
  }
  return n;
}

void expectInput(InferContext& ctx, size_t i, const char* name) {
  if (!ctx.hasInput(i)) ctx.error(std::string("required input '") + name + "' is missing");
}

namespace {
// A product of dims as a constant times a multiset of symbols; `opaque` when some dim is an unnamed
// unknown (which equals nothing, not even itself).
struct Monomial {
  int64_t constant = 1;
  std::map<std::string, int> symbols;
  bool opaque = false;
};

Monomial toMonomial(InferContext& ctx, const std::vector<Dim>& dims) {
  Monomial m;
  for (const Dim& d : dims) {
    if (d.isKnown()) {
      if (d.value != 0 && m.constant > INT64_MAX / d.value) ctx.error("dimension product overflows");
      m.constant *= d.value;
    } else if (d.symbol.empty()) {
      m.opaque = true;
    } else {
      m.symbols[d.symbol]++;
    }
  }
  return m;
}
}  // namespace

Dim dimProduct(InferContext& ctx, const std::vector<Dim>& dims) {
  Monomial m = toMonomial(ctx, dims);
  if (m.constant == 0) return Dim::known(0);
  if (m.opaque) return ctx.freshDim();
  if (m.symbols.empty()) return Dim::known(m.constant);
  if (m.constant == 1 && m.symbols.size() == 1 && m.symbols.begin()->second == 1) {
    return Dim::sym(m.symbols.begin()->first);
  }
  return ctx.freshDim();
}

std::optional<Dim> dimQuotient(InferContext& ctx, const std::vector<Dim>& numerator,
                               const std::vector<Dim>& denominator) {
  Monomial n = toMonomial(ctx, numerator), d = toMonomial(ctx, denominator);
  if (n.opaque || d.opaque) return std::nullopt;
  for (auto& [sym, count] : d.symbols) {
    auto it = n.symbols.find(sym);
    if (it == n.symbols.end() || it->second < count) return std::nullopt;
    it->second -= count;
    if (it->second == 0) n.symbols.erase(it);
  }
  if (d.constant == 0) return std::nullopt;  // 0 elements: the quotient is undetermined
  if (n.constant == 0) return Dim::known(0);
  if (n.constant % d.constant != 0) {
    // With symbols left the division might still come out even at run time (batch*6 / 4).
    if (!n.symbols.empty()) return std::nullopt;
    ctx.error("cannot divide " + std::to_string(n.constant) + " elements into parts of " +
              std::to_string(d.constant));
  }
  int64_t c = n.constant / d.constant;
  if (n.symbols.empty()) return Dim::known(c);
  if (c == 1 && n.symbols.size() == 1 && n.symbols.begin()->second == 1) return Dim::sym(n.symbols.begin()->first);
  return std::nullopt;
}

}  // namespace kiln
