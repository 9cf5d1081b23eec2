// A small ONNX *writer* for tests: build models in code and serialize them to real ONNX bytes, then
// feed those bytes to readModel / buildEngine. Header-only.
//
//   onnx_builder::ModelBuilder m;                       // ir_version 8, opset ai.onnx 17
//   m.input("x", DType::Float32, {"batch", 3});
//   m.initializer("w", DType::Float32, {3}, std::vector<float>{1, 2, 3});
//   m.node("Mul", {"x", "w"}, {"y"});
//   m.node("Softmax", {"y"}, {"z"}, {Attr::i("axis", -1)});
//   m.output("z", DType::Float32, {"batch", 3});
//   std::vector<uint8_t> bytes = m.bytes();
//
// Subgraphs: GraphBuilder body; body.input(...); body.node(...); body.output(...);
//            m.node("If", {"cond"}, {"out"}, {Attr::graph("then_branch", thenBody), ...}).
// The low-level Writer and tensorProto() let hostile tests produce malformed fields on purpose.
#pragma once
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/dtype.h"

namespace onnx_builder {

using kiln::DType;

// Protobuf wire-format writer.
class Writer {
 public:
  void varint(uint64_t v) {
    while (v >= 0x80) {
      buf_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    buf_.push_back(static_cast<char>(v));
  }
  void tag(uint32_t field, uint32_t wireType) { varint((static_cast<uint64_t>(field) << 3) | wireType); }
  void int64Field(uint32_t field, int64_t v) {
    tag(field, 0);
    varint(static_cast<uint64_t>(v));
  }
  void floatField(uint32_t field, float v) {
    tag(field, 5);
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    for (int i = 0; i < 4; i++) buf_.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
  }
  void doubleField(uint32_t field, double v) {
    tag(field, 1);
    uint64_t bits;
    std::memcpy(&bits, &v, 8);
    for (int i = 0; i < 8; i++) buf_.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
  }
  void bytesField(uint32_t field, const std::string& bytes) {
    tag(field, 2);
    varint(bytes.size());
    buf_ += bytes;
  }
  void messageField(uint32_t field, const Writer& w) { bytesField(field, w.str()); }
  void packedInt64s(uint32_t field, const std::vector<int64_t>& vs) {
    Writer p;
    for (int64_t v : vs) p.varint(static_cast<uint64_t>(v));
    bytesField(field, p.str());
  }
  void packedFloats(uint32_t field, const std::vector<float>& vs) {
    std::string b(vs.size() * 4, '\0');
    if (!vs.empty()) std::memcpy(&b[0], vs.data(), b.size());
    bytesField(field, b);
  }
  void raw(const std::string& bytes) { buf_ += bytes; }
  const std::string& str() const { return buf_; }

 private:
  std::string buf_;
};

// A dim of a declared shape: a size (3) or a symbol ("batch"); DimSpec() is an unknown dim.
struct DimSpec {
  int64_t value = -1;
  std::string param;
  bool unknown = false;
  DimSpec() : unknown(true) {}
  DimSpec(int v) : value(v) {}
  DimSpec(long v) : value(v) {}
  DimSpec(long long v) : value(v) {}
  DimSpec(const char* p) : param(p) {}
  DimSpec(std::string p) : param(std::move(p)) {}
};
using Dims = std::vector<DimSpec>;

inline std::string typeProto(DType dtype, const Dims& dims, bool hasShape = true) {
  Writer shape;
  for (const DimSpec& d : dims) {
    Writer dim;
    if (!d.unknown && d.param.empty()) dim.int64Field(1, d.value);
    if (!d.param.empty()) dim.bytesField(2, d.param);
    shape.messageField(1, dim);
  }
  Writer tensor;
  tensor.int64Field(1, static_cast<int64_t>(dtype));
  if (hasShape) tensor.messageField(2, shape);
  Writer type;
  type.messageField(1, tensor);
  return type.str();
}

inline std::string valueInfoProto(const std::string& name, DType dtype, const Dims& dims, bool hasShape = true) {
  Writer v;
  v.bytesField(1, name);
  if (dtype != DType::Undefined) v.bytesField(2, typeProto(dtype, dims, hasShape));
  return v.str();
}

// TensorProto with raw_data (the common encoding). `raw` is the little-endian element bytes.
inline std::string tensorProto(const std::string& name, DType dtype, const std::vector<int64_t>& dims,
                               const std::string& raw) {
  Writer t;
  t.packedInt64s(1, dims);
  t.int64Field(2, static_cast<int64_t>(dtype));
  if (!name.empty()) t.bytesField(8, name);
  t.bytesField(9, raw);
  return t.str();
}

template <class T>
std::string rawBytes(const std::vector<T>& values) {
  std::string b(values.size() * sizeof(T), '\0');
  if (!values.empty()) std::memcpy(&b[0], values.data(), b.size());
  return b;
}

// TensorProto referencing external data (data_location = EXTERNAL).
inline std::string externalTensorProto(const std::string& name, DType dtype, const std::vector<int64_t>& dims,
                                       const std::string& location, int64_t offset = -1, int64_t length = -1) {
  Writer t;
  t.packedInt64s(1, dims);
  t.int64Field(2, static_cast<int64_t>(dtype));
  t.bytesField(8, name);
  auto entry = [&](const std::string& k, const std::string& v) {
    Writer e;
    e.bytesField(1, k);
    e.bytesField(2, v);
    t.messageField(13, e);
  };
  entry("location", location);
  if (offset >= 0) entry("offset", std::to_string(offset));
  if (length >= 0) entry("length", std::to_string(length));
  t.int64Field(14, 1);
  return t.str();
}

class GraphBuilder;

struct Attr {
  std::string encoded;  // a serialized AttributeProto

  static Attr make(const std::string& name, int type, const std::function<void(Writer&)>& body) {
    Writer w;
    w.bytesField(1, name);
    w.int64Field(20, type);
    body(w);
    return Attr{w.str()};
  }
  static Attr i(const std::string& name, int64_t v) { return make(name, 2, [&](Writer& w) { w.int64Field(3, v); }); }
  static Attr f(const std::string& name, float v) { return make(name, 1, [&](Writer& w) { w.floatField(2, v); }); }
  static Attr s(const std::string& name, const std::string& v) {
    return make(name, 3, [&](Writer& w) { w.bytesField(4, v); });
  }
  static Attr ints(const std::string& name, const std::vector<int64_t>& v) {
    return make(name, 7, [&](Writer& w) { w.packedInt64s(8, v); });
  }
  static Attr floats(const std::string& name, const std::vector<float>& v) {
    return make(name, 6, [&](Writer& w) { w.packedFloats(7, v); });
  }
  static Attr strings(const std::string& name, const std::vector<std::string>& v) {
    return make(name, 8, [&](Writer& w) {
      for (const auto& s : v) w.bytesField(9, s);
    });
  }
  // `tensor` is a serialized TensorProto (see tensorProto()).
  static Attr tensor(const std::string& name, const std::string& tensor) {
    return make(name, 4, [&](Writer& w) { w.bytesField(5, tensor); });
  }
  static inline Attr graph(const std::string& name, const GraphBuilder& g);
  static inline Attr graphs(const std::string& name, const std::vector<const GraphBuilder*>& gs);
  // A function-body attribute that takes the caller's attribute `ref`.
  static Attr ref(const std::string& name, int type, const std::string& ref) {
    return make(name, type, [&](Writer& w) { w.bytesField(21, ref); });
  }
};

class GraphBuilder {
 public:
  explicit GraphBuilder(std::string name = "g") : name_(std::move(name)) {}

  GraphBuilder& input(const std::string& name, DType dtype, const Dims& dims, bool hasShape = true) {
    inputs_.push_back(valueInfoProto(name, dtype, dims, hasShape));
    return *this;
  }
  GraphBuilder& output(const std::string& name, DType dtype = DType::Undefined, const Dims& dims = {},
                       bool hasShape = true) {
    outputs_.push_back(valueInfoProto(name, dtype, dims, hasShape && dtype != DType::Undefined));
    return *this;
  }
  GraphBuilder& valueInfo(const std::string& name, DType dtype, const Dims& dims) {
    valueInfo_.push_back(valueInfoProto(name, dtype, dims));
    return *this;
  }
  template <class T>
  GraphBuilder& initializer(const std::string& name, DType dtype, const std::vector<int64_t>& dims,
                            const std::vector<T>& values) {
    initializers_.push_back(tensorProto(name, dtype, dims, rawBytes(values)));
    return *this;
  }
  // A pre-serialized TensorProto (for malformed or external tensors).
  GraphBuilder& initializerProto(const std::string& tensor) {
    initializers_.push_back(tensor);
    return *this;
  }
  GraphBuilder& node(const std::string& op, const std::vector<std::string>& inputs,
                     const std::vector<std::string>& outputs, const std::vector<Attr>& attrs = {},
                     const std::string& name = "", const std::string& domain = "") {
    Writer n;
    for (const auto& s : inputs) n.bytesField(1, s);
    for (const auto& s : outputs) n.bytesField(2, s);
    if (!name.empty()) n.bytesField(3, name);
    n.bytesField(4, op);
    for (const auto& a : attrs) n.bytesField(5, a.encoded);
    if (!domain.empty()) n.bytesField(7, domain);
    nodes_.push_back(n.str());
    return *this;
  }
  // A 0-input Constant node producing `name` from a serialized TensorProto.
  GraphBuilder& constant(const std::string& name, const std::string& tensor) {
    return node("Constant", {}, {name}, {Attr::tensor("value", tensor)}, name + "_const");
  }

  std::string bytes() const {
    Writer g;
    for (const auto& n : nodes_) g.bytesField(1, n);
    g.bytesField(2, name_);
    for (const auto& t : initializers_) g.bytesField(5, t);
    for (const auto& v : inputs_) g.bytesField(11, v);
    for (const auto& v : outputs_) g.bytesField(12, v);
    for (const auto& v : valueInfo_) g.bytesField(13, v);
    return g.str();
  }

 protected:
  std::string name_;
  std::vector<std::string> nodes_, initializers_, inputs_, outputs_, valueInfo_;
};

inline Attr Attr::graph(const std::string& name, const GraphBuilder& g) {
  return make(name, 5, [&](Writer& w) { w.bytesField(6, g.bytes()); });
}
inline Attr Attr::graphs(const std::string& name, const std::vector<const GraphBuilder*>& gs) {
  return make(name, 10, [&](Writer& w) {
    for (const auto* g : gs) w.bytesField(11, g->bytes());
  });
}

// A model-local function (FunctionProto).
struct FunctionBuilder {
  std::string name, domain;
  std::vector<std::string> inputs, outputs, attributes;
  std::vector<std::string> nodes;  // serialized NodeProtos (use GraphBuilder-like node())
  std::vector<std::pair<std::string, int64_t>> opsets = {{"", 17}};

  FunctionBuilder& node(const std::string& op, const std::vector<std::string>& in, const std::vector<std::string>& out,
                        const std::vector<Attr>& attrs = {}, const std::string& nodeDomain = "") {
    Writer n;
    for (const auto& s : in) n.bytesField(1, s);
    for (const auto& s : out) n.bytesField(2, s);
    n.bytesField(4, op);
    for (const auto& a : attrs) n.bytesField(5, a.encoded);
    if (!nodeDomain.empty()) n.bytesField(7, nodeDomain);
    nodes.push_back(n.str());
    return *this;
  }
  std::string bytes() const {
    Writer f;
    f.bytesField(1, name);
    for (const auto& s : inputs) f.bytesField(4, s);
    for (const auto& s : outputs) f.bytesField(5, s);
    for (const auto& s : attributes) f.bytesField(6, s);
    for (const auto& n : nodes) f.bytesField(7, n);
    for (const auto& [d, v] : opsets) {
      Writer o;
      o.bytesField(1, d);
      o.int64Field(2, v);
      f.messageField(9, o);
    }
    f.bytesField(10, domain);
    return f.str();
  }
};

class ModelBuilder : public GraphBuilder {
 public:
  explicit ModelBuilder(std::string graphName = "main") : GraphBuilder(std::move(graphName)) {}

  int64_t irVersion = 8;
  std::string producer = "kiln-tests";
  std::vector<std::pair<std::string, int64_t>> opsets = {{"", 17}};
  std::vector<FunctionBuilder> functions;

  ModelBuilder& opset(const std::string& domain, int64_t version) {
    for (auto& o : opsets) {
      if (o.first == domain) {
        o.second = version;
        return *this;
      }
    }
    opsets.emplace_back(domain, version);
    return *this;
  }

  std::string serialize() const {
    Writer m;
    m.int64Field(1, irVersion);
    m.bytesField(2, producer);
    m.bytesField(7, GraphBuilder::bytes());
    for (const auto& [d, v] : opsets) {
      Writer o;
      o.bytesField(1, d);
      o.int64Field(2, v);
      m.messageField(8, o);
    }
    for (const auto& f : functions) m.bytesField(25, f.bytes());
    return m.str();
  }
  std::vector<uint8_t> bytes() const {
    std::string s = serialize();
    return std::vector<uint8_t>(s.begin(), s.end());
  }
};

inline std::vector<uint8_t> toBytes(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

}  // namespace onnx_builder
