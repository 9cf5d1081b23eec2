// The build form's shape profile: a draft of strings as typed, prefilled from the model's dynamic
// dims, and its parse into the min/opt/max numbers the builds API takes.
import type { ShapeRange, TensorInfo } from "@kiln/engine";

const isDynamic = (dim: number | string) => typeof dim !== "number" || dim < 0;
export const hasDynamicDims = (tensor: TensorInfo) => Boolean(tensor.shape?.some(isDynamic));

export type ProfileDraft = Record<string, { min: string[]; opt: string[]; max: string[] }>;
export type Profile = Record<string, ShapeRange>;

// Defaults for a dynamic dim: a batch-like leading dim gets room to batch, other dims start at 1.
const BATCH_MAX = 8;

/** Prefills min/opt/max for every dynamic input: static dims fixed, dynamic ones 1 / 1 / 8 (leading) or 1. */
export function draftFromInputs(inputs: TensorInfo[]): ProfileDraft {
  const draft: ProfileDraft = {};
  for (const input of inputs.filter(hasDynamicDims)) {
    const shape = input.shape ?? [];
    const fixed = (dim: number | string) => (typeof dim === "number" && dim >= 0 ? String(dim) : undefined);
    draft[input.name] = {
      min: shape.map((dim) => fixed(dim) ?? "1"),
      opt: shape.map((dim) => fixed(dim) ?? "1"),
      max: shape.map((dim, i) => fixed(dim) ?? (i === 0 ? String(BATCH_MAX) : "1")),
    };
  }
  return draft;
}

/** The profile as numbers, or the first problem found, naming the input and dimension. */
export function parseProfile(draft: ProfileDraft, inputs: TensorInfo[]): { profile: Profile } | { error: string } {
  const profile: Profile = {};
  for (const [name, range] of Object.entries(draft)) {
    const shape = inputs.find((i) => i.name === name)?.shape ?? [];
    const parsed = { min: [] as number[], opt: [] as number[], max: [] as number[] };
    for (let d = 0; d < shape.length; d++) {
      const label = `${name}, dimension ${d} (${shape[d]})`;
      const values = (["min", "opt", "max"] as const).map((k) => Number(range[k][d]));
      if (values.some((v) => !Number.isInteger(v) || v < 1))
        return { error: `${label}: use whole numbers of 1 or more.` };
      const [min, opt, max] = values as [number, number, number];
      if (!(min <= opt && opt <= max)) return { error: `${label}: need min ≤ opt ≤ max (got ${min}, ${opt}, ${max}).` };
      parsed.min.push(min);
      parsed.opt.push(opt);
      parsed.max.push(max);
    }
    profile[name] = parsed;
  }
  return { profile };
}
