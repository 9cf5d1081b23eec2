import { describe, expect, it } from "vitest";
import { buildCacheKey } from "./cache-key.ts";

describe("buildCacheKey", () => {
  const base = {
    modelSha256: "a".repeat(64),
    target: "cpu",
    precision: "fp32",
    profiles: [{ x: { min: [1, 4], opt: [4, 4], max: [8, 4] } }],
    builderVersion: "0.1.0",
  };

  it("is the same for the same options, whatever the key order", () => {
    const reordered = {
      builderVersion: "0.1.0",
      profiles: [{ x: { max: [8, 4], opt: [4, 4], min: [1, 4] } }],
      precision: "fp32",
      target: "cpu",
      modelSha256: "a".repeat(64),
    };
    expect(buildCacheKey(reordered)).toBe(buildCacheKey(base));
    expect(buildCacheKey(base)).toMatch(/^[0-9a-f]{64}$/);
  });

  it("differs when anything that changes the engine differs", () => {
    const key = buildCacheKey(base);
    expect(buildCacheKey({ ...base, modelSha256: "b".repeat(64) })).not.toBe(key);
    expect(buildCacheKey({ ...base, target: "cuda-sm90" })).not.toBe(key);
    expect(buildCacheKey({ ...base, precision: "fp16" })).not.toBe(key);
    expect(buildCacheKey({ ...base, builderVersion: "0.2.0" })).not.toBe(key);
    expect(buildCacheKey({ ...base, profiles: [{ x: { min: [1, 4], opt: [2, 4], max: [8, 4] } }] })).not.toBe(key);
  });
});
