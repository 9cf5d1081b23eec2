import { describe, expect, it } from "vitest";
import { compareTensors } from "./compare.ts";
import type { HostTensor } from "./tensors.ts";

const f32 = (values: number[], shape = [values.length]): HostTensor => ({
  dtype: "float32",
  shape,
  data: Float32Array.from(values),
});

describe("compareTensors", () => {
  it("scales the worst absolute error by the reference's max-abs", () => {
    const c = compareTensors(f32([0, 10, -20]), f32([0.001, 10, -20.002]));
    expect(c.maxAbsReference).toBeCloseTo(20.002, 3);
    expect(c.maxAbsError).toBeCloseTo(0.002, 5);
    expect(c.relError).toBeCloseTo(0.002 / 20.002, 6);
    expect(c.worstIndex).toBe(2);
  });

  it("reports per-element error with a floor at 0.1% of the scale", () => {
    // |0 - 0.001| / max(0.001, 0.02) = 0.05: the near-zero element does not dominate.
    const c = compareTensors(f32([0, 10, -20]), f32([0.001, 10, -20]));
    expect(c.elementRelError).toBeCloseTo(0.05, 6);
  });

  it("treats NaN or infinity in the result as an infinite error", () => {
    expect(compareTensors(f32([Number.NaN, 1]), f32([0, 1])).relError).toBe(Number.POSITIVE_INFINITY);
    expect(compareTensors(f32([Number.POSITIVE_INFINITY]), f32([1])).relError).toBe(Number.POSITIVE_INFINITY);
  });

  it("rejects mismatched shapes and dtypes", () => {
    expect(() => compareTensors(f32([1, 2], [2]), f32([1, 2], [1, 2]), "logits")).toThrow(/logits: shape/);
    const ints: HostTensor = { dtype: "int64", shape: [1], data: BigInt64Array.of(1n) };
    expect(() => compareTensors(f32([1]), ints)).toThrow(/dtype/);
  });

  it("compares int64 tensors exactly", () => {
    const a: HostTensor = { dtype: "int64", shape: [2], data: BigInt64Array.of(1n, 5n) };
    const b: HostTensor = { dtype: "int64", shape: [2], data: BigInt64Array.of(1n, 4n) };
    expect(compareTensors(a, b).maxAbsError).toBe(1);
  });
});
