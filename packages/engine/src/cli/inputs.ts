// Concrete input shapes and random input data for `kiln bench`, and .npy inputs for `kiln run`.
import { readFile } from "node:fs/promises";
import { CliError, UsageError } from "./args.ts";
import type { Profile, Tensor, TensorInfo } from "./engine-port.ts";
import { decodeNpy, elementCount, NpyError } from "./npy.ts";

const names = (inputs: readonly TensorInfo[]) => inputs.map((i) => i.name).join(", ");
const shapeText = (shape: TensorInfo["shape"]) => (shape === null ? "(unknown rank)" : `[${shape.join(", ")}]`);

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
      throw new UsageError(`--shape names '${name}', which is not an input (inputs: ${names(inputs)})`);
    }
  }
  if (batch !== undefined && !inputs.some((i) => i.shape !== null && typeof i.shape[0] === "string")) {
    throw new UsageError(`--batch ${batch}: no input has a dynamic leading dimension`);
  }
  const shapes = new Map<string, number[]>();
  for (const input of inputs) {
    const override = overrides.get(input.name);
    if (input.shape === null) {
      if (override === undefined)
        throw new UsageError(`input '${input.name}' has an unknown rank: give --shape ${input.name}=...`);
      shapes.set(input.name, override);
      continue;
    }
    if (override !== undefined) {
      if (override.length !== input.shape.length) {
        throw new UsageError(
          `--shape ${input.name}: rank ${override.length} does not match the input's ${shapeText(input.shape)}`,
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
 * masks and type ids, whatever the vocabulary); bools and strings random.
 */
export function randomTensor(info: TensorInfo, shape: number[], seed: number): Tensor {
  const n = elementCount(shape);
  const rand = xorshift(seed);
  const bit = () => (rand() < 0.5 ? 0 : 1);
  switch (info.dtype) {
    case "float32":
      return { dtype: "float32", shape, data: Float32Array.from({ length: n }, () => rand() * 2 - 1) };
    case "float64":
      return { dtype: "float64", shape, data: Float64Array.from({ length: n }, () => rand() * 2 - 1) };
    case "float16":
      // Bits of values in (-1, 1): random sign, exponent 0..14 (of bias 15), random 10-bit mantissa.
      return {
        dtype: "float16",
        shape,
        data: Uint16Array.from(
          { length: n },
          () => (bit() << 15) | (Math.floor(rand() * 15) << 10) | Math.floor(rand() * 1024),
        ),
      };
    case "bfloat16":
      // Bits of values in (-1, 1): random sign, exponent 112..126 (of bias 127), random 7-bit mantissa.
      return {
        dtype: "bfloat16",
        shape,
        data: Uint16Array.from(
          { length: n },
          () => (bit() << 15) | ((112 + Math.floor(rand() * 15)) << 7) | Math.floor(rand() * 128),
        ),
      };
    case "int64":
      return { dtype: "int64", shape, data: BigInt64Array.from({ length: n }, () => BigInt(bit())) };
    case "uint64":
      return { dtype: "uint64", shape, data: BigUint64Array.from({ length: n }, () => BigInt(bit())) };
    case "int32":
      return { dtype: "int32", shape, data: Int32Array.from({ length: n }, bit) };
    case "uint32":
      return { dtype: "uint32", shape, data: Uint32Array.from({ length: n }, bit) };
    case "int16":
      return { dtype: "int16", shape, data: Int16Array.from({ length: n }, bit) };
    case "uint16":
      return { dtype: "uint16", shape, data: Uint16Array.from({ length: n }, bit) };
    case "int8":
      return { dtype: "int8", shape, data: Int8Array.from({ length: n }, bit) };
    case "uint8":
      return { dtype: "uint8", shape, data: Uint8Array.from({ length: n }, bit) };
    case "bool":
      return { dtype: "bool", shape, data: Uint8Array.from({ length: n }, bit) };
    case "string":
      return { dtype: "string", shape, data: Array.from({ length: n }, () => String(bit())) };
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
      throw new UsageError(`--input names '${name}', which is not an input (inputs: ${names(inputs)})`);
    let bytes: Uint8Array;
    try {
      bytes = await readFile(path);
    } catch (error) {
      throw new CliError(`--input ${name}: cannot read '${path}': ${(error as Error).message}`);
    }
    let tensor: Tensor;
    try {
      tensor = decodeNpy(bytes, path);
    } catch (error) {
      if (error instanceof NpyError) throw new CliError(`--input ${name}: ${error.message}`);
      throw error;
    }
    if (tensor.dtype !== info.dtype) {
      throw new CliError(`--input ${name}: ${path} holds ${tensor.dtype}, the input takes ${info.dtype}`);
    }
    const expected = info.shape;
    const fits =
      expected === null ||
      (tensor.shape.length === expected.length &&
        expected.every((d, i) => typeof d !== "number" || d === tensor.shape[i]));
    if (!fits) {
      throw new CliError(
        `--input ${name}: ${path} has shape [${tensor.shape.join(", ")}], the input takes ${shapeText(expected)}`,
      );
    }
    out[name] = tensor;
  }
  const missing = inputs.filter((i) => out[i.name] === undefined).map((i) => i.name);
  if (missing.length > 0) throw new UsageError(`missing --input for ${missing.join(", ")}`);
  return out;
}
