// Plain-object description of an ONNX model: what the generators build and what encode.ts writes.
// Field meanings follow onnx.proto; only the parts a generated model needs are modelled.

/** TensorProto.DataType codes. */
export enum DataType {
  FLOAT = 1,
  UINT8 = 2,
  INT8 = 3,
  UINT16 = 4,
  INT16 = 5,
  INT32 = 6,
  INT64 = 7,
  BOOL = 9,
  FLOAT16 = 10,
  DOUBLE = 11,
  UINT32 = 12,
  UINT64 = 13,
}

/** One dimension of a value's shape: a fixed size or a symbolic name such as "batch". */
export type Dim = number | string;

export interface TensorSpec {
  name: string;
  dataType: DataType;
  dims: readonly number[];
  /** Little-endian element bytes, written as raw_data. */
  raw: Uint8Array;
}

export type AttributeValue =
  | { type: "float"; value: number }
  | { type: "int"; value: number | bigint }
  | { type: "string"; value: string }
  | { type: "tensor"; value: TensorSpec }
  | { type: "floats"; value: readonly number[] }
  | { type: "ints"; value: readonly (number | bigint)[] }
  | { type: "strings"; value: readonly string[] };

export interface NodeSpec {
  name: string;
  opType: string;
  domain: string;
  inputs: readonly string[];
  outputs: readonly string[];
  attributes: Readonly<Record<string, AttributeValue>>;
}

export interface ValueInfoSpec {
  name: string;
  dataType: DataType;
  shape: readonly Dim[];
}

export interface GraphSpec {
  name: string;
  nodes: NodeSpec[];
  initializers: TensorSpec[];
  inputs: ValueInfoSpec[];
  outputs: ValueInfoSpec[];
}

export interface ModelSpec {
  irVersion: number;
  opsets: Readonly<Record<string, number>>;
  producerName: string;
  producerVersion: string;
  docString?: string;
  graph: GraphSpec;
}

/** The IR version the ONNX release that introduced each default-domain opset wrote. */
export function irVersionForOpset(opset: number): number {
  if (opset <= 12) return 7;
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  if (opset <= 22) return 10;
  return 11;
}

export function bytesPerElement(type: DataType): number {
  switch (type) {
    case DataType.FLOAT:
    case DataType.INT32:
    case DataType.UINT32:
      return 4;
    case DataType.UINT8:
    case DataType.INT8:
    case DataType.BOOL:
      return 1;
    case DataType.UINT16:
    case DataType.INT16:
    case DataType.FLOAT16:
      return 2;
    case DataType.INT64:
    case DataType.DOUBLE:
    case DataType.UINT64:
      return 8;
  }
}
