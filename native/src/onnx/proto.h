// A plain-struct mirror of the parts of onnx.proto the reader uses, decoded from wire bytes by
// proto_parse.cc. The model reader works in two steps: bytes -> these structs (pure syntax, strict
// bounds checks), then structs -> Graph (semantics: names, scopes, tensors, functions). Large
// payloads (raw_data, string_data) are views into the caller's buffer, valid during readModel.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln {
namespace onnxproto {

// ONNX TensorProto.DataLocation.
constexpr int32_t kLocationDefault = 0;
constexpr int32_t kLocationExternal = 1;

struct TensorProto {
  std::vector<int64_t> dims;
  int32_t dataType = 0;
  std::string name;
  bool hasSegment = false;
  bool hasRawData = false;
  std::string_view rawData;
  std::vector<float> floatData;
  std::vector<int32_t> int32Data;
  std::vector<std::string_view> stringData;
  std::vector<int64_t> int64Data;
  std::vector<double> doubleData;
  std::vector<uint64_t> uint64Data;
  std::vector<std::pair<std::string, std::string>> externalData;
  int32_t dataLocation = kLocationDefault;
};

struct SparseTensorProto {
  TensorProto values;
  TensorProto indices;
  std::vector<int64_t> dims;
  bool hasValues = false, hasIndices = false;
};

struct DimProto {
  enum class Kind { Unknown, Value, Param };
  Kind kind = Kind::Unknown;
  int64_t value = 0;
  std::string param;
};

// TypeProto, flattened: only tensor types are usable by Kiln; other kinds are recorded so the reader
// can say which one it met.
struct TypeProto {
  enum class Kind { None, Tensor, Sequence, Map, Optional, SparseTensor, Opaque };
  Kind kind = Kind::None;
  int32_t elemType = 0;
  bool hasShape = false;
  std::vector<DimProto> dims;
};

struct ValueInfoProto {
  std::string name;
  bool hasType = false;
  TypeProto type;
};

struct GraphProto;

// AttributeProto.AttributeType codes.
enum AttrType : int32_t {
  kAttrUndefined = 0, kAttrFloat = 1, kAttrInt = 2, kAttrString = 3, kAttrTensor = 4, kAttrGraph = 5,
  kAttrFloats = 6, kAttrInts = 7, kAttrStrings = 8, kAttrTensors = 9, kAttrGraphs = 10,
  kAttrSparseTensor = 11, kAttrSparseTensors = 12, kAttrTypeProto = 13, kAttrTypeProtos = 14,
};

struct AttributeProto {
  std::string name;
  std::string refAttrName;  // set inside function bodies: take the caller's attribute of this name
  int32_t type = kAttrUndefined;
  bool hasF = false, hasI = false, hasS = false, hasT = false, hasG = false, hasSparse = false, hasTp = false;
  float f = 0;
  int64_t i = 0;
  std::string s;
  std::shared_ptr<TensorProto> t;
  std::shared_ptr<GraphProto> g;
  std::shared_ptr<SparseTensorProto> sparse;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
  std::vector<std::shared_ptr<TensorProto>> tensors;
  std::vector<std::shared_ptr<GraphProto>> graphs;
  std::vector<std::shared_ptr<SparseTensorProto>> sparseTensors;
  size_t typeProtos = 0;  // count only: TYPE_PROTO attributes carry no data Kiln uses
};

struct NodeProto {
  std::vector<std::string> inputs, outputs;
  std::string name, opType, domain, overload;
  std::vector<AttributeProto> attributes;
};

struct GraphProto {
  std::string name;
  std::vector<NodeProto> nodes;
  std::vector<TensorProto> initializers;
  std::vector<SparseTensorProto> sparseInitializers;
  std::vector<ValueInfoProto> inputs, outputs, valueInfo;
};

struct OpsetProto {
  std::string domain;
  int64_t version = 0;
  bool hasVersion = false;
};

struct FunctionProto {
  std::string name, domain, overload;
  std::vector<std::string> inputs, outputs;
  std::vector<std::string> attributeNames;      // attributes without defaults
  std::vector<AttributeProto> attributeDefaults;  // attributes with defaults
  std::vector<NodeProto> nodes;
  std::vector<OpsetProto> opsets;
};

struct ModelProto {
  int64_t irVersion = 0;
  bool hasIrVersion = false;
  std::vector<OpsetProto> opsets;
  std::string producerName, producerVersion, domain, docString;
  int64_t modelVersion = 0;
  bool hasGraph = false;
  GraphProto graph;
  std::vector<std::pair<std::string, std::string>> metadataProps;
  std::vector<FunctionProto> functions;
};

// Decoders: throw KilnError(InvalidModel) on malformed bytes. `base` is the offset of data[0] in
// the file, for error messages.
ModelProto parseModelProto(const uint8_t* data, size_t size);
TensorProto parseTensorProto(const uint8_t* data, size_t size);

}  // namespace onnxproto
}  // namespace kiln
