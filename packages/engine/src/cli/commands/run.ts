// kiln run model.kiln --input NAME=file.npy ... --out DIR: one OUTPUT.npy per output.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CliError, parsePairs } from "../args.ts";
import type { EngineApi } from "../engine-port.ts";
import { readNpyInputs } from "../inputs.ts";
import { encodeNpy, type NpyArray } from "../npy.ts";
import { loadEngineFile } from "./inspect.ts";

export interface RunArgs {
  engine: string;
  inputs: string[];
  out: string;
}

/** Output names become file names: anything outside [A-Za-z0-9._-] becomes '_' (ONNX names may hold '/' or ':'). */
export function outputFileName(name: string): string {
  const safe = name.replace(/[^A-Za-z0-9._-]/g, "_").replace(/^\.+/, "_");
  return `${safe === "" ? "_" : safe}.npy`;
}

export async function runCommand(api: EngineApi, args: RunArgs, out: (line: string) => void): Promise<void> {
  const engine = await loadEngineFile(api, args.engine);
  const inputs = await readNpyInputs(engine.inputs, parsePairs(args.inputs, "--input"));
  const files = new Map<string, string>();
  for (const o of engine.outputs) {
    const file = outputFileName(o.name);
    const clash = files.get(file);
    if (clash !== undefined) throw new CliError(`outputs '${clash}' and '${o.name}' would both be written to ${file}`);
    files.set(file, o.name);
  }
  const started = performance.now();
  const result = await engine.createContext().run(inputs);
  const ms = performance.now() - started;
  await mkdir(args.out, { recursive: true });
  for (const o of engine.outputs) {
    const tensor = result.outputs[o.name];
    if (tensor === undefined) throw new Error(`the engine returned no output '${o.name}'`);
    if (tensor.dtype === "string" || tensor.dtype === "bfloat16") {
      throw new Error(`output '${o.name}' is ${tensor.dtype}, which .npy files cannot hold`);
    }
    const path = join(args.out, outputFileName(o.name));
    await writeFile(path, encodeNpy(tensor as NpyArray, o.name));
    out(`${o.name}: ${tensor.dtype} [${tensor.shape.join(", ")}] -> ${path}`);
  }
  out(
    `ran in ${ms.toFixed(2)} ms${result.computeMs !== undefined ? ` (${result.computeMs.toFixed(2)} ms in kernels)` : ""}`,
  );
}
