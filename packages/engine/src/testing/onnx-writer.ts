// A small ONNX *writer* for tests: describe a model in code, get real ONNX (ModelProto) bytes.
//
//   const m = new OnnxModel({ opset: 17 });
//   m.input("x", "float32", ["batch", 4]);
//   m.initializer("w", "float32", [4, 3], new Float32Array(12));
//   m.node("MatMul", ["x", "w"], ["y"]);
//   m.output("y", "float32", ["batch", 3]);
//   const bytes = m.toBytes();
//
// Subgraphs (If/Loop bodies): build an OnnxGraph and pass it with attr.graph("then_branch", g).
// Only what models need is covered: the protobuf wire format of ModelProto, GraphProto, NodeProto,
// AttributeProto, TensorProto (raw_data), ValueInfoProto and OperatorSetIdProto.

/** ONNX TensorProto.DataType codes. */
export const ONNX_DTYPE = {
  float32: 1,
  uint8: 2,
  int8: 3,
  uint16: 4,
  int16: 5,
  int32: 6,
  int64: 7,
  string: 8,
  bool: 9,
  float16: 10,
  float64: 11,
  uint32: 12,
  uint64: 13,
  bfloat16: 16,
} as const;
export type OnnxDType = keyof typeof ONNX_DTYPE;

/** A declared dim: a size, a symbol ("batch"), or null for an unknown dim. */
export type OnnxDim = number | string | null;

class ProtoWriter {
  private chunks: number[] = [];

  varint(value: number | bigint): this {
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      this.chunks.push(Number((v & 0x7fn) | 0x80n));
      v >>= 7n;
    }
    this.chunks.push(Number(v));
    return this;
  }
  tag(field: number, wire: number): this {
    return this.varint((field << 3) | wire);
  }
  int(field: number, value: number | bigint): this {
    return this.tag(field, 0).varint(value);
  }
  float(field: number, value: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.tag(field, 5);
    this.chunks.push(...b);
    return this;
  }
  bytes(field: number, value: Uint8Array): this {
    this.tag(field, 2).varint(value.length);
    for (const byte of value) this.chunks.push(byte);
    return this;
  }
  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }
  message(field: number, w: ProtoWriter): this {
    return this.bytes(field, w.finish());
  }
  packedInts(field: number, values: readonly (number | bigint)[]): this {
    const inner = new ProtoWriter();
    for (const v of values) inner.varint(v);
    return this.message(field, inner);
  }
  packedFloats(field: number, values: readonly number[]): this {
    const b = new Uint8Array(values.length * 4);
    const view = new DataView(b.buffer);
    values.forEach((v, i) => view.setFloat32(i * 4, v, true));
    return this.bytes(field, b);
  }
  finish(): Uint8Array {
    return Uint8Array.from(this.chunks);
  }
}

type TypedArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array;

/** A serialized TensorProto with raw_data (little-endian, as on every platform Node runs on). */
export function tensorProto(name: string, dtype: OnnxDType, dims: readonly number[], data: TypedArray | string[]): Uint8Array {
  const t = new ProtoWriter().packedInts(1, dims).int(2, ONNX_DTYPE[dtype]);
  if (name) t.string(8, name);
  if (Array.isArray(data)) {
    for (const s of data) t.string(6, s);
  } else {
    t.bytes(9, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  return t.finish();
}

/** Attribute builders (AttributeProto). */
export const attr = {
  int: (name: string, value: number | bigint) => new ProtoWriter().string(1, name).int(20, 2).int(3, value),
  float: (name: string, value: number) => new ProtoWriter().string(1, name).int(20, 1).float(2, value),
  string: (name: string, value: string) => new ProtoWriter().string(1, name).int(20, 3).string(4, value),
  ints: (name: string, values: readonly (number | bigint)[]) =>
    new ProtoWriter().string(1, name).int(20, 7).packedInts(8, values),
  floats: (name: string, values: readonly number[]) =>
    new ProtoWriter().string(1, name).int(20, 6).packedFloats(7, values),
  strings: (name: string, values: readonly string[]) => {
    const w = new ProtoWriter().string(1, name).int(20, 8);
    for (const v of values) w.string(9, v);
    return w;
  },
  tensor: (name: string, tensor: Uint8Array) => new ProtoWriter().string(1, name).int(20, 4).bytes(5, tensor),
  graph: (name: string, graph: OnnxGraph) => new ProtoWriter().string(1, name).int(20, 5).message(6, graph.writer()),
};
export type OnnxAttribute = ReturnType<(typeof attr)["int"]>;

function valueInfo(name: string, dtype: OnnxDType, dims: readonly OnnxDim[] | null): ProtoWriter {
  const tensorType = new ProtoWriter().int(1, ONNX_DTYPE[dtype]);
  if (dims !== null) {
    const shape = new ProtoWriter();
    for (const d of dims) {
      const dim = new ProtoWriter();
      if (typeof d === "number") dim.int(1, d);
      else if (typeof d === "string") dim.string(2, d);
      shape.message(1, dim);
    }
    tensorType.message(2, shape);
  }
  return new ProtoWriter().string(1, name).message(2, new ProtoWriter().message(1, tensorType));
}

/** A GraphProto: the main graph of a model, or a subgraph body. */
export class OnnxGraph {
  private nodes: ProtoWriter[] = [];
  private initializers: Uint8Array[] = [];
  private inputs: ProtoWriter[] = [];
  private outputs: ProtoWriter[] = [];
  private nodeCount = 0;

  constructor(readonly name = "graph") {}

  input(name: string, dtype: OnnxDType, dims: readonly OnnxDim[] | null): this {
    this.inputs.push(valueInfo(name, dtype, dims));
    return this;
  }
  output(name: string, dtype: OnnxDType, dims: readonly OnnxDim[] | null): this {
    this.outputs.push(valueInfo(name, dtype, dims));
    return this;
  }
  initializer(name: string, dtype: OnnxDType, dims: readonly number[], data: TypedArray | string[]): this {
    this.initializers.push(tensorProto(name, dtype, dims, data));
    return this;
  }
  /** Adds a node; its name defaults to "<op>_<n>". Use "" in `inputs` for an omitted optional input. */
  node(
    op: string,
    inputs: readonly string[],
    outputs: readonly string[],
    options: { name?: string; domain?: string; attrs?: OnnxAttribute[] } = {},
  ): this {
    const n = new ProtoWriter();
    for (const i of inputs) n.string(1, i);
    for (const o of outputs) n.string(2, o);
    n.string(3, options.name ?? `${op}_${this.nodeCount}`);
    n.string(4, op);
    for (const a of options.attrs ?? []) n.message(5, a);
    if (options.domain) n.string(7, options.domain);
    this.nodes.push(n);
    this.nodeCount++;
    return this;
  }
  /** @internal */
  writer(): ProtoWriter {
    const g = new ProtoWriter();
    for (const n of this.nodes) g.message(1, n);
    g.string(2, this.name);
    for (const t of this.initializers) g.bytes(5, t);
    for (const i of this.inputs) g.message(11, i);
    for (const o of this.outputs) g.message(12, o);
    return g;
  }
}

/** A ModelProto around an OnnxGraph. */
export class OnnxModel extends OnnxGraph {
  private opsets: Map<string, number>;

  constructor(options: { opset?: number; name?: string; irVersion?: number; producer?: string } = {}) {
    super(options.name ?? "main");
    this.opsets = new Map([["", options.opset ?? 17]]);
    this.irVersion = options.irVersion ?? 8;
    this.producer = options.producer ?? "kiln-engine-tests";
  }
  readonly irVersion: number;
  readonly producer: string;

  opset(domain: string, version: number): this {
    this.opsets.set(domain, version);
    return this;
  }

  toBytes(): Uint8Array {
    const m = new ProtoWriter().int(1, this.irVersion).string(2, this.producer).message(7, this.writer());
    for (const [domain, version] of this.opsets) m.message(8, new ProtoWriter().string(1, domain).int(2, version));
    return m.finish();
  }
}
