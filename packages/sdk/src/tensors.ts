// KServe v2 tensors on the client: datatypes, their typed arrays, and the binary layout.

export type Datatype =
  | "BOOL"
  | "UINT8"
  | "UINT16"
  | "UINT32"
  | "UINT64"
  | "INT8"
  | "INT16"
  | "INT32"
  | "INT64"
  | "FP16"
  | "BF16"
  | "FP32"
  | "FP64"
  | "BYTES";

export interface DatatypeData {
  BOOL: Uint8Array;
  UINT8: Uint8Array;
  UINT16: Uint16Array;
  UINT32: Uint32Array;
  UINT64: BigUint64Array;
  INT8: Int8Array;
  INT16: Int16Array;
  INT32: Int32Array;
  INT64: BigInt64Array;
  FP16: Uint16Array;
  BF16: Uint16Array;
  FP32: Float32Array;
  FP64: Float64Array;
  BYTES: string[];
}

export interface Tensor<D extends Datatype = Datatype> {
  datatype: D;
  shape: number[];
  data: DatatypeData[D];
}

/** An input as given to infer(): a typed tensor, or plain numbers/booleans/strings with a datatype. */
export type TensorInput =
  | Tensor
  | { datatype: Datatype; shape: number[]; data: readonly (number | boolean | string | bigint)[] };

const ARRAYS = {
  BOOL: Uint8Array,
  UINT8: Uint8Array,
  UINT16: Uint16Array,
  UINT32: Uint32Array,
  UINT64: BigUint64Array,
  INT8: Int8Array,
  INT16: Int16Array,
  INT32: Int32Array,
  INT64: BigInt64Array,
  FP16: Uint16Array,
  BF16: Uint16Array,
  FP32: Float32Array,
  FP64: Float64Array,
} as const;

/** Raw little-endian bytes (BYTES: 4-byte length before each element). */
export function toBytes(tensor: TensorInput): Uint8Array {
  if (tensor.datatype === "BYTES") {
    const parts = (tensor.data as readonly string[]).map((s) => new TextEncoder().encode(String(s)));
    const out = new Uint8Array(parts.reduce((n, p) => n + 4 + p.byteLength, 0));
    const view = new DataView(out.buffer);
    let offset = 0;
    for (const p of parts) {
      view.setUint32(offset, p.byteLength, true);
      out.set(p, offset + 4);
      offset += 4 + p.byteLength;
    }
    return out;
  }
  const Ctor = ARRAYS[tensor.datatype];
  const typed =
    tensor.data instanceof Ctor
      ? tensor.data
      : Ctor === BigInt64Array || Ctor === BigUint64Array
        ? new Ctor((tensor.data as readonly (number | bigint)[]).map((v) => BigInt(v)))
        : new (Ctor as typeof Float32Array)((tensor.data as readonly (number | boolean)[]).map(Number));
  return new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
}

export function fromBytes<D extends Datatype>(datatype: D, bytes: Uint8Array): DatatypeData[D] {
  if (datatype === "BYTES") {
    const out: string[] = [];
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let offset = 0; offset + 4 <= bytes.byteLength; ) {
      const n = view.getUint32(offset, true);
      out.push(new TextDecoder().decode(bytes.subarray(offset + 4, offset + 4 + n)));
      offset += 4 + n;
    }
    return out as DatatypeData[D];
  }
  const copy = bytes.slice();
  return new ARRAYS[datatype as Exclude<Datatype, "BYTES">](copy.buffer) as DatatypeData[D];
}

export function fromJson<D extends Datatype>(datatype: D, data: readonly unknown[]): DatatypeData[D] {
  const flat = (data as unknown[]).flat(Number.POSITIVE_INFINITY);
  if (datatype === "BYTES") return flat.map(String) as DatatypeData[D];
  const Ctor = ARRAYS[datatype as Exclude<Datatype, "BYTES">];
  if (Ctor === BigInt64Array || Ctor === BigUint64Array)
    return new Ctor(flat.map((v) => BigInt(v as number))) as DatatypeData[D];
  return new (Ctor as typeof Float32Array)(flat.map((v) => Number(v))) as DatatypeData[D];
}

/** JSON form of the elements (64-bit integers as numbers). */
export function toJson(tensor: TensorInput): unknown[] {
  if (tensor.datatype === "BOOL") return Array.from(tensor.data as ArrayLike<number | boolean>, Boolean);
  return Array.from(tensor.data as ArrayLike<unknown>, (v) => (typeof v === "bigint" ? Number(v) : v));
}
