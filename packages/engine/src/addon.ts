// Loads the compiled addon (native/build/Release/kiln.node, built by cmake-js during `npm install`)
// and describes the raw surface it exports. Everything else in this package wraps this surface.
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { KilnEngineError } from "./errors.ts";
import type { BuildFlags, BuildProgress, BuildReport, ModelSignature, Profile, Tensor, TensorInfo } from "./types.ts";

export interface NativeCancelToken {
  cancel(): void;
  readonly cancelled: boolean;
}

type NativeRunResult = { outputs: Record<string, Tensor>; computeMs: number; gpuTimeMs?: number };

export interface NativeContext {
  run(inputs: Record<string, Tensor>): Promise<NativeRunResult>;
  /** The same run on the calling thread. */
  runSync(inputs: Record<string, Tensor>): NativeRunResult;
  readonly busy: boolean;
}

export interface NativeEngine {
  readonly inputs: TensorInfo[];
  readonly outputs: TensorInfo[];
  readonly profiles: Profile[];
  readonly backend: string;
  readonly target: string;
  readonly precision: string;
  readonly deviceMemoryBytes: number;
  readonly weightBytes: number;
  describe(): string;
  createContext(): NativeContext;
}

export interface NativeBuildOptions {
  backend?: string;
  precision?: string;
  profiles?: (Profile | string)[];
  optimizationLevel?: number;
  planMemory?: boolean;
  modelDirectory?: string;
  tf32?: boolean;
  calibration?: Record<string, Tensor>;
  calibrationMethod?: string;
  calibrationPercentile?: number;
}

export interface NativeAddon {
  version(): string;
  buildFlags(): BuildFlags;
  CancelToken: new () => NativeCancelToken;
  build(
    model: Uint8Array,
    options: NativeBuildOptions,
    onProgress?: (p: BuildProgress) => void,
    cancel?: NativeCancelToken,
  ): Promise<{ engine: Uint8Array; report: BuildReport }>;
  inspect(model: Uint8Array, modelDirectory?: string): Promise<ModelSignature>;
  loadEngine(bytes: Uint8Array): NativeEngine;
}

const here = dirname(fileURLToPath(import.meta.url));
/** native/ of this repository (packages/engine/src -> ../../../native). */
export const NATIVE_DIR = resolve(here, "../../../native");

/** Where the addon is looked up: KILN_ADDON_PATH, then the Release and Debug builds of cmake-js. */
export function addonCandidates(): string[] {
  const fromEnv = process.env.KILN_ADDON_PATH;
  return [
    ...(fromEnv ? [resolve(fromEnv)] : []),
    join(NATIVE_DIR, "build", "Release", "kiln.node"),
    join(NATIVE_DIR, "build", "Debug", "kiln.node"),
  ];
}

let cached: NativeAddon | undefined;

/** The addon, loaded once. Throws KilnEngineError(ADDON_NOT_BUILT) saying how to build it. */
export function loadAddon(): NativeAddon {
  if (cached) return cached;
  const candidates = addonCandidates();
  const path = candidates.find((p) => existsSync(p));
  if (!path) {
    throw new KilnEngineError(
      "ADDON_NOT_BUILT",
      `the Kiln native addon is not built (looked for ${candidates.join(", ")}). ` +
        "Build it with `npm install` at the repository root (which runs cmake-js for native/), " +
        "or `npm run build -w @kiln/native`; it needs CMake >= 3.20 and a C++17 compiler.",
    );
  }
  try {
    // What require() does for a .node file, spelled out: bundlers (Next.js's Turbopack, which hosts
    // the model upload route) rewrite require() calls and cannot follow a computed path.
    const module = { exports: {} as NativeAddon };
    process.dlopen(module, path);
    cached = module.exports;
  } catch (error) {
    throw new KilnEngineError(
      "ADDON_NOT_BUILT",
      `the Kiln native addon at ${path} failed to load (${(error as Error).message}); ` +
        "rebuild it with `npm run build -w @kiln/native`",
      { cause: error },
    );
  }
  return cached;
}
