// Runs a model with onnxruntime-node (the reference Kiln is compared against). onnxruntime-node is
// a devDependency: import this module only from tests, benchmarks and the CLI's --verify.
import * as ort from "onnxruntime-node";
import type { HostTensor, TensorDType } from "./tensors.ts";

export interface OrtSessionOptions {
  /** Intra-op threads (default: ORT's choice, all cores). */
  threads?: number;
}

export async function createOrtSession(
  model: Uint8Array | string,
  o: OrtSessionOptions = {},
): Promise<ort.InferenceSession> {
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: ["cpu"],
    graphOptimizationLevel: "all",
    interOpNumThreads: 1,
    executionMode: "sequential",
    ...(o.threads !== undefined ? { intraOpNumThreads: o.threads } : {}),
  };
  return typeof model === "string"
    ? ort.InferenceSession.create(model, options)
    : ort.InferenceSession.create(model, options);
}

export function toOrtTensor(t: HostTensor): ort.Tensor {
  return new ort.Tensor(t.dtype as ort.Tensor.Type, t.data as ort.Tensor.DataType, t.shape);
}

export function fromOrtTensor(t: ort.Tensor): HostTensor {
  return { dtype: t.type as TensorDType, shape: [...t.dims], data: t.data as HostTensor["data"] };
}

export async function runOrt(
  session: ort.InferenceSession,
  inputs: Record<string, HostTensor>,
): Promise<Record<string, HostTensor>> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(inputs)) feeds[name] = toOrtTensor(t);
  const results = await session.run(feeds);
  const out: Record<string, HostTensor> = {};
  for (const name of session.outputNames) {
    const t = results[name];
    if (t === undefined) throw new Error(`onnxruntime returned no output '${name}'`);
    out[name] = fromOrtTensor(t);
  }
  return out;
}
