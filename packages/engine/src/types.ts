// The engine's data types as TypeScript sees them. Mirrors native/src/runtime/api.h.

/** Element types, spelled as the native engine spells them (core/dtype.h dtypeName). */
export type DType =
  | "float32"
  | "float64"
  | "float16"
  | "bfloat16"
  | "int8"
  | "int16"
  | "int32"
  | "int64"
  | "uint8"
  | "uint16"
  | "uint32"
  | "uint64"
  | "bool"
  | "string";

/** The JavaScript container of each dtype's elements (float16/bfloat16 carry raw bits). */
export interface DTypeData {
  float32: Float32Array;
  float64: Float64Array;
  float16: Uint16Array;
  bfloat16: Uint16Array;
  int8: Int8Array;
  int16: Int16Array;
  int32: Int32Array;
  int64: BigInt64Array;
  uint8: Uint8Array;
  uint16: Uint16Array;
  uint32: Uint32Array;
  uint64: BigUint64Array;
  bool: Uint8Array;
  string: string[];
}

/** A dense row-major tensor. `data.length` equals the product of `shape`. */
export interface Tensor<D extends DType = DType> {
  dtype: D;
  shape: number[];
  data: DTypeData[D];
}

/** An input or output of a model or engine. Dims are sizes or symbol names ("batch"); null shape: unknown rank. */
export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: (number | string)[] | null;
}

export interface ShapeRange {
  min: number[];
  opt: number[];
  max: number[];
}

/** One optimization profile: the min/opt/max shape of each dynamic input. */
export type Profile = Record<string, ShapeRange>;

export type Precision = "fp32" | "fp16" | "int8";
export type Backend = "cpu" | "cuda";

export interface BuildOptions {
  backend?: Backend;
  precision?: Precision;
  /** Empty or absent: one profile from the model's static shapes (dynamic dims -> 1). */
  profiles?: (Profile | string)[];
  /** 0: no passes, 1: cleanup + folding, 2 (default): + fusions. */
  optimizationLevel?: 0 | 1 | 2;
  /** Off switch for the static memory planner (debugging). Default true. */
  planMemory?: boolean;
  /** Folder where external data files are looked up; absent forbids external data. */
  modelDirectory?: string;
  /** Cancels the build: the promise rejects with code CANCELLED. */
  signal?: AbortSignal;
  /** FP32 builds on the cuda backend: let convolutions and GEMMs use TF32 tensor cores. */
  tf32?: boolean;
  /**
   * INT8 calibration set (precision "int8", cuda backend): input name -> tensor whose first dim is
   * the sample index (samples stacked). Not needed when the model carries QuantizeLinear /
   * DequantizeLinear pairs; otherwise an int8 build without it fails with INVALID_ARGUMENT.
   */
  calibration?: Record<string, Tensor>;
  /** How activation ranges are chosen from the calibration set. Default "entropy" (KL divergence). */
  calibrationMethod?: "entropy" | "percentile" | "minmax";
  /** For calibrationMethod "percentile": the percentile of |x| kept (default 99.99). */
  calibrationPercentile?: number;
}

export interface BuildProgress {
  stage: "parse" | "optimize" | "plan" | "compile" | "tune" | "serialize" | (string & {});
  /** 0..1 over the whole build. */
  fraction: number;
  message: string;
}

export interface LayerReport {
  name: string;
  opType: string;
  /** The kernel (tactic) chosen for the layer, e.g. "gemm.packed_6x16_fma". */
  kernel: string;
  /** Output shape at the first profile's opt shapes. */
  outputShape: string;
  /** Measured at the opt shapes during the build. */
  timeMs: number;
  /** What the layer computes in: "fp32", "tf32", "fp16" or "int8" (int8 builds keep layers whose INT8 error is too large in fp16). */
  precision?: "fp32" | "tf32" | "fp16" | "int8";
}

export interface BuildReport {
  nodesBefore: number;
  nodesAfter: number;
  /** Optimization pass name -> times applied. */
  fusions: Record<string, number>;
  layers: LayerReport[];
  /** The activation arena of one execution context, exactly. */
  peakMemoryBytes: number;
  weightBytes: number;
  warnings: string[];
}

export interface BuildResult {
  engine: Uint8Array;
  report: BuildReport;
}

export interface ModelSignature {
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  opsets: Record<string, number>;
  /** Distinct "OpType" or "domain:OpType". */
  operators: string[];
  /** "unsupported operator X (opset N) at node 'name'" for each node the engine cannot run. */
  unsupported: string[];
  parameterCount: number;
  producer: string;
  graphName: string;
}

export interface RunResult {
  /** Owned copies, keyed by output name, in the engine's output order. */
  outputs: Record<string, Tensor>;
  /** Time spent executing kernels. */
  computeMs: number;
  /** GPU time of the run, measured with CUDA events (CUDA engines only; metering uses it). */
  gpuTimeMs?: number;
}

export interface BuildFlags {
  version: string;
  buildType: string;
  compiler: string;
  processor: string;
  avx2Kernels: boolean;
  avx2Available: boolean;
  cuda: boolean;
  cudaVersion: string;
  napiVersion: number;
  backends: Backend[];
  /** The target engines built on this machine's CPU are bound to, e.g. "cpu-x86_64-avx2". */
  cpuTarget: string;
}

/** What `engine.describe()` returns (parsed from the native JSON). */
export interface EngineDescription {
  format: { magic: string; version: number };
  builderVersion: string;
  runtimeVersion: string;
  backend: string;
  target: string;
  libraryVersions: string;
  precision: Precision;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  profiles: { spec: string; inputs: Profile }[];
  opsets: Record<string, number>;
  memory: {
    deviceMemoryBytes: number;
    weightBytes: number;
    plannedTensors: number;
    tensors: { name: string; offset: number; bytes: number; aliasOf?: string }[];
  };
  layers: {
    name: string;
    op: string;
    kernel: string;
    inputs: string[];
    outputs: string[];
    outputShape?: string;
    timeMs?: number;
    workspaceBytes?: number;
  }[];
  build: { nodesBefore: number; nodesAfter: number; fusions: Record<string, number>; warnings: string[] };
}
