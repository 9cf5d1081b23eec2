// Small helpers to make and check tensors: the typed array for each dtype, element counts. Also
// exported alone as @kiln/engine/tensor, so the gateway (through @kiln/serving) uses them without
// loading the engine's build and runtime modules.
import { KilnEngineError } from "./errors.ts";
import type { DType, DTypeData, Tensor } from "./types.ts";

const ARRAYS = {
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array,
  bfloat16: Uint16Array,
  int8: Int8Array,
  int16: Int16Array,
  int32: Int32Array,
  int64: BigInt64Array,
  uint8: Uint8Array,
  uint16: Uint16Array,
  uint32: Uint32Array,
  uint64: BigUint64Array,
  bool: Uint8Array,
} as const;

export const DTYPES = [...Object.keys(ARRAYS), "string"] as DType[];

export function isDType(value: unknown): value is DType {
  return typeof value === "string" && (DTYPES as string[]).includes(value);
}

/** Number of elements of a shape (1 for a scalar). */
export function numel(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

/** The typed-array class that holds a numeric dtype's elements (float16 and bfloat16 as raw bits). */
export function typedArrayOf(dtype: Exclude<DType, "string">) {
  return ARRAYS[dtype];
}

/** A zero-filled container for `length` elements of `dtype`. */
export function allocate<D extends DType>(dtype: D, length: number): DTypeData[D] {
  if (dtype === "string") return new Array<string>(length).fill("") as DTypeData[D];
  const Ctor = ARRAYS[dtype as Exclude<DType, "string">];
  return new Ctor(length) as DTypeData[D];
}

/**
 * A tensor of `dtype` and `shape`: zeros when `data` is absent, otherwise `data` (a typed array of
 * the right kind, or plain numbers/bigints/strings that are converted).
 */
export function tensor<D extends DType>(
  dtype: D,
  shape: number[],
  data?: DTypeData[D] | ArrayLike<number> | ArrayLike<bigint> | string[],
): Tensor<D> {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new KilnEngineError("INVALID_ARGUMENT", `shape [${shape.join(",")}] has a dim that is not a non-negative integer`);
    }
  }
  const n = numel(shape);
  const out = allocate(dtype, n);
  if (data !== undefined) {
    if (data.length !== n) {
      throw new KilnEngineError(
        "INVALID_ARGUMENT",
        `shape [${shape.join(",")}] has ${n} elements but data has ${data.length}`,
      );
    }
    if (dtype === "string") {
      for (let i = 0; i < n; i++) (out as string[])[i] = String((data as ArrayLike<unknown>)[i]);
    } else if (out instanceof BigInt64Array || out instanceof BigUint64Array) {
      for (let i = 0; i < n; i++) out[i] = BigInt((data as ArrayLike<number | bigint>)[i] as number | bigint);
    } else {
      const typed = out as Exclude<DTypeData[DType], string[] | BigInt64Array | BigUint64Array>;
      for (let i = 0; i < n; i++) typed[i] = Number((data as ArrayLike<number | bigint>)[i]);
    }
  }
  return { dtype, shape: [...shape], data: out };
}
