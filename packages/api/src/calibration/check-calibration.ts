import type { DType, Tensor, TensorInfo } from "@kiln/engine";
import { KilnError } from "@kiln/errors";

/** What a calibration set holds, as stored on its row: one array per model input. */
export type CalibrationArray = { name: string; dtype: DType; shape: number[] };
export type CalibrationSummary = { sampleCount: number; arrays: CalibrationArray[] };

const shapeText = (shape: readonly (number | string)[]) => `(${shape.join(", ")}${shape.length === 1 ? "," : ""})`;

/**
 * Checks a parsed calibration set against the model's inputs: one array per input, named after it,
 * of the input's dtype and rank, samples stacked along the first dim (the same count in every
 * array), every other dim equal to the input's fixed size (symbolic dims take any size). Every
 * problem is listed, one sentence each, so the user can fix the file in one go.
 */
export function checkCalibration(arrays: Record<string, Tensor>, inputs: readonly TensorInfo[]): CalibrationSummary {
  const problems: string[] = [];
  const names = new Set(inputs.map((i) => i.name));
  const counts = new Map<number, string[]>();
  for (const input of inputs) {
    const array = arrays[input.name];
    if (!array) {
      problems.push(`There is no array named "${input.name}" for the model input of that name.`);
      continue;
    }
    if (array.dtype !== input.dtype) {
      problems.push(`Array "${input.name}" is ${array.dtype}, but the input takes ${input.dtype}.`);
    }
    const where = `Array "${input.name}" has shape ${shapeText(array.shape)}`;
    if (array.shape.length === 0) {
      problems.push(`${where}: it needs a first dim that counts the samples.`);
      continue;
    }
    const sampleCount = array.shape[0] as number;
    if (sampleCount === 0) problems.push(`${where}: it holds no samples (its first dim is 0).`);
    counts.set(sampleCount, [...(counts.get(sampleCount) ?? []), input.name]);
    const expected = input.shape;
    if (expected === null) continue; // unknown rank: anything with a sample dim
    if (expected.length === 0) {
      problems.push(`Input "${input.name}" is a scalar; Kiln cannot calibrate scalar inputs from stacked samples.`);
      continue;
    }
    if (array.shape.length !== expected.length) {
      problems.push(
        `${where}, but input "${input.name}" is ${shapeText(expected)}: the array needs the input's ${expected.length} dims, samples along the first.`,
      );
      continue;
    }
    const wrongDims: string[] = [];
    for (let d = 1; d < expected.length; d++) {
      const fixed = expected[d];
      if (typeof fixed === "number" && fixed > 0 && array.shape[d] !== fixed)
        wrongDims.push(`dim ${d} must be ${fixed}`);
    }
    if (wrongDims.length > 0) {
      problems.push(`${where}, but input "${input.name}" is ${shapeText(expected)}: ${wrongDims.join(", ")}.`);
    }
  }
  for (const name of Object.keys(arrays)) {
    if (!names.has(name)) {
      problems.push(
        `Array "${name}" is not an input of the model (its inputs are ${inputs.map((i) => `"${i.name}"`).join(", ")}).`,
      );
    }
  }
  if (counts.size > 1) {
    const listed = [...counts].map(([n, who]) => `${who.map((w) => `"${w}"`).join(", ")} ${n}`).join("; ");
    problems.push(`Every array needs the same number of samples along its first dim (found ${listed}).`);
  }
  if (problems.length > 0) {
    throw new KilnError("UNPROCESSABLE_CONTENT", `This calibration set does not fit the model: ${problems.join(" ")}`);
  }
  return {
    sampleCount: [...counts.keys()][0] ?? 0,
    arrays: inputs.map((i) => {
      const a = arrays[i.name] as Tensor;
      return { name: i.name, dtype: a.dtype, shape: a.shape };
    }),
  };
}
