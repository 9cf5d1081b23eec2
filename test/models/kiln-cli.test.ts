// The `kiln` CLI as a user runs it: a child process on a tiny generated model, from build to
// inspect, run (.npy in, .npy out, checked against onnxruntime) and bench.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { compareTensors, generateModel, sampleInputs, writeModelFile } from "@kiln/model-gen";
import { createOrtSession, runOrt } from "@kiln/model-gen/ort";
import { describe, expect, it } from "vitest";
import { decodeNpy, encodeNpy } from "../../packages/engine/src/cli/npy.ts";

const repo = resolve(import.meta.dirname, "../..");
const cli = join(repo, "packages/engine/src/cli/main.ts");

function kiln(...args: string[]) {
  const r = spawnSync(process.execPath, ["--import", "tsx", cli, ...args], {
    cwd: repo,
    encoding: "utf8",
    timeout: 300_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("kiln CLI", () => {
  const dir = mkdtempSync(join(tmpdir(), "kiln-cli-e2e-"));
  const options = { layers: 1, hidden: 32, heads: 2, vocabSize: 50, maxPositions: 32 };
  const model = generateModel("bert", options);
  const onnx = join(dir, "bert.onnx");
  const engine = join(dir, "bert.kiln");
  writeModelFile(onnx, model.spec);

  it("builds, inspects, runs and benchmarks an engine", async () => {
    const built = kiln(
      "build",
      onnx,
      "-o",
      engine,
      "--profile",
      "input_ids:1x1,2x8,4x32",
      "--profile",
      "attention_mask:1x1,2x8,4x32",
      "--profile",
      "token_type_ids:1x1,2x8,4x32",
      "--report",
      join(dir, "report.json"),
    );
    expect(built.stderr).toBe("");
    expect(built.code).toBe(0);
    expect(built.stdout).toMatch(/nodes: \d+ -> \d+/);
    expect(built.stdout).toMatch(/wrote .*bert\.kiln/);
    expect(JSON.parse(readFileSync(join(dir, "report.json"), "utf8")).layers.length).toBeGreaterThan(0);

    const inspected = kiln("inspect", engine);
    expect(inspected.code).toBe(0);
    expect(inspected.stdout).toMatch(/precision: fp32/);
    expect(inspected.stdout).toMatch(/input_ids: int64 \[batch, sequence\]/);
    expect(inspected.stdout).toMatch(/last_hidden_state: float32/);
    expect(inspected.stdout).toMatch(/input_ids: min 1x1, opt 2x8, max 4x32/);

    const inputs = sampleInputs(model.inputs, { batch: 2, sequence: 8 });
    const flags: string[] = [];
    for (const [name, t] of Object.entries(inputs)) {
      const file = join(dir, `${name}.npy`);
      writeFileSync(file, encodeNpy(t));
      flags.push("--input", `${name}=${file}`);
    }
    const ran = kiln("run", engine, ...flags, "--out", join(dir, "out"));
    expect(ran.stderr).toBe("");
    expect(ran.code).toBe(0);
    const expected = await runOrt(await createOrtSession(readFileSync(onnx)), inputs);
    for (const [name, reference] of Object.entries(expected)) {
      const actual = decodeNpy(readFileSync(join(dir, "out", `${name}.npy`)));
      expect(compareTensors(actual, reference, name).relError).toBeLessThanOrEqual(1e-4);
    }

    const bench = kiln("bench", engine, "--batch", "2", "--iterations", "5", "--warmup", "1", "--json");
    expect(bench.code).toBe(0);
    const result = JSON.parse(bench.stdout);
    expect(result.runs).toBe(5);
    expect(result.shapes.input_ids).toEqual([2, 8]);
    expect(result.latencyMs.median).toBeGreaterThan(0);
  });

  it("fails cleanly on a corrupt model and a corrupt engine", () => {
    const bad = join(dir, "bad.onnx");
    writeFileSync(bad, "this is not protobuf");
    const built = kiln("build", bad, "-o", join(dir, "bad.kiln"));
    expect(built.code).toBe(1);
    expect(built.stderr).toMatch(/^kiln: /);
    writeFileSync(join(dir, "bad.kiln"), "KILNENG1 but not really");
    const inspected = kiln("inspect", join(dir, "bad.kiln"));
    expect(inspected.code).toBe(1);
    expect(inspected.stderr).toMatch(/^kiln: /);
  });
});
