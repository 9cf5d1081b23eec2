// Builds an ONNX graph the way PyTorch's exporter lays one out: parameters are initializers named
// by their module path ("encoder.layer.0.attention.self.query.weight"), nodes are named by scope
// ("/encoder/layer.0/attention/self/query/MatMul"), small constants are Constant nodes, and ops
// whose signature changed across opsets (ReduceMean, Unsqueeze, Split, ...) use the form of the
// target opset. Generators call these helpers and never write protobuf themselves.

import {
  type AttributeValue,
  DataType,
  type Dim,
  irVersionForOpset,
  type ModelSpec,
  type NodeSpec,
  type TensorSpec,
  type ValueInfoSpec,
} from "./onnx/types.ts";
import { Rng } from "./random.ts";

export const MIN_OPSET = 13;
export const MAX_OPSET = 21;

/** Typed attribute constructors: ONNX distinguishes 1 (INT) from 1.0 (FLOAT), JavaScript does not. */
export const attr = {
  int: (value: number | bigint): AttributeValue => ({ type: "int", value }),
  float: (value: number): AttributeValue => ({ type: "float", value }),
  string: (value: string): AttributeValue => ({ type: "string", value }),
  ints: (value: readonly (number | bigint)[]): AttributeValue => ({ type: "ints", value }),
  floats: (value: readonly number[]): AttributeValue => ({ type: "floats", value }),
  tensor: (value: TensorSpec): AttributeValue => ({ type: "tensor", value }),
};

export type Attrs = Record<string, AttributeValue>;

/** INT64_MAX, which PyTorch writes as the end of an open-ended Slice. */
export const INT64_MAX = (1n << 63n) - 1n;

export function tensorFromFloat32(name: string, dims: readonly number[], data: Float32Array): TensorSpec {
  checkElementCount(name, dims, data.length);
  return { name, dataType: DataType.FLOAT, dims, raw: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

export function tensorFromInt64(name: string, dims: readonly number[], data: readonly (number | bigint)[]): TensorSpec {
  checkElementCount(name, dims, data.length);
  const values = BigInt64Array.from(data, (v) => BigInt(v));
  return { name, dataType: DataType.INT64, dims, raw: new Uint8Array(values.buffer) };
}

export function tensorFromBool(name: string, dims: readonly number[], data: Uint8Array): TensorSpec {
  checkElementCount(name, dims, data.length);
  return { name, dataType: DataType.BOOL, dims, raw: data };
}

function checkElementCount(name: string, dims: readonly number[], count: number): void {
  const expected = dims.reduce((a, b) => a * b, 1);
  if (expected !== count) throw new Error(`tensor '${name}': dims [${dims}] need ${expected} elements, got ${count}`);
}

/** How to fill an input with plausible random data (token ids must index the embedding table). */
export type SampleHint =
  | { kind: "uniform"; low: number; high: number }
  | { kind: "int"; low: number; high: number }
  | { kind: "mask" };

export interface ModelInput extends ValueInfoSpec {
  sample: SampleHint;
}

export interface GraphBuilderOptions {
  name: string;
  opset: number;
  seed: number;
  docString?: string;
}

export class GraphBuilder {
  readonly opset: number;
  readonly rng: Rng;
  private readonly name: string;
  private readonly docString: string | undefined;
  private readonly nodes: NodeSpec[] = [];
  private readonly initializers: TensorSpec[] = [];
  private readonly inputs: ModelInput[] = [];
  private readonly outputs: ValueInfoSpec[] = [];
  private readonly scopes: string[] = [];
  private readonly usedNames = new Set<string>();
  private readonly opCounters = new Map<string, number>();

  constructor(options: GraphBuilderOptions) {
    if (!Number.isInteger(options.opset) || options.opset < MIN_OPSET || options.opset > MAX_OPSET) {
      throw new Error(`opset ${options.opset} is not supported (use ${MIN_OPSET}..${MAX_OPSET})`);
    }
    this.opset = options.opset;
    this.rng = new Rng(options.seed);
    this.name = options.name;
    this.docString = options.docString;
  }

  /** Runs fn with `name` pushed on the module scope ("layer1", "layer1.0", "conv1", ...). */
  scope<T>(name: string, fn: () => T): T {
    this.scopes.push(name);
    try {
      return fn();
    } finally {
      this.scopes.pop();
    }
  }

  input(name: string, dataType: DataType, shape: readonly Dim[], sample: SampleHint): string {
    this.claim(name);
    this.inputs.push({ name, dataType, shape, sample });
    return name;
  }

  /** The graph inputs with their sampling hints. */
  modelInputs(): readonly ModelInput[] {
    return this.inputs;
  }

  /** Declares `value` as a graph output called `name`, renaming the producing node's output. */
  output(name: string, value: string, dataType: DataType, shape: readonly Dim[]): string {
    if (value !== name) {
      this.claim(name);
      for (const node of this.nodes) {
        node.outputs = node.outputs.map((o) => (o === value ? name : o));
        node.inputs = node.inputs.map((i) => (i === value ? name : i));
      }
    }
    this.outputs.push({ name, dataType, shape });
    return name;
  }

  /** A float parameter named by the current module path plus `leaf` ("weight", "bias", ...). */
  parameter(leaf: string, dims: readonly number[], data: Float32Array): string {
    const name = [...this.scopes, leaf].join(".");
    this.claim(name);
    this.initializers.push(tensorFromFloat32(name, dims, data));
    return name;
  }

  /** An initializer with an explicit name (buffers such as position_ids or a causal mask). */
  initializer(tensor: TensorSpec): string {
    this.claim(tensor.name);
    this.initializers.push(tensor);
    return tensor.name;
  }

  /** Adds a node; returns its output names ("/scope/OpType_output_0", ...). */
  node(opType: string, inputs: readonly string[], attributes: Attrs = {}, outputCount = 1, domain = ""): string[] {
    const base = this.uniqueNodeName(opType);
    const outputs: string[] = [];
    for (let i = 0; i < outputCount; i++) {
      const out = `${base}_output_${i}`;
      this.claim(out);
      outputs.push(out);
    }
    this.nodes.push({ name: base, opType, domain, inputs: [...inputs], outputs, attributes });
    return outputs;
  }

  /** A single-output node. */
  op(opType: string, inputs: readonly string[], attributes: Attrs = {}): string {
    const [out] = this.node(opType, inputs, attributes, 1);
    return out as string;
  }

  // ---- constants -------------------------------------------------------------------------

  /** A Constant node holding a float tensor (a scalar when dims is []). */
  constFloat(values: readonly number[], dims: readonly number[] = []): string {
    const t = tensorFromFloat32("", dims, Float32Array.from(values));
    return this.op("Constant", [], { value: attr.tensor(t) });
  }

  /** A Constant node holding an int64 tensor (shapes, axes, indices). */
  constInt64(values: readonly (number | bigint)[], dims: readonly number[] = [values.length]): string {
    return this.op("Constant", [], { value: attr.tensor(tensorFromInt64("", dims, values)) });
  }

  // ---- ops whose form depends on the opset -------------------------------------------------

  reduceMean(x: string, axes: readonly number[], keepdims = true): string {
    const keep = { keepdims: attr.int(keepdims ? 1 : 0) };
    // ReduceMean took axes as an attribute until opset 18, as an input from then on.
    if (this.opset >= 18) return this.op("ReduceMean", [x, this.constInt64(axes)], keep);
    return this.op("ReduceMean", [x], { axes: attr.ints(axes), ...keep });
  }

  unsqueeze(x: string, axes: readonly number[]): string {
    return this.op("Unsqueeze", [x, this.constInt64(axes)]);
  }

  /** Split into pieces of the given sizes along axis (sizes as an input since opset 13). */
  split(x: string, sizes: readonly number[], axis: number): string[] {
    return this.node("Split", [x, this.constInt64(sizes)], { axis: attr.int(axis) }, sizes.length);
  }

  /** Clip with min/max as inputs (opset >= 11), as ReLU6 exports. */
  clip(x: string, min: number, max: number): string {
    return this.op("Clip", [x, this.constFloat([min]), this.constFloat([max])]);
  }

  /** Slice with constant starts/ends/axes (and steps when given). */
  slice(
    x: string,
    starts: readonly (number | bigint)[],
    ends: readonly (number | bigint)[],
    axes: readonly number[],
  ): string {
    return this.op("Slice", [x, this.constInt64(starts), this.constInt64(ends), this.constInt64(axes)]);
  }

  /** The size of x's dimension `axis` as a 1-element int64 tensor: Shape -> Gather -> Unsqueeze. */
  dim(x: string, axis: number): string {
    const shape = this.op("Shape", [x]);
    const scalar = this.op("Gather", [shape, this.constInt64([axis], [])], { axis: attr.int(0) });
    return this.unsqueeze(scalar, [0]);
  }

  /** Reshape whose target shape mixes dynamic dims (1-element tensors from dim()) and constants. */
  reshapeDynamic(x: string, parts: readonly (string | number)[]): string {
    const pieces = parts.map((p) => (typeof p === "number" ? this.constInt64([p]) : p));
    const shape = this.op("Concat", pieces, { axis: attr.int(0) });
    return this.op("Reshape", [x, shape]);
  }

  // ---- assembly -----------------------------------------------------------------------------

  build(producerName = "kiln-model-gen", producerVersion = "0.1.0"): ModelSpec {
    if (this.outputs.length === 0) throw new Error(`graph '${this.name}' has no outputs`);
    return {
      irVersion: irVersionForOpset(this.opset),
      opsets: { "": this.opset },
      producerName,
      producerVersion,
      ...(this.docString !== undefined ? { docString: this.docString } : {}),
      graph: {
        name: this.name,
        nodes: this.nodes,
        initializers: this.initializers,
        inputs: this.inputs.map(({ name, dataType, shape }) => ({ name, dataType, shape })),
        outputs: this.outputs,
      },
    };
  }

  /** Number of float parameters (for summaries). */
  parameterCount(): number {
    let n = 0;
    for (const t of this.initializers) if (t.dataType === DataType.FLOAT) n += t.raw.byteLength / 4;
    return n;
  }

  private uniqueNodeName(opType: string): string {
    const prefix = this.scopes.length > 0 ? `/${this.scopes.join("/")}/${opType}` : `/${opType}`;
    const count = this.opCounters.get(prefix) ?? 0;
    this.opCounters.set(prefix, count + 1);
    return count === 0 ? prefix : `${prefix}_${count}`;
  }

  private claim(name: string): void {
    if (name === "") throw new Error("empty value name");
    if (this.usedNames.has(name)) throw new Error(`duplicate value name '${name}'`);
    this.usedNames.add(name);
  }
}
