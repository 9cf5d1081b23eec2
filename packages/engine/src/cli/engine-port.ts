// The slice of @kiln/engine's API the CLI uses, and where it comes from. Kept in one file so the
// commands code against one small surface.
import type { NpyArray, NpyDType } from "./npy.ts";

export type TensorDType = NpyDType;
export type Tensor = NpyArray;

export interface TensorInfo {
  name: string;
  dtype: TensorDType;
  /** Fixed sizes, or symbolic names (null when unnamed) for dynamic dims. */
  shape: (number | string | null)[];
}

export interface ShapeRange {
  min: number[];
  opt: number[];
  max: number[];
}

/** One optimization profile: a min/opt/max shape for each dynamic input. */
export type Profile = Record<string, ShapeRange>;

export type Precision = "fp32" | "fp16" | "int8";

export interface BuildProgress {
  stage: string;
  fraction: number;
  message: string;
}

export interface BuildOptions {
  precision?: Precision;
  profiles?: Profile[];
  optimizationLevel?: number;
  onProgress?: (p: BuildProgress) => void;
}

export interface LayerReport {
  name: string;
  opType: string;
  kernel: string;
  outputShape: string;
  timeMs: number;
}

export interface BuildReport {
  nodesBefore: number;
  nodesAfter: number;
  fusions: Record<string, number>;
  layers: LayerReport[];
  peakMemoryBytes: number;
  weightBytes: number;
  warnings: string[];
}

export interface BuildResult {
  engine: Uint8Array;
  report: BuildReport;
}

export interface RunResult {
  outputs: Record<string, Tensor>;
  computeMs?: number;
}

export interface ExecutionContext {
  run(inputs: Record<string, Tensor>): Promise<RunResult>;
}

export interface Engine {
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  profiles: Profile[];
  /** The engine's self-description (target, precision, memory, layers ...), as parsed JSON. */
  describe(): Record<string, unknown>;
  createContext(): ExecutionContext;
}

export interface EngineApi {
  build(model: Uint8Array, options: BuildOptions): Promise<BuildResult>;
  loadEngine(data: Uint8Array): Promise<Engine>;
}
