// Serializes a ModelSpec to ONNX protobuf bytes. Field numbers are those of onnx.proto.
// Repeated scalars (dims, ints, floats) are written unpacked, as the proto2 onnx.proto and so
// PyTorch's exporter write them; `packed: true` writes them packed to exercise readers' other path.
import { ProtoWriter } from "../proto/wire.ts";
import type { AttributeValue, Dim, GraphSpec, ModelSpec, NodeSpec, TensorSpec, ValueInfoSpec } from "./types.ts";

export interface EncodeOptions {
  packed?: boolean;
}

enum AttributeType {
  FLOAT = 1,
  INT = 2,
  STRING = 3,
  TENSOR = 4,
  FLOATS = 6,
  INTS = 7,
  STRINGS = 8,
}

export function encodeModel(model: ModelSpec, options: EncodeOptions = {}): Uint8Array[] {
  const packed = options.packed ?? false;
  const w = new ProtoWriter();
  w.int64(1, model.irVersion);
  w.string(2, model.producerName);
  w.string(3, model.producerVersion);
  if (model.docString) w.string(6, model.docString);
  w.message(7, encodeGraph(model.graph, packed));
  for (const [domain, version] of Object.entries(model.opsets)) {
    const opset = new ProtoWriter();
    if (domain !== "") opset.string(1, domain);
    opset.int64(2, version);
    w.message(8, opset);
  }
  return w.finish();
}

/** Concatenates encodeModel's chunks (convenient for small models and for in-memory sessions). */
export function encodeModelBytes(model: ModelSpec, options: EncodeOptions = {}): Uint8Array {
  const chunks = encodeModel(model, options);
  let total = 0;
  for (const c of chunks) total += c.byteLength;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.byteLength;
  }
  return out;
}

function encodeGraph(graph: GraphSpec, packed: boolean): ProtoWriter {
  const w = new ProtoWriter();
  for (const node of graph.nodes) w.message(1, encodeNode(node, packed));
  w.string(2, graph.name);
  for (const t of graph.initializers) w.message(5, encodeTensor(t, packed));
  for (const v of graph.inputs) w.message(11, encodeValueInfo(v));
  for (const v of graph.outputs) w.message(12, encodeValueInfo(v));
  return w;
}

function encodeNode(node: NodeSpec, packed: boolean): ProtoWriter {
  const w = new ProtoWriter();
  // An omitted optional input is the empty string, as in ONNX.
  for (const input of node.inputs) w.string(1, input);
  for (const output of node.outputs) w.string(2, output);
  w.string(3, node.name);
  w.string(4, node.opType);
  for (const [name, value] of Object.entries(node.attributes)) w.message(5, encodeAttribute(name, value, packed));
  if (node.domain !== "") w.string(7, node.domain);
  return w;
}

function encodeAttribute(name: string, attr: AttributeValue, packed: boolean): ProtoWriter {
  const w = new ProtoWriter();
  w.string(1, name);
  switch (attr.type) {
    case "float":
      w.float(2, attr.value);
      w.int64(20, AttributeType.FLOAT);
      break;
    case "int":
      w.int64(3, attr.value);
      w.int64(20, AttributeType.INT);
      break;
    case "string":
      w.string(4, attr.value);
      w.int64(20, AttributeType.STRING);
      break;
    case "tensor":
      w.message(5, encodeTensor(attr.value, packed));
      w.int64(20, AttributeType.TENSOR);
      break;
    case "floats":
      if (packed) w.packedFloat(7, attr.value);
      else for (const f of attr.value) w.float(7, f);
      w.int64(20, AttributeType.FLOATS);
      break;
    case "ints":
      if (packed) w.packedInt64(8, attr.value);
      else for (const i of attr.value) w.int64(8, i);
      w.int64(20, AttributeType.INTS);
      break;
    case "strings":
      for (const s of attr.value) w.string(9, s);
      w.int64(20, AttributeType.STRINGS);
      break;
  }
  return w;
}

function encodeTensor(t: TensorSpec, packed: boolean): ProtoWriter {
  const w = new ProtoWriter();
  if (packed) w.packedInt64(1, t.dims);
  else for (const d of t.dims) w.int64(1, d);
  w.int64(2, t.dataType);
  w.string(8, t.name);
  w.bytes(9, t.raw);
  return w;
}

function encodeValueInfo(v: ValueInfoSpec): ProtoWriter {
  const shape = new ProtoWriter();
  for (const d of v.shape) shape.message(1, encodeDim(d));
  const tensorType = new ProtoWriter().int64(1, v.dataType).message(2, shape);
  const type = new ProtoWriter().message(1, tensorType);
  return new ProtoWriter().string(1, v.name).message(2, type);
}

function encodeDim(d: Dim): ProtoWriter {
  const w = new ProtoWriter();
  if (typeof d === "number") w.int64(1, d);
  else w.string(2, d);
  return w;
}
