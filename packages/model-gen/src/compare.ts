// How Kiln's outputs are judged against onnxruntime's.
//
// relError (the gate) = max_i |a_i - b_i| / max(max_j |b_j|, 1e-6): the worst absolute error
// relative to the reference tensor's scale. Per-element relative error is meaningless for
// elements that are (near) zero, which every ReLU network and softmax output has plenty of;
// scaling by the tensor's max-abs keeps the bar strict for the values that matter.
// elementRelError = max_i |a_i - b_i| / max(|b_i|, 1e-3 * max_j |b_j|) is reported alongside for
// information (per-element with a floor at 0.1% of the tensor's scale).
import type { HostTensor } from "./tensors.ts";

export interface Comparison {
  relError: number;
  elementRelError: number;
  maxAbsError: number;
  maxAbsReference: number;
  /** Flat index of the worst element (by relError's numerator). */
  worstIndex: number;
}

function toNumbers(t: HostTensor): ArrayLike<number> {
  if (t.data instanceof BigInt64Array || t.data instanceof BigUint64Array) return Array.from(t.data, (v) => Number(v));
  if (t.dtype === "float16") throw new Error("compare float16 tensors after converting them to float32");
  return t.data;
}

export function compareTensors(actual: HostTensor, expected: HostTensor, what = "tensor"): Comparison {
  if (actual.dtype !== expected.dtype) throw new Error(`${what}: dtype ${actual.dtype} != expected ${expected.dtype}`);
  if (actual.shape.length !== expected.shape.length || actual.shape.some((d, i) => d !== expected.shape[i])) {
    throw new Error(`${what}: shape [${actual.shape}] != expected [${expected.shape}]`);
  }
  const a = toNumbers(actual);
  const b = toNumbers(expected);
  if (a.length !== b.length) throw new Error(`${what}: ${a.length} elements != expected ${b.length}`);
  let maxAbsReference = 0;
  for (let i = 0; i < b.length; i++) {
    const v = Math.abs(b[i] as number);
    if (!Number.isFinite(v)) throw new Error(`${what}: reference element ${i} is not finite (${b[i]})`);
    if (v > maxAbsReference) maxAbsReference = v;
  }
  const floor = Math.max(1e-3 * maxAbsReference, 1e-30);
  let maxAbsError = 0;
  let elementRelError = 0;
  let worstIndex = -1;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    // A NaN or infinity where the reference is finite is an infinite error, never a pass.
    const err = Number.isFinite(x) ? Math.abs(x - y) : Number.POSITIVE_INFINITY;
    if (err > maxAbsError || worstIndex < 0) {
      maxAbsError = Math.max(maxAbsError, err);
      if (err >= maxAbsError) worstIndex = i;
    }
    const rel = err / Math.max(Math.abs(y), floor);
    if (rel > elementRelError) elementRelError = rel;
  }
  return {
    relError: maxAbsError / Math.max(maxAbsReference, 1e-6),
    elementRelError,
    maxAbsError,
    maxAbsReference,
    worstIndex,
  };
}
