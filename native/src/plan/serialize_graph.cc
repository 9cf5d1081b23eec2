#include "plan/serialize_graph.h"

#include <string>

#include "core/dtype.h"
#include "core/error.h"
#include "plan/serialize.h"

namespace kiln {
namespace {

// Limits that no real model reaches; past them the bytes are corrupt or hostile.
constexpr int kMaxGraphDepth = 32;
constexpr uint32_t kMaxRank = 64;
constexpr int64_t kMaxElements = int64_t(1) << 48;

uint64_t alignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

void writeSymShape(ByteWriter& out, const SymShape& s) {
  out.u8(s.hasRank ? 1 : 0);
  out.u32(static_cast<uint32_t>(s.dims.size()));
  for (const Dim& d : s.dims) {
    out.i64(d.value);
    if (!d.isKnown()) out.str(d.symbol);
  }
}

SymShape readSymShape(ByteReader& in) {
  SymShape s;
  s.hasRank = in.u8("shape rank flag") != 0;
  uint32_t rank = in.count("shape rank", 8);
  if (rank > kMaxRank) in.fail("shape rank", "rank " + std::to_string(rank) + " exceeds " + std::to_string(kMaxRank));
  if (!s.hasRank && rank != 0) in.fail("shape rank", "dims given for a shape of unknown rank");
  s.dims.reserve(rank);
  for (uint32_t i = 0; i < rank; ++i) {
    Dim d;
    d.value = in.i64("dim");
    if (d.value < 0) {
      d.value = -1;
      d.symbol = in.str("dim symbol");
    }
    s.dims.push_back(std::move(d));
  }
  return s;
}

void writeTensor(ByteWriter& out, const Tensor& t, WeightWriter& weights) {
  out.i32(static_cast<int32_t>(t.dtype));
  out.u32(static_cast<uint32_t>(t.shape.size()));
  for (int64_t d : t.shape) out.i64(d);
  if (t.dtype == DType::String) {
    // Strings are rare (labels, vocabularies) and have no fixed width: they live inline.
    int64_t n = t.numel();
    const std::string* s = t.ptr<std::string>();
    for (int64_t i = 0; i < n; ++i) out.str(s[i]);
    return;
  }
  out.u64(weights.add(t));
  out.u64(t.byteSize());
}

std::shared_ptr<Tensor> readTensor(ByteReader& in, const WeightBlob& weights) {
  int32_t code = in.i32("tensor dtype");
  if (!isKnownDType(code) || code == 0) in.fail("tensor dtype", "unknown dtype code " + std::to_string(code));
  auto t = std::make_shared<Tensor>();
  t->dtype = static_cast<DType>(code);
  uint32_t rank = in.count("tensor rank", 8);
  if (rank > kMaxRank) in.fail("tensor rank", "rank " + std::to_string(rank) + " exceeds " + std::to_string(kMaxRank));
  int64_t numel = 1;
  for (uint32_t i = 0; i < rank; ++i) {
    int64_t d = in.i64("tensor dim");
    if (d < 0 || (d > 0 && numel > kMaxElements / d)) in.fail("tensor dim", "invalid dim " + std::to_string(d));
    numel *= d;
    t->shape.push_back(d);
  }
  if (t->dtype == DType::String) {
    if (static_cast<uint64_t>(numel) * 4 > in.remaining()) in.fail("string tensor", "more strings than bytes left");
    Tensor owned = Tensor::allocate(DType::String, t->shape);
    std::string* s = owned.ptr<std::string>();
    for (int64_t i = 0; i < numel; ++i) s[i] = in.str("string element");
    *t = std::move(owned);
    return t;
  }
  uint64_t offset = in.u64("tensor offset");
  uint64_t bytes = in.u64("tensor bytes");
  if (bytes != static_cast<uint64_t>(numel) * dtypeSize(t->dtype))
    in.fail("tensor bytes", std::to_string(bytes) + " bytes do not match shape " + shapeToString(t->shape) +
                                " of " + dtypeName(t->dtype));
  if (offset > weights.size || bytes > weights.size - offset)
    in.fail("tensor offset", "tensor [" + std::to_string(offset) + ", +" + std::to_string(bytes) +
                                 ") lies outside the " + std::to_string(weights.size) + "-byte weights section");
  // A view into the shared blob: the aliasing constructor keeps the blob alive as long as any
  // tensor of any context still refers to it.
  t->data = bytes == 0 ? nullptr : weights.base.get() + offset;
  t->holder = std::shared_ptr<void>(weights.base, weights.base.get());
  return t;
}

void writeAttribute(ByteWriter& out, const Attribute& a, WeightWriter& weights) {
  out.u8(static_cast<uint8_t>(a.kind));
  switch (a.kind) {
    case Attribute::Kind::Float: out.f32(a.f); return;
    case Attribute::Kind::Int: out.i64(a.i); return;
    case Attribute::Kind::String: out.str(a.s); return;
    case Attribute::Kind::Tensor:
      out.u8(a.t ? 1 : 0);
      if (a.t) writeTensor(out, *a.t, weights);
      return;
    case Attribute::Kind::Graph:
      out.u8(a.g ? 1 : 0);
      if (a.g) writeGraph(out, *a.g, weights);
      return;
    case Attribute::Kind::Floats:
      out.u32(static_cast<uint32_t>(a.floats.size()));
      for (float f : a.floats) out.f32(f);
      return;
    case Attribute::Kind::Ints:
      out.u32(static_cast<uint32_t>(a.ints.size()));
      for (int64_t i : a.ints) out.i64(i);
      return;
    case Attribute::Kind::Strings:
      out.u32(static_cast<uint32_t>(a.strings.size()));
      for (const std::string& s : a.strings) out.str(s);
      return;
    case Attribute::Kind::Tensors:
      out.u32(static_cast<uint32_t>(a.tensors.size()));
      for (const auto& t : a.tensors) {
        out.u8(t ? 1 : 0);
        if (t) writeTensor(out, *t, weights);
      }
      return;
    case Attribute::Kind::Graphs:
      out.u32(static_cast<uint32_t>(a.graphs.size()));
      for (const auto& g : a.graphs) {
        out.u8(g ? 1 : 0);
        if (g) writeGraph(out, *g, weights);
      }
      return;
  }
}

Attribute readAttribute(ByteReader& in, const WeightBlob& weights, const Graph* owner, int depth) {
  Attribute a;
  uint8_t kind = in.u8("attribute kind");
  if (kind > static_cast<uint8_t>(Attribute::Kind::Graphs)) in.fail("attribute kind", "unknown kind " + std::to_string(kind));
  a.kind = static_cast<Attribute::Kind>(kind);
  switch (a.kind) {
    case Attribute::Kind::Float: a.f = in.f32("float attribute"); break;
    case Attribute::Kind::Int: a.i = in.i64("int attribute"); break;
    case Attribute::Kind::String: a.s = in.str("string attribute"); break;
    case Attribute::Kind::Tensor:
      if (in.u8("tensor attribute flag")) a.t = readTensor(in, weights);
      break;
    case Attribute::Kind::Graph:
      if (in.u8("graph attribute flag")) a.g = readGraph(in, weights, owner, depth + 1);
      break;
    case Attribute::Kind::Floats: {
      uint32_t n = in.count("floats attribute", 4);
      for (uint32_t i = 0; i < n; ++i) a.floats.push_back(in.f32("float"));
      break;
    }
    case Attribute::Kind::Ints: {
      uint32_t n = in.count("ints attribute", 8);
      for (uint32_t i = 0; i < n; ++i) a.ints.push_back(in.i64("int"));
      break;
    }
    case Attribute::Kind::Strings: {
      uint32_t n = in.count("strings attribute", 4);
      for (uint32_t i = 0; i < n; ++i) a.strings.push_back(in.str("string"));
      break;
    }
    case Attribute::Kind::Tensors: {
      uint32_t n = in.count("tensors attribute", 1);
      for (uint32_t i = 0; i < n; ++i)
        a.tensors.push_back(in.u8("tensor flag") ? readTensor(in, weights) : nullptr);
      break;
    }
    case Attribute::Kind::Graphs: {
      uint32_t n = in.count("graphs attribute", 1);
      for (uint32_t i = 0; i < n; ++i)
        a.graphs.push_back(in.u8("graph flag") ? readGraph(in, weights, owner, depth + 1) : nullptr);
      break;
    }
  }
  return a;
}

void writeIds(ByteWriter& out, const std::vector<ValueId>& ids) {
  out.u32(static_cast<uint32_t>(ids.size()));
  for (ValueId v : ids) out.i32(v);
}

std::vector<ValueId> readIds(ByteReader& in, const char* field, size_t numValues, bool allowOmitted) {
  uint32_t n = in.count(field, 4);
  std::vector<ValueId> ids(n);
  for (uint32_t i = 0; i < n; ++i) {
    ValueId v = in.i32(field);
    bool ok = (v >= 0 && static_cast<size_t>(v) < numValues) || (allowOmitted && v == kNoValue);
    if (!ok) in.fail(field, "value id " + std::to_string(v) + " out of range (" + std::to_string(numValues) + " values)");
    ids[i] = v;
  }
  return ids;
}

// The invariants the runtime relies on, checked once at load: every id in range (readIds), each
// node output produced by exactly that node, and nodes in topological order. Values that no node
// produces and that are neither inputs nor constants are captures from an enclosing graph; only
// subgraphs may read those.
void validateGraph(ByteReader& in, const Graph& g, bool isSubgraph) {
  std::vector<char> available(g.values.size(), 0);
  for (ValueId v : g.inputs) available[v] = 1;
  for (size_t i = 0; i < g.values.size(); ++i) {
    const Value& value = g.values[i];
    if (value.constant) available[i] = 1;
    if (value.producer < -1 || value.producer >= static_cast<int32_t>(g.nodes.size()))
      in.fail("value producer", "value '" + value.name + "' has producer " + std::to_string(value.producer));
    if (value.producer == -1 && !value.constant && isSubgraph) available[i] = 1;
  }
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    const Node& node = g.nodes[n];
    for (ValueId v : node.inputs) {
      if (v != kNoValue && !available[v])
        in.fail("node input", "node '" + node.name + "' reads value '" + g.values[v].name +
                                  "' before it is produced");
    }
    for (ValueId v : node.outputs) {
      if (v == kNoValue) continue;
      if (g.values[v].producer != static_cast<int32_t>(n) || available[v])
        in.fail("node output", "node '" + node.name + "' output '" + g.values[v].name +
                                   "' has an inconsistent producer");
      available[v] = 1;
    }
  }
  for (ValueId v : g.outputs) {
    if (!available[v]) in.fail("graph output", "output '" + g.values[v].name + "' is never produced");
  }
}

}  // namespace

uint64_t WeightWriter::add(const Tensor& t) {
  size_t bytes = t.byteSize();
  if (bytes == 0) return 0;
  auto key = std::make_pair(static_cast<const void*>(t.data), bytes);
  auto it = offsets_.find(key);
  if (it != offsets_.end()) return it->second;
  uint64_t offset = alignUp(size_, kWeightAlignment);
  offsets_[key] = offset;
  tensors_.emplace_back(&t, offset);
  size_ = offset + bytes;
  return offset;
}

void WeightWriter::writeBlob(ByteWriter& out) const {
  uint64_t pos = 0;
  for (const auto& [tensor, offset] : tensors_) {
    out.zeros(offset - pos);
    out.raw(tensor->data, tensor->byteSize());
    pos = offset + tensor->byteSize();
  }
}

void writeGraph(ByteWriter& out, const Graph& g, WeightWriter& weights) {
  out.str(g.name);
  out.u32(static_cast<uint32_t>(g.opsets.size()));
  for (const auto& [domain, version] : g.opsets) {
    out.str(domain);
    out.i64(version);
  }
  out.u32(static_cast<uint32_t>(g.values.size()));
  for (const Value& v : g.values) {
    out.str(v.name);
    out.i32(static_cast<int32_t>(v.dtype));
    writeSymShape(out, v.shape);
    out.i32(v.producer);
    out.u8(v.constant ? 1 : 0);
    if (v.constant) writeTensor(out, *v.constant, weights);
  }
  out.u32(static_cast<uint32_t>(g.nodes.size()));
  for (const Node& n : g.nodes) {
    KILN_CHECK(!n.dead, Internal, "serializing a graph with dead node '" + n.name + "' (compact() first)");
    out.str(n.name);
    out.str(n.opType);
    out.str(n.domain);
    writeIds(out, n.inputs);
    writeIds(out, n.outputs);
    out.u32(static_cast<uint32_t>(n.attrs.size()));
    for (const auto& [name, attr] : n.attrs) {
      out.str(name);
      writeAttribute(out, attr, weights);
    }
  }
  writeIds(out, g.inputs);
  writeIds(out, g.outputs);
}

std::shared_ptr<Graph> readGraph(ByteReader& in, const WeightBlob& weights, const Graph* parent, int depth) {
  if (depth > kMaxGraphDepth) in.fail("graph", "subgraphs nested deeper than " + std::to_string(kMaxGraphDepth));
  auto g = std::make_shared<Graph>();
  g->parent = parent;
  g->name = in.str("graph name");
  uint32_t numOpsets = in.count("opset count", 12);
  for (uint32_t i = 0; i < numOpsets; ++i) {
    std::string domain = in.str("opset domain");
    g->opsets[domain] = in.i64("opset version");
  }
  uint32_t numValues = in.count("value count", 14);
  g->values.resize(numValues);
  for (Value& v : g->values) {
    v.name = in.str("value name");
    int32_t code = in.i32("value dtype");
    // 0 (Undefined) is a value whose type only the run decides, e.g. inside a loop body whose
    // state types build-time inference could not pin down.
    if (code != 0 && !isKnownDType(code)) in.fail("value dtype", "unknown dtype code " + std::to_string(code));
    v.dtype = static_cast<DType>(code);
    v.shape = readSymShape(in);
    v.producer = in.i32("value producer");
    if (in.u8("value constant flag")) v.constant = readTensor(in, weights);
  }
  uint32_t numNodes = in.count("node count", 28);
  g->nodes.resize(numNodes);
  for (Node& n : g->nodes) {
    n.name = in.str("node name");
    n.opType = in.str("node op type");
    n.domain = in.str("node domain");
    n.inputs = readIds(in, "node inputs", numValues, true);
    n.outputs = readIds(in, "node outputs", numValues, true);
    uint32_t numAttrs = in.count("attribute count", 5);
    for (uint32_t i = 0; i < numAttrs; ++i) {
      std::string name = in.str("attribute name");
      n.attrs[name] = readAttribute(in, weights, g.get(), depth);
    }
  }
  g->inputs = readIds(in, "graph inputs", numValues, false);
  g->outputs = readIds(in, "graph outputs", numValues, false);
  validateGraph(in, *g, parent != nullptr);
  return g;
}

}  // namespace kiln
