// Wire bytes -> onnxproto structs. Field numbers follow onnx/onnx.proto; unknown fields (newer ONNX
// versions, doc strings, metadata we do not use) are skipped whatever their wire type.
#include "onnx/proto.h"
#include "onnx/wire.h"

namespace kiln {
namespace onnxproto {

namespace {

void parseTensor(WireReader r, TensorProto& t);
void parseGraph(WireReader r, GraphProto& g);

void parseStringPair(WireReader r, std::pair<std::string, std::string>& kv) {
  while (r.next()) {
    switch (r.field()) {
      case 1: kv.first = r.string(); break;
      case 2: kv.second = r.string(); break;
      default: r.skip();
    }
  }
}

void parseSegment(WireReader r) {
  while (r.next()) r.skip();
}

void parseTensor(WireReader r, TensorProto& t) {
  while (r.next()) {
    switch (r.field()) {
      case 1: r.appendInt64s(t.dims); break;
      case 2: t.dataType = r.int32(); break;
      case 3:
        parseSegment(r.message("TensorProto.Segment"));
        t.hasSegment = true;
        break;
      case 4: r.appendFloats(t.floatData); break;
      case 5: r.appendInt32s(t.int32Data); break;
      case 6: t.stringData.push_back(r.bytes()); break;
      case 7: r.appendInt64s(t.int64Data); break;
      case 8: t.name = r.string(); break;
      case 9:
        t.rawData = r.bytes();
        t.hasRawData = true;
        break;
      case 10: r.appendDoubles(t.doubleData); break;
      case 11: r.appendUint64s(t.uint64Data); break;
      case 13:
        t.externalData.emplace_back();
        parseStringPair(r.message("StringStringEntryProto"), t.externalData.back());
        break;
      case 14: t.dataLocation = r.int32(); break;
      default: r.skip();
    }
  }
}

void parseSparseTensor(WireReader r, SparseTensorProto& s) {
  while (r.next()) {
    switch (r.field()) {
      case 1:
        parseTensor(r.message("SparseTensorProto.values"), s.values);
        s.hasValues = true;
        break;
      case 2:
        parseTensor(r.message("SparseTensorProto.indices"), s.indices);
        s.hasIndices = true;
        break;
      case 3: r.appendInt64s(s.dims); break;
      default: r.skip();
    }
  }
}

void parseDim(WireReader r, DimProto& d) {
  while (r.next()) {
    switch (r.field()) {
      case 1:
        d.kind = DimProto::Kind::Value;
        d.value = r.int64();
        break;
      case 2:
        d.kind = DimProto::Kind::Param;
        d.param = r.string();
        break;
      default: r.skip();
    }
  }
}

void parseShape(WireReader r, TypeProto& t) {
  t.hasShape = true;
  while (r.next()) {
    if (r.field() == 1) {
      t.dims.emplace_back();
      parseDim(r.message("TensorShapeProto.Dimension"), t.dims.back());
    } else {
      r.skip();
    }
  }
}

void parseTensorType(WireReader r, TypeProto& t) {
  while (r.next()) {
    switch (r.field()) {
      case 1: t.elemType = r.int32(); break;
      case 2: parseShape(r.message("TensorShapeProto"), t); break;
      default: r.skip();
    }
  }
}

void parseType(WireReader r, TypeProto& t) {
  while (r.next()) {
    switch (r.field()) {
      case 1:
        t.kind = TypeProto::Kind::Tensor;
        parseTensorType(r.message("TypeProto.Tensor"), t);
        break;
      // Non-tensor kinds are recorded, not decoded: Kiln rejects them with a clear message.
      case 4: t.kind = TypeProto::Kind::Sequence; r.skip(); break;
      case 5: t.kind = TypeProto::Kind::Map; r.skip(); break;
      case 7: t.kind = TypeProto::Kind::Opaque; r.skip(); break;
      case 8: t.kind = TypeProto::Kind::SparseTensor; r.skip(); break;
      case 9: t.kind = TypeProto::Kind::Optional; r.skip(); break;
      default: r.skip();
    }
  }
}

void parseValueInfo(WireReader r, ValueInfoProto& v) {
  while (r.next()) {
    switch (r.field()) {
      case 1: v.name = r.string(); break;
      case 2:
        v.hasType = true;
        parseType(r.message("TypeProto"), v.type);
        break;
      default: r.skip();
    }
  }
}

void parseAttribute(WireReader r, AttributeProto& a) {
  while (r.next()) {
    switch (r.field()) {
      case 1: a.name = r.string(); break;
      case 21: a.refAttrName = r.string(); break;
      case 20: a.type = r.int32(); break;
      case 2:
        a.f = r.float32();
        a.hasF = true;
        break;
      case 3:
        a.i = r.int64();
        a.hasI = true;
        break;
      case 4:
        a.s = r.string();
        a.hasS = true;
        break;
      case 5:
        a.t = std::make_shared<TensorProto>();
        parseTensor(r.message("TensorProto"), *a.t);
        a.hasT = true;
        break;
      case 6:
        a.g = std::make_shared<GraphProto>();
        parseGraph(r.message("GraphProto"), *a.g);
        a.hasG = true;
        break;
      case 22:
        a.sparse = std::make_shared<SparseTensorProto>();
        parseSparseTensor(r.message("SparseTensorProto"), *a.sparse);
        a.hasSparse = true;
        break;
      case 14:
        a.hasTp = true;
        r.skip();
        break;
      case 7: r.appendFloats(a.floats); break;
      case 8: r.appendInt64s(a.ints); break;
      case 9: a.strings.push_back(r.string()); break;
      case 10:
        a.tensors.push_back(std::make_shared<TensorProto>());
        parseTensor(r.message("TensorProto"), *a.tensors.back());
        break;
      case 11:
        a.graphs.push_back(std::make_shared<GraphProto>());
        parseGraph(r.message("GraphProto"), *a.graphs.back());
        break;
      case 23:
        a.sparseTensors.push_back(std::make_shared<SparseTensorProto>());
        parseSparseTensor(r.message("SparseTensorProto"), *a.sparseTensors.back());
        break;
      case 15:
        a.typeProtos++;
        r.skip();
        break;
      default: r.skip();
    }
  }
}

void parseNode(WireReader r, NodeProto& n) {
  while (r.next()) {
    switch (r.field()) {
      case 1: n.inputs.push_back(r.string()); break;
      case 2: n.outputs.push_back(r.string()); break;
      case 3: n.name = r.string(); break;
      case 4: n.opType = r.string(); break;
      case 7: n.domain = r.string(); break;
      case 8: n.overload = r.string(); break;
      case 5:
        n.attributes.emplace_back();
        parseAttribute(r.message("AttributeProto"), n.attributes.back());
        break;
      default: r.skip();
    }
  }
}

void parseGraph(WireReader r, GraphProto& g) {
  while (r.next()) {
    switch (r.field()) {
      case 1:
        g.nodes.emplace_back();
        parseNode(r.message("NodeProto"), g.nodes.back());
        break;
      case 2: g.name = r.string(); break;
      case 5:
        g.initializers.emplace_back();
        parseTensor(r.message("TensorProto"), g.initializers.back());
        break;
      case 15:
        g.sparseInitializers.emplace_back();
        parseSparseTensor(r.message("SparseTensorProto"), g.sparseInitializers.back());
        break;
      case 11:
        g.inputs.emplace_back();
        parseValueInfo(r.message("ValueInfoProto"), g.inputs.back());
        break;
      case 12:
        g.outputs.emplace_back();
        parseValueInfo(r.message("ValueInfoProto"), g.outputs.back());
        break;
      case 13:
        g.valueInfo.emplace_back();
        parseValueInfo(r.message("ValueInfoProto"), g.valueInfo.back());
        break;
      default: r.skip();
    }
  }
}

void parseOpset(WireReader r, OpsetProto& o) {
  while (r.next()) {
    switch (r.field()) {
      case 1: o.domain = r.string(); break;
      case 2:
        o.version = r.int64();
        o.hasVersion = true;
        break;
      default: r.skip();
    }
  }
}

void parseFunction(WireReader r, FunctionProto& f) {
  while (r.next()) {
    switch (r.field()) {
      case 1: f.name = r.string(); break;
      case 4: f.inputs.push_back(r.string()); break;
      case 5: f.outputs.push_back(r.string()); break;
      case 6: f.attributeNames.push_back(r.string()); break;
      case 11:
        f.attributeDefaults.emplace_back();
        parseAttribute(r.message("AttributeProto"), f.attributeDefaults.back());
        break;
      case 7:
        f.nodes.emplace_back();
        parseNode(r.message("NodeProto"), f.nodes.back());
        break;
      case 9:
        f.opsets.emplace_back();
        parseOpset(r.message("OperatorSetIdProto"), f.opsets.back());
        break;
      case 10: f.domain = r.string(); break;
      case 13: f.overload = r.string(); break;
      default: r.skip();
    }
  }
}

}  // namespace

ModelProto parseModelProto(const uint8_t* data, size_t size) {
  ModelProto m;
  WireReader r(data, size, "ModelProto");
  while (r.next()) {
    switch (r.field()) {
      case 1:
        m.irVersion = r.int64();
        m.hasIrVersion = true;
        break;
      case 8:
        m.opsets.emplace_back();
        parseOpset(r.message("OperatorSetIdProto"), m.opsets.back());
        break;
      case 2: m.producerName = r.string(); break;
      case 3: m.producerVersion = r.string(); break;
      case 4: m.domain = r.string(); break;
      case 5: m.modelVersion = r.int64(); break;
      case 6: m.docString = r.string(); break;
      case 7:
        // A repeated singular message field merges in protobuf; a second graph is simply hostile.
        if (m.hasGraph) r.fail("ModelProto has more than one graph");
        parseGraph(r.message("GraphProto"), m.graph);
        m.hasGraph = true;
        break;
      case 14:
        m.metadataProps.emplace_back();
        parseStringPair(r.message("StringStringEntryProto"), m.metadataProps.back());
        break;
      case 25:
        m.functions.emplace_back();
        parseFunction(r.message("FunctionProto"), m.functions.back());
        break;
      default: r.skip();
    }
  }
  return m;
}

TensorProto parseTensorProto(const uint8_t* data, size_t size) {
  TensorProto t;
  parseTensor(WireReader(data, size, "TensorProto"), t);
  return t;
}

}  // namespace onnxproto
}  // namespace kiln
