import { describe, expect, it } from "vitest";
import { Rng } from "./random.ts";

function moments(a: Float32Array) {
  let sum = 0;
  let sq = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const v of a) {
    sum += v;
    sq += v * v;
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  const mean = sum / a.length;
  return { mean, std: Math.sqrt(sq / a.length - mean * mean), min, max };
}

describe("Rng", () => {
  it("repeats a sequence for a seed", () => {
    const a = new Rng(42);
    const b = new Rng(42);
    for (let i = 0; i < 100; i++) expect(a.next()).toBe(b.next());
    expect(new Rng(43).next()).not.toBe(new Rng(42).next());
  });

  it("draws normals with the requested std", () => {
    const m = moments(new Rng(1).fillNormal(new Float32Array(200_000), 0.5));
    expect(Math.abs(m.mean)).toBeLessThan(0.005);
    expect(m.std).toBeCloseTo(0.5, 2);
    expect(m.max).toBeLessThanOrEqual(2);
    expect(m.max).toBeGreaterThan(1.5); // tails reach past 3 std
  });

  it("truncates at 2 std like trunc_normal_ (std of the truncated law is 0.8796)", () => {
    const m = moments(new Rng(2).fillTruncatedNormal(new Float32Array(200_000), 1));
    expect(m.std).toBeCloseTo(0.8796, 2);
    expect(m.min).toBeGreaterThanOrEqual(-2);
    expect(m.max).toBeLessThanOrEqual(2);
    // Shaped like a normal, not a uniform: P(|x| > 1.15) = 2 (Phi(2) - Phi(1.15)) / (2 Phi(2) - 1) = 0.2144
    // (a uniform on [-2, 2] with this std would give 0.425).
    const beyond = new Rng(3)
      .fillTruncatedNormal(new Float32Array(100_000), 1)
      .filter((v) => Math.abs(v) > 1.15).length;
    expect(beyond / 100_000).toBeCloseTo(0.2144, 2);
  });
});
