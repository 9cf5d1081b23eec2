// Shared by the model tests: generate a model, run it in onnxruntime (the reference) and in Kiln,
// and compare every output with model-gen's compareTensors (max |a-b| over the reference's max-abs).
import { build, loadEngine } from "@kiln/engine";
import {
  type Comparison,
  compareTensors,
  encodeModelBytes,
  type GenerateOptions,
  generateModel,
  type HostTensor,
  sampleInputs,
} from "@kiln/model-gen";
import { createOrtSession, runOrt } from "@kiln/model-gen/ort";

export const REL_TOLERANCE_FP32 = 1e-4;

export interface DimRange {
  min: number;
  opt: number;
  max: number;
}

export interface AccuracyCase {
  model: string;
  options: GenerateOptions;
  /** Ranges for the symbolic dims ("batch", "sequence") the engine's profile must cover. */
  dims: Record<string, DimRange>;
  /** The concrete dims to run at (each must lie inside its range). */
  runs: Record<string, number>[];
}

export interface OutputAccuracy extends Comparison {
  output: string;
  dims: Record<string, number>;
}

/** A profile covering `dims` for each input of the model. */
function profileFor(inputs: ReturnType<typeof generateModel>["inputs"], dims: Record<string, DimRange>) {
  const profile: Record<string, { min: number[]; opt: number[]; max: number[] }> = {};
  for (const input of inputs) {
    const pick = (k: keyof DimRange) =>
      input.shape.map((d) => {
        if (typeof d === "number") return d;
        const r = dims[d];
        if (r === undefined) throw new Error(`input '${input.name}': no range for dimension '${d}'`);
        return r[k];
      });
    profile[input.name] = { min: pick("min"), opt: pick("opt"), max: pick("max") };
  }
  return profile;
}

export async function measureAccuracy(c: AccuracyCase): Promise<OutputAccuracy[]> {
  const generated = generateModel(c.model, c.options);
  const onnx = encodeModelBytes(generated.spec);
  const { engine: bytes } = await build(onnx, { precision: "fp32", profiles: [profileFor(generated.inputs, c.dims)] });
  const engine = loadEngine(bytes);
  const context = engine.createContext();
  const session = await createOrtSession(onnx);
  const results: OutputAccuracy[] = [];
  for (const dims of c.runs) {
    const inputs = sampleInputs(generated.inputs, dims);
    const expected = await runOrt(session, inputs);
    const { outputs } = await context.run(inputs);
    for (const [name, reference] of Object.entries(expected)) {
      const actual = (outputs as Record<string, HostTensor>)[name];
      if (actual === undefined) throw new Error(`${c.model}: Kiln returned no output '${name}'`);
      results.push({ output: name, dims, ...compareTensors(actual, reference, `${c.model} ${name}`) });
    }
  }
  return results;
}

export function describeAccuracy(model: string, r: OutputAccuracy): string {
  const dims = Object.entries(r.dims)
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
  return `${model} ${r.output} (${dims}): rel ${r.relError.toExponential(2)}, per-element ${r.elementRelError.toExponential(2)}, max|ref| ${r.maxAbsReference.toPrecision(4)}`;
}
