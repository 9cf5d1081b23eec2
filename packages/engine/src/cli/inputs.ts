// Concrete input shapes and random input data for `kiln bench`, and .npy inputs for `kiln run`.
import { readFile } from "node:fs/promises";
import { UsageError } from "./args.ts";
import type { Profile, Tensor, TensorInfo } from "./engine-port.ts";
import { decodeNpy, elementCount, NpyError } from "./npy.ts";

/**
 * The shape to benchmark each input at: fixed dims as they are; a dynamic leading dim takes
 * `batch` when given; other dynamic dims take the first profile's opt size (or 1 without one);
 * `overrides` (from --shape NAME=1x128) win over all of that.
 */
export function benchShapes(
  inputs: readonly TensorInfo[],
  profiles: readonly Profile[],
  batch: number | undefined,
  overrides: ReadonlyMap<string, number[]>,
): Map<string, number[]> {
  for (const name of overrides.keys()) {
    if (!inputs.some((i) => i.name === name)) {
      throw new UsageError(
        `--shape names '${name}', which is not an input (inputs: ${inputs.map((i) => i.name).join(", ")})`,
      );
    }
  }
  const shapes = new Map<string, number[]>();
  for (const input of inputs) {
    const override = overrides.get(input.name);
    if (override !== undefined) {
      if (override.length !== input.shape.length) {
        throw new UsageError(
          `--shape ${input.name}: rank ${override.length} does not match the input's [${input.shape.join(", ")}]`,
        );
      }
      shapes.set(input.name, override);
      continue;
    }
    const opt = profiles[0]?.[input.name]?.opt;
    shapes.set(
      input.name,
      input.shape.map((d, i) => {
        if (typeof d === "number") return d;
        if (i === 0 && batch !== undefined) return batch;
        return opt?.[i] ?? 1;
      }),
    );
  }
  if (batch !== undefined && !inputs.some((i) => typeof i.shape[0] !== "number")) {
    throw new UsageError(`--batch ${batch}: no input has a dynamic leading dimension`);
  }
  return shapes;
}

/** A deterministic xorshift so two bench runs feed the same data. */
function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

/**
 * Random data: floats uniform in [-1, 1); integers 0 or 1 (always valid token ids, attention
 * masks and type ids, whatever the vocabulary); bools random.
 */
export function randomTensor(info: TensorInfo, shape: number[], seed: number): Tensor {
  const n = elementCount(shape);
  const rand = xorshift(seed);
  switch (info.dtype) {
    case "float32":
      return { dtype: "float32", shape, data: Float32Array.from({ length: n }, () => rand() * 2 - 1) };
    case "float64":
      return { dtype: "float64", shape, data: Float64Array.from({ length: n }, () => rand() * 2 - 1) };
    case "float16":
      // Bits of values in [-1, 1): sign, exponent 0..14, random mantissa.
      return {
        dtype: "float16",
        shape,
        data: Uint16Array.from(
          { length: n },
          () => (rand() < 0.5 ? 0x8000 : 0) | (Math.floor(rand() * 15) << 10) | Math.floor(rand() * 1024),
        ),
      };
    case "int64":
      return { dtype: "int64", shape, data: BigInt64Array.from({ length: n }, () => (rand() < 0.5 ? 0n : 1n)) };
    case "uint64":
      return { dtype: "uint64", shape, data: BigUint64Array.from({ length: n }, () => (rand() < 0.5 ? 0n : 1n)) };
    case "int32":
      return { dtype: "int32", shape, data: Int32Array.from({ length: n }, () => (rand() < 0.5 ? 0 : 1)) };
    case "uint32":
      return { dtype: "uint32", shape, data: Uint32Array.from({ length: n }, () => (rand() < 0.5 ? 0 : 1)) };
    case "int16":
      return { dtype: "int16", shape, data: Int16Array.from({ length: n }, () => (rand() < 0.5 ? 0 : 1)) };
    case "uint16":
      return { dtype: "uint16", shape, data: Uint16Array.from({ length: n }, () => (rand() < 0.5 ? 0 : 1)) };
    case "int8":
      return { dtype: "int8", shape, data: Int8Array.from({ length: n }, () => (rand() < 0.5 ? 0 : 1)) };
    case "uint8":
      return { dtype: "uint8", shape, data: Uint8Array.from({ length: n }, () => (rand() < 0.5 ? 0 : 1)) };
    case "bool":
      return { dtype: "bool", shape, data: Uint8Array.from({ length: n }, () => (rand() < 0.5 ? 0 : 1)) };
  }
}

/** Reads `--input NAME=file.npy` files and checks them against the engine's inputs. */
export async function readNpyInputs(
  inputs: readonly TensorInfo[],
  files: ReadonlyMap<string, string>,
): Promise<Record<string, Tensor>> {
  const out: Record<string, Tensor> = {};
  for (const [name, path] of files) {
    const info = inputs.find((i) => i.name === name);
    if (info === undefined)
      throw new UsageError(
        `--input names '${name}', which is not an input (inputs: ${inputs.map((i) => i.name).join(", ")})`,
      );
    let bytes: Uint8Array;
    try {
      bytes = await readFile(path);
    } catch (error) {
      throw new UsageError(`--input ${name}: cannot read '${path}': ${(error as Error).message}`);
    }
    let tensor: Tensor;
    try {
      tensor = decodeNpy(bytes, path);
    } catch (error) {
      if (error instanceof NpyError) throw new UsageError(`--input ${name}: ${error.message}`);
      throw error;
    }
    if (tensor.dtype !== info.dtype)
      throw new UsageError(`--input ${name}: ${path} holds ${tensor.dtype}, the input takes ${info.dtype}`);
    const fits =
      tensor.shape.length === info.shape.length &&
      info.shape.every((d, i) => typeof d !== "number" || d === tensor.shape[i]);
    if (!fits)
      throw new UsageError(
        `--input ${name}: ${path} has shape [${tensor.shape.join(", ")}], the input takes [${info.shape.map((d) => d ?? "?").join(", ")}]`,
      );
    out[name] = tensor;
  }
  const missing = inputs.filter((i) => out[i.name] === undefined).map((i) => i.name);
  if (missing.length > 0) throw new UsageError(`missing --input for ${missing.join(", ")}`);
  return out;
}
