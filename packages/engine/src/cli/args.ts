// Parsing of the CLI's value syntaxes: shapes (1x3x224x224), profiles (input:MIN,OPT,MAX) and
// NAME=FILE pairs. Bad values throw UsageError, which main prints with the usage text.
import type { Profile, ShapeRange } from "./engine-port.ts";

/** A malformed command line: main prints it with the usage text and exits 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** A well-formed command that cannot proceed (missing file, bad .npy, input mismatch): exit 1, no usage. */
export class CliError extends Error {
  override readonly name = "CliError";
}

export function parseShape(text: string, what: string): number[] {
  if (text === "" || text === "scalar") return [];
  const dims = text.split("x").map((d) => Number(d));
  if (dims.some((d, i) => !Number.isSafeInteger(d) || d < 0 || !/^\d+$/.test(text.split("x")[i] as string))) {
    throw new UsageError(`${what}: '${text}' is not a shape like 1x3x224x224`);
  }
  return dims;
}

export function positiveInt(text: string | undefined, flag: string, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`${flag} must be a positive integer, got '${text}'`);
  return n;
}

export function nonNegativeInt(text: string | undefined, flag: string, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0) throw new UsageError(`${flag} must be a non-negative integer, got '${text}'`);
  return n;
}

export function positiveNumber(text: string | undefined, flag: string, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} must be a positive number, got '${text}'`);
  return n;
}

/**
 * `--profile NAME:MIN,OPT,MAX` flags, in order. Flags for different inputs make up one profile;
 * naming an input that the current profile already has starts the next profile, so
 * `--profile a:1x8,1x64,1x128 --profile a:2x8,8x64,8x128` gives two profiles.
 */
export function parseProfiles(flags: readonly string[]): Profile[] {
  const profiles: Profile[] = [];
  let current: Profile | undefined;
  for (const flag of flags) {
    const colon = flag.lastIndexOf(":");
    const name = flag.slice(0, colon);
    const shapes = flag.slice(colon + 1).split(",");
    if (colon <= 0 || shapes.length !== 3) {
      throw new UsageError(`--profile '${flag}': expected NAME:MIN,OPT,MAX such as input_ids:1x8,1x128,8x512`);
    }
    const [min, opt, max] = shapes.map((s) => parseShape(s, `--profile ${name}`)) as [number[], number[], number[]];
    checkRange(name, { min, opt, max });
    if (current === undefined || current[name] !== undefined) {
      current = {};
      profiles.push(current);
    }
    current[name] = { min, opt, max };
  }
  return profiles;
}

function checkRange(name: string, r: ShapeRange): void {
  if (r.min.length !== r.opt.length || r.opt.length !== r.max.length) {
    throw new UsageError(`--profile ${name}: min, opt and max must have the same rank`);
  }
  r.min.forEach((lo, i) => {
    const mid = r.opt[i] as number;
    const hi = r.max[i] as number;
    if (!(lo <= mid && mid <= hi)) {
      throw new UsageError(`--profile ${name}: dimension ${i} needs min <= opt <= max, got ${lo}, ${mid}, ${hi}`);
    }
  });
}

/** `NAME=VALUE` pairs (for --input NAME=file.npy and --shape NAME=1x128); names must be unique. */
export function parsePairs(flags: readonly string[], flag: string): Map<string, string> {
  const pairs = new Map<string, string>();
  for (const f of flags) {
    const eq = f.indexOf("=");
    if (eq <= 0 || eq === f.length - 1) throw new UsageError(`${flag} '${f}': expected NAME=VALUE`);
    const name = f.slice(0, eq);
    if (pairs.has(name)) throw new UsageError(`${flag}: '${name}' given twice`);
    pairs.set(name, f.slice(eq + 1));
  }
  return pairs;
}
