// The slice of @kiln/engine the CLI uses. Commands take an EngineApi so tests can hand them a fake
// engine; the real one is the package's build() and loadEngine() (whose Engine and Context
// classes satisfy EngineHandle and ExecutionContext structurally).
import type {
  BuildOptions,
  BuildProgress,
  BuildReport,
  BuildResult,
  DType,
  EngineDescription,
  Precision,
  Profile,
  RunResult,
  ShapeRange,
  Tensor,
  TensorInfo,
} from "../types.ts";

export type {
  BuildOptions,
  BuildProgress,
  BuildReport,
  BuildResult,
  DType,
  EngineDescription,
  Precision,
  Profile,
  RunResult,
  ShapeRange,
  Tensor,
  TensorInfo,
};

export interface ExecutionContext {
  run(inputs: Record<string, Tensor>): Promise<RunResult>;
}

export interface EngineHandle {
  readonly inputs: TensorInfo[];
  readonly outputs: TensorInfo[];
  readonly profiles: Profile[];
  describe(): EngineDescription;
  createContext(): ExecutionContext;
}

export interface EngineApi {
  build(model: Uint8Array, options?: BuildOptions, onProgress?: (p: BuildProgress) => void): Promise<BuildResult>;
  loadEngine(bytes: Uint8Array): EngineHandle;
}

/** The real engine; imported lazily so `kiln help` and usage errors work without the native addon. */
export async function loadEngineApi(): Promise<EngineApi> {
  const { build, loadEngine } = await import("../index.ts");
  return { build, loadEngine };
}
