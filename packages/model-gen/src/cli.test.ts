import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createOrtSession } from "./ort.ts";

const cli = join(import.meta.dirname, "cli.ts");
const gen = (...args: string[]) => spawnSync(process.execPath, ["--import", "tsx", cli, ...args], { encoding: "utf8" });

describe("kiln-model-gen CLI", () => {
  const dir = mkdtempSync(join(tmpdir(), "model-gen-cli-"));

  it("writes a model that onnxruntime loads, and verifies it on request", async () => {
    const file = join(dir, "vit.onnx");
    const r = gen(
      "vit",
      "-o",
      file,
      "--layers",
      "1",
      "--hidden",
      "32",
      "--image-size",
      "16",
      "--patch-size",
      "8",
      "--classes",
      "3",
      "--opset",
      "13",
      "--verify",
    );
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^vit: \d+ nodes, 0\.\d+M parameters, opset 13/);
    expect(r.stdout).toMatch(/verified with onnxruntime: logits \[1, 3\]/);
    const session = await createOrtSession(readFileSync(file));
    expect(session.inputNames).toEqual(["pixel_values"]);
  });

  it("fixes the batch dimension when asked", async () => {
    const file = join(dir, "r.onnx");
    expect(gen("resnet18", "-o", file, "--width", "4", "--image-size", "32", "--batch", "3").status).toBe(0);
    const session = await createOrtSession(readFileSync(file));
    expect(session.inputMetadata[0]).toMatchObject({ shape: [3, 3, 32, 32] });
  });

  it("rejects bad arguments without writing anything", () => {
    const file = join(dir, "bad.onnx");
    const cases: [string[], RegExp][] = [
      [["bert", "-o", file, "--layers", "two"], /--layers must be a positive integer/],
      [["bert", "-o", file, "--opset", "9"], /opset 9 is not supported/],
      [["resnet50", "-o", file, "--hidden", "8"], /'hidden' does not apply to resnet50/],
      [["gpt2", "-o", file, "--causal-mask", "tril"], /--causal-mask must be 'where' or 'add'/],
      [["lenet", "-o", file], /unknown model 'lenet'/],
    ];
    for (const [args, message] of cases) {
      const r = gen(...args);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(message);
    }
    expect(gen("bert").status).toBe(2);
    expect(existsSync(file)).toBe(false);
  });
});
