// Conversions between a tensor's elements and its two wire forms: JSON arrays and raw little-endian bytes.
import type { DType, DTypeData } from "@kiln/engine";
import { typedArrayOf } from "@kiln/engine/tensor";
import { badRequest } from "../errors.ts";
import { ELEMENT_BYTES, type NumericDType } from "./datatypes.ts";
import { fromBFloat16Bits, fromFloat16Bits, toBFloat16Bits, toFloat16Bits } from "./half.ts";

const INT_RANGES: Partial<Record<DType, [number, number]>> = {
  int8: [-128, 127],
  int16: [-32768, 32767],
  int32: [-2147483648, 2147483647],
  uint8: [0, 255],
  uint16: [0, 65535],
  uint32: [0, 4294967295],
  bool: [0, 1],
};

/** Flattens KServe's row-major data, which may be flat or nested to the tensor's rank. */
function flatten(data: unknown[]): unknown[] {
  if (!data.some(Array.isArray)) return data;
  const out: unknown[] = [];
  const stack: unknown[] = [data];
  // Iterative depth-first walk: a hostile, deeply nested body cannot overflow the call stack.
  while (stack.length) {
    const value = stack.pop();
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push(value[i]);
      continue;
    }
    out.push(value);
  }
  return out;
}

// A function, not a closure per call: tsx (esbuild keepNames) defines the name of every named closure it creates.
function notA(name: string, values: unknown[], index: number, what: string) {
  return badRequest(`input '${name}': element ${index} (${JSON.stringify(values[index])}) is not ${what}`);
}

/** Elements of a JSON `data` array as the engine's container for `dtype`; errors name the tensor. */
export function fromJsonData<D extends DType>(name: string, dtype: D, raw: unknown): DTypeData[D] {
  if (!Array.isArray(raw)) throw badRequest(`input '${name}': "data" must be an array`);
  const values = flatten(raw);
  if (dtype === "string") {
    return values.map((v, i) => {
      if (typeof v !== "string") throw notA(name, values, i, "a string");
      return v;
    }) as DTypeData[D];
  }
  const numeric = dtype as NumericDType;
  const out = new (typedArrayOf(numeric))(values.length);
  if (numeric === "int64" || numeric === "uint64") {
    const big = out as BigInt64Array | BigUint64Array;
    const [lo, hi] = numeric === "int64" ? [-(2n ** 63n), 2n ** 63n - 1n] : [0n, 2n ** 64n - 1n];
    values.forEach((v, i) => {
      let b: bigint;
      if (typeof v === "number" && Number.isInteger(v)) b = BigInt(v);
      else if (typeof v === "string" && /^-?\d+$/.test(v)) b = BigInt(v);
      else throw notA(name, values, i, `an integer`);
      if (b < lo || b > hi) throw notA(name, values, i, `within ${numeric} range`);
      big[i] = b;
    });
    return out as DTypeData[D];
  }
  const flat = out as Exclude<typeof out, BigInt64Array | BigUint64Array>;
  const range = INT_RANGES[numeric];
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    let n: number;
    if (numeric === "bool" && typeof v === "boolean") n = v ? 1 : 0;
    else if (typeof v === "number") n = v;
    else throw notA(name, values, i, numeric === "bool" ? "a boolean" : "a number");
    if (range) {
      if (!Number.isInteger(n) || n < range[0] || n > range[1])
        throw notA(name, values, i, `an integer within ${numeric} range`);
      flat[i] = n;
    } else if (numeric === "float16") flat[i] = toFloat16Bits(n);
    else if (numeric === "bfloat16") flat[i] = toBFloat16Bits(n);
    else flat[i] = n;
  }
  return out as DTypeData[D];
}

/** Elements as JSON values: 64-bit integers become numbers (exact up to 2^53), halves become floats. */
export function toJsonData(dtype: DType, data: DTypeData[DType]): unknown[] {
  switch (dtype) {
    case "string":
      return data as string[];
    case "bool":
      return Array.from(data as Uint8Array, (v) => v !== 0);
    case "int64":
    case "uint64":
      return Array.from(data as BigInt64Array, (v) => Number(v));
    case "float16":
      return Array.from(data as Uint16Array, fromFloat16Bits);
    case "bfloat16":
      return Array.from(data as Uint16Array, fromBFloat16Bits);
    case "float32":
    case "float64":
    case "int8":
    case "int16":
    case "int32":
    case "uint8":
    case "uint16":
    case "uint32":
      return Array.from(data as Float32Array);
  }
}

/** Decodes `count` elements from the binary tensor extension's raw bytes. */
export function fromBinaryData<D extends DType>(
  name: string,
  dtype: D,
  bytes: Uint8Array,
  count: number,
): DTypeData[D] {
  if (dtype === "string") {
    const out: string[] = [];
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let offset = 0;
    const decoder = new TextDecoder();
    while (offset < bytes.byteLength) {
      if (offset + 4 > bytes.byteLength) throw badRequest(`input '${name}': BYTES element ${out.length} is truncated`);
      const length = view.getUint32(offset, true);
      offset += 4;
      if (offset + length > bytes.byteLength) {
        throw badRequest(
          `input '${name}': BYTES element ${out.length} claims ${length} bytes past the end of its data`,
        );
      }
      out.push(decoder.decode(bytes.subarray(offset, offset + length)));
      offset += length;
    }
    if (out.length !== count) {
      throw badRequest(`input '${name}': binary data holds ${out.length} BYTES elements but the shape needs ${count}`);
    }
    return out as DTypeData[D];
  }
  const numeric = dtype as NumericDType;
  const expected = count * ELEMENT_BYTES[numeric];
  if (bytes.byteLength !== expected) {
    throw badRequest(
      `input '${name}': binary_data_size is ${bytes.byteLength} bytes but shape and datatype need ${expected}`,
    );
  }
  // Copy into a fresh buffer: the body slice may be unaligned for the element size.
  const copy = new Uint8Array(expected);
  copy.set(bytes);
  return new (typedArrayOf(numeric))(copy.buffer) as DTypeData[D];
}

/** Raw little-endian bytes of the elements (BYTES: 4-byte length prefix per element). */
export function toBinaryData(dtype: DType, data: DTypeData[DType]): Uint8Array {
  if (dtype === "string") {
    const encoded = (data as string[]).map((s) => new TextEncoder().encode(s));
    const out = new Uint8Array(encoded.reduce((n, e) => n + 4 + e.byteLength, 0));
    const view = new DataView(out.buffer);
    let offset = 0;
    for (const e of encoded) {
      view.setUint32(offset, e.byteLength, true);
      out.set(e, offset + 4);
      offset += 4 + e.byteLength;
    }
    return out;
  }
  const typed = data as Exclude<DTypeData[DType], string[]>;
  return new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
}
