import { createHash } from "node:crypto";

export type BuildOptionsForKey = {
  modelSha256: string;
  target: string;
  precision: string;
  profiles: unknown;
  /** INT8: the calibration set's sha256, the method and (percentile method) the percentile. */
  calibrationSha256?: string | null;
  calibrationMethod?: string | null;
  calibrationPercentile?: number | null;
  builderVersion: string;
};

/** JSON with sorted object keys, so equal options always hash equally. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
  }
  return JSON.stringify(value ?? null);
}

/** Equal keys mean the builder would produce the same engine, so one build serves them all. */
export function buildCacheKey(options: BuildOptionsForKey): string {
  return createHash("sha256").update(canonical(options)).digest("hex");
}
