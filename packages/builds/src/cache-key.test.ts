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

  it("includes the calibration set and method of INT8 builds, and leaves other builds' keys as they were", () => {
    const int8 = { ...base, target: "cuda-sm90", precision: "int8", calibrationSha256: "c".repeat(64) };
    const entropy = buildCacheKey({ ...int8, calibrationMethod: "entropy" });
    expect(buildCacheKey({ ...int8, calibrationMethod: "minmax" })).not.toBe(entropy);
    expect(buildCacheKey({ ...int8, calibrationMethod: "entropy", calibrationSha256: "d".repeat(64) })).not.toBe(
      entropy,
    );
    const p9999 = buildCacheKey({ ...int8, calibrationMethod: "percentile", calibrationPercentile: 99.99 });
    expect(buildCacheKey({ ...int8, calibrationMethod: "percentile", calibrationPercentile: 99.9 })).not.toBe(p9999);
    expect(p9999).not.toBe(entropy);
    // Absent calibration fields do not enter the key: FP32 keys computed before they existed still match.
    expect(buildCacheKey({ ...base, calibrationSha256: undefined, calibrationMethod: undefined })).toBe(
      buildCacheKey(base),
    );
    expect(buildCacheKey(base)).toBe("ad467bd875d5407499d154252abe66a82f82a6e0e3aaec6f77c5ca1f18ad954e");
  });
});
