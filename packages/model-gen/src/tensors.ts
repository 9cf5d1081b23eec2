// Typed-array tensors in the shape Kiln's engine API and the npy codec use ({dtype, shape, data}),
// and seeded random inputs for a generated model at concrete dimension sizes.
import type { ModelInput } from "./graph-builder.ts";
import { DataType } from "./onnx/types.ts";
import { Rng } from "./random.ts";

export type TensorDType =
  | "float32"
  | "float16"
  | "float64"
  | "int8"
  | "uint8"
  | "int16"
  | "uint16"
  | "int32"
  | "uint32"
  | "int64"
  | "uint64"
  | "bool";

export type TensorData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

export interface HostTensor {
  dtype: TensorDType;
  shape: number[];
  data: TensorData;
}

export function dtypeOf(type: DataType): TensorDType {
  switch (type) {
    case DataType.FLOAT:
      return "float32";
    case DataType.UINT8:
      return "uint8";
    case DataType.INT8:
      return "int8";
    case DataType.UINT16:
      return "uint16";
    case DataType.INT16:
      return "int16";
    case DataType.INT32:
      return "int32";
    case DataType.INT64:
      return "int64";
    case DataType.BOOL:
      return "bool";
    case DataType.FLOAT16:
      return "float16";
    case DataType.DOUBLE:
      return "float64";
    case DataType.UINT32:
      return "uint32";
    case DataType.UINT64:
      return "uint64";
  }
}

/** Resolves symbolic dims ("batch", "sequence") with `dims`; throws naming the input when one is missing. */
export function concreteShape(input: ModelInput, dims: Readonly<Record<string, number>>): number[] {
  return input.shape.map((d) => {
    if (typeof d === "number") return d;
    const v = dims[d];
    if (v === undefined) throw new Error(`input '${input.name}': no size given for dimension '${d}'`);
    return v;
  });
}

/**
 * Random inputs that are valid for the model: uniform floats, token ids inside the vocabulary,
 * attention masks with trailing padding on all rows but the first (so masking is exercised).
 */
export function sampleInputs(
  inputs: readonly ModelInput[],
  dims: Readonly<Record<string, number>>,
  seed = 7,
): Record<string, HostTensor> {
  const rng = new Rng(seed);
  const out: Record<string, HostTensor> = {};
  for (const input of inputs) {
    const shape = concreteShape(input, dims);
    const count = shape.reduce((a, b) => a * b, 1);
    const dtype = dtypeOf(input.dataType);
    const hint = input.sample;
    if (dtype === "float32") {
      if (hint.kind !== "uniform") throw new Error(`input '${input.name}': float input needs a uniform sample hint`);
      out[input.name] = { dtype, shape, data: rng.fillUniform(new Float32Array(count), hint.low, hint.high) };
      continue;
    }
    if (dtype !== "int64") throw new Error(`input '${input.name}': sampling ${dtype} inputs is not supported`);
    const data = new BigInt64Array(count);
    switch (hint.kind) {
      case "int":
        for (let i = 0; i < count; i++) data[i] = BigInt(rng.int(hint.low, hint.high));
        break;
      case "mask": {
        const last = shape[shape.length - 1] ?? 1;
        for (let row = 0; row * last < count; row++) {
          const kept = row === 0 ? last : Math.max(1, last - rng.int(0, Math.ceil(last / 2)));
          for (let j = 0; j < last; j++) data[row * last + j] = j < kept ? 1n : 0n;
        }
        break;
      }
      case "uniform":
        throw new Error(`input '${input.name}': int64 input cannot take a uniform float hint`);
    }
    out[input.name] = { dtype, shape, data };
  }
  return out;
}
