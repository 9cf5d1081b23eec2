// Full-size benchmark models, generated once and cached under .kiln/bench-models (git-ignored):
// generation is deterministic, so the file name (family + options) identifies the content.
import { existsSync, mkdirSync, renameSync } from "node:fs";
import { join, resolve } from "node:path";
import { type GenerateOptions, generateModel, writeModelFile } from "@kiln/model-gen";

export const REPO = resolve(import.meta.dirname, "../..");
const CACHE = join(REPO, ".kiln", "bench-models");

export interface BenchModel {
  path: string;
  generated: ReturnType<typeof generateModel>;
}

export function benchModel(family: string, options: GenerateOptions, log: (line: string) => void): BenchModel {
  const tag = Object.entries(options)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}${v}`)
    .join("-");
  const path = join(CACHE, `${family}${tag ? `-${tag}` : ""}.onnx`);
  const started = performance.now();
  // Weights are regenerated either way (the inputs' sampling hints come with them); only the
  // write is skipped when the file exists.
  const generated = generateModel(family, options);
  if (!existsSync(path)) {
    mkdirSync(CACHE, { recursive: true });
    writeModelFile(`${path}.tmp`, generated.spec);
    renameSync(`${path}.tmp`, path);
    log(`generated ${path} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
  return { path, generated };
}
