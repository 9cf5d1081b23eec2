// @kiln/engine: the TypeScript face of Kiln's native engine.
//   const { engine, report } = await build(onnxBytes, { profiles: [...] }, onProgress);
//   const ctx = loadEngine(engine).createContext();
//   const { outputs } = await ctx.run({ x: tensor("float32", [1, 4], [1, 2, 3, 4]) });
import { loadAddon } from "./addon.ts";
import type { BuildFlags } from "./types.ts";

export { addonCandidates, loadAddon } from "./addon.ts";
export { build, inspect } from "./build.ts";
export { Context, Engine, loadEngine } from "./engine.ts";
export { ENGINE_ERROR_CODES, type EngineErrorCode, KilnEngineError, toEngineError } from "./errors.ts";
export { allocate, DTYPES, isDType, numel, tensor, typedArrayOf } from "./tensor.ts";
export { NPZ_DTYPES, type ParseNpzOptions, parseNpz } from "./npz.ts";
export type * from "./types.ts";

/** The native builder/runtime version (the version engines are bound to). */
export function version(): string {
  return loadAddon().version();
}

/** How the native addon was built: compiler, build type, AVX2, CUDA, its CPU target. */
export function buildFlags(): BuildFlags {
  return loadAddon().buildFlags();
}
