// KServe v2 datatypes and the engine's dtypes are the same set under different names.
import type { DType } from "@kiln/engine";

export const V2_TO_DTYPE = {
  BOOL: "bool",
  UINT8: "uint8",
  UINT16: "uint16",
  UINT32: "uint32",
  UINT64: "uint64",
  INT8: "int8",
  INT16: "int16",
  INT32: "int32",
  INT64: "int64",
  FP16: "float16",
  BF16: "bfloat16",
  FP32: "float32",
  FP64: "float64",
  BYTES: "string",
} as const satisfies Record<string, DType>;

export type V2Datatype = keyof typeof V2_TO_DTYPE;

export const DTYPE_TO_V2 = Object.fromEntries(Object.entries(V2_TO_DTYPE).map(([v2, dtype]) => [dtype, v2])) as Record<
  DType,
  V2Datatype
>;

export function isV2Datatype(value: unknown): value is V2Datatype {
  return typeof value === "string" && Object.hasOwn(V2_TO_DTYPE, value);
}

/** Bytes per element in the binary tensor format; BYTES elements are length-prefixed instead. */
export const ELEMENT_BYTES: Record<Exclude<DType, "string">, number> = {
  bool: 1,
  uint8: 1,
  int8: 1,
  uint16: 2,
  int16: 2,
  float16: 2,
  bfloat16: 2,
  uint32: 4,
  int32: 4,
  float32: 4,
  uint64: 8,
  int64: 8,
  float64: 8,
};

export type NumericDType = Exclude<DType, "string">;
