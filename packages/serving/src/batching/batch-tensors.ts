// Joining requests along the batch dimension (dim 0) and splitting the outputs back.
import type { DTypeData, Tensor } from "@kiln/engine";
import { typedArrayOf } from "@kiln/engine/tensor";
import type { NumericDType } from "../protocol/datatypes.ts";

/** Requests can share a batch when every input matches in everything but dim 0. */
export function batchKey(inputs: Record<string, Tensor>): string {
  return Object.keys(inputs)
    .sort()
    .map((name) => {
      const t = inputs[name] as Tensor;
      return `${name}:${t.dtype}:${t.shape.slice(1).join("x")}`;
    })
    .join("|");
}

export const rowsOf = (inputs: Record<string, Tensor>): number => (Object.values(inputs)[0]?.shape[0] ?? 1) as number;

export function concatRows(parts: Tensor[]): Tensor {
  const first = parts[0] as Tensor;
  if (parts.length === 1) return first;
  const rows = parts.reduce((n, t) => n + (t.shape[0] as number), 0);
  const shape = [rows, ...first.shape.slice(1)];
  if (first.dtype === "string") {
    return { dtype: "string", shape, data: parts.flatMap((t) => t.data as string[]) };
  }
  const length = parts.reduce((n, t) => n + t.data.length, 0);
  const out = new (typedArrayOf(first.dtype as NumericDType))(length);
  let offset = 0;
  for (const t of parts) {
    (out as Float32Array).set(t.data as Float32Array, offset);
    offset += t.data.length;
  }
  return { dtype: first.dtype, shape, data: out as DTypeData[typeof first.dtype] };
}

/** Splits `tensor` along dim 0 into slices of `rows[i]` rows each. */
export function splitRows(tensor: Tensor, rows: number[]): Tensor[] {
  if (rows.length === 1) return [tensor];
  const total = tensor.shape[0] as number;
  const perRow = total === 0 ? 0 : tensor.data.length / total;
  let start = 0;
  return rows.map((r) => {
    const begin = start * perRow;
    const end = (start + r) * perRow;
    start += r;
    const data = (tensor.data as Float32Array).slice(begin, end) as unknown as DTypeData[typeof tensor.dtype];
    return { dtype: tensor.dtype, shape: [r, ...tensor.shape.slice(1)], data };
  });
}
