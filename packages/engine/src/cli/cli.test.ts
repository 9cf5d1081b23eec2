// The CLI's commands against a fake engine (argument handling, files, statistics). The real
// engine is exercised by test/models/kiln-cli.test.ts, which runs `kiln` as a child process.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseProfiles, parseShape, UsageError } from "./args.ts";
import { outputFileName } from "./commands/run.ts";
import type { BuildOptions, EngineApi, EngineDescription, EngineHandle, Tensor } from "./engine-port.ts";
import { benchShapes } from "./inputs.ts";
import { main } from "./main.ts";
import { decodeNpy, encodeNpy } from "./npy.ts";
import { percentile, summarize } from "./stats.ts";

/** An "engine" computing y = 2x on a float32 input x [batch, 4], with a profile on batch 1..8. */
function fakeApi(calls: { build?: BuildOptions; runs: number }): EngineApi {
  const engine: EngineHandle = {
    inputs: [{ name: "x", dtype: "float32", shape: ["batch", 4] }],
    outputs: [{ name: "out/y:0", dtype: "float32", shape: ["batch", 4] }],
    profiles: [{ x: { min: [1, 4], opt: [2, 4], max: [8, 4] } }],
    describe: () =>
      ({
        format: { magic: "KILNENG1", version: 1 },
        builderVersion: "0.1.0",
        runtimeVersion: "0.1.0",
        target: "cpu-x86_64-avx2",
        backend: "cpu",
        precision: "fp32",
        opsets: { "": 17 },
        memory: { deviceMemoryBytes: 2048, weightBytes: 0 },
        layers: [{ name: "mul", op: "Mul", kernel: "cpu.Mul", outputShape: "[2, 4]", timeMs: 0.25 }],
        build: { nodesBefore: 3, nodesAfter: 1, fusions: { "gelu-erf": 2 }, warnings: ["slow path"] },
      }) as unknown as EngineDescription,
    createContext: () => ({
      run: async (inputs: Record<string, Tensor>) => {
        calls.runs++;
        const x = inputs.x as Tensor;
        if (x.shape[0] === undefined || x.shape[0] > 8)
          throw Object.assign(new Error(`input 'x' shape [${x.shape}] is outside every profile`), {
            code: "ShapeMismatch",
          });
        return {
          outputs: {
            "out/y:0": { dtype: "float32", shape: x.shape, data: (x.data as Float32Array).map((v) => 2 * v) },
          },
          computeMs: 0.01,
        };
      },
    }),
  };
  return {
    build: async (model, options, onProgress) => {
      calls.build = options;
      onProgress?.({ stage: "parse", fraction: 0.1, message: "" });
      onProgress?.({ stage: "serialize", fraction: 1, message: "done" });
      return {
        engine: Uint8Array.from(model.subarray(0, 4)),
        report: {
          nodesBefore: 3,
          nodesAfter: 1,
          fusions: { "conv-bias-relu": 1 },
          layers: [{ name: "mul", opType: "Mul", kernel: "cpu.Mul", outputShape: "[2, 4]", timeMs: 0.5 }],
          peakMemoryBytes: 2048,
          weightBytes: 0,
          warnings: [],
        },
      };
    },
    loadEngine: () => engine,
  };
}

async function kiln(argv: string[], calls = { runs: 0 } as { build?: BuildOptions; runs: number }) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(
    argv,
    async () => fakeApi(calls),
    (l) => out.push(l),
    (l) => err.push(l),
  );
  return { code, out: out.join("\n"), err: err.join("\n"), calls };
}

const dir = mkdtempSync(join(tmpdir(), "kiln-cli-"));
const engineFile = join(dir, "m.kiln");
writeFileSync(engineFile, "fake");

describe("kiln build", () => {
  it("passes precision, profiles and opt level, writes the engine and the report", async () => {
    const model = join(dir, "m.onnx");
    writeFileSync(model, "ONNXBYTES");
    const r = await kiln([
      "build",
      model,
      "-o",
      join(dir, "b.kiln"),
      "--precision",
      "fp16",
      "--opt-level",
      "1",
      "--profile",
      "x:1x4,2x4,8x4",
      "--report",
      join(dir, "r.json"),
    ]);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.calls.build?.precision).toBe("fp16");
    expect(r.calls.build?.optimizationLevel).toBe(1);
    expect(r.calls.build?.profiles).toEqual([{ x: { min: [1, 4], opt: [2, 4], max: [8, 4] } }]);
    expect(readFileSync(join(dir, "b.kiln"), "latin1")).toBe("ONNX");
    expect(JSON.parse(readFileSync(join(dir, "r.json"), "utf8")).nodesAfter).toBe(1);
    expect(r.out).toContain("nodes: 3 -> 1");
    expect(r.out).toContain("conv-bias-relu x1");
    expect(r.out).toMatch(/\[ *100%\] serialize: done/);
  });

  it("passes backend, tf32 and an INT8 calibration set read from .npz", async () => {
    const model = join(dir, "m.onnx");
    writeFileSync(model, "ONNXBYTES");
    // np.savez(f, x=np.arange(6, dtype=np.float32).reshape(3, 2)): three samples of shape [2].
    const npz = join(dir, "calib.npz");
    writeFileSync(
      npz,
      Buffer.from(
        "UEsDBC0AAAAAAAAAIQDMypy9//////////8FABQAeC5ucHkBABAAmAAAAAAAAACYAAAAAAAAAJNOVU1QWQEAdgB7J2Rlc2NyJzogJzxmNCcsICdmb3J0cmFuX29yZGVyJzogRmFsc2UsICdzaGFwZSc6ICgzLCAyKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAKAAAAAAAAgD8AAABAAABAQAAAgEAAAKBAUEsBAi0DLQAAAAAAAAAhAMzKnL2YAAAAmAAAAAUAAAAAAAAAAAAAAIABAAAAAHgubnB5UEsFBgAAAAABAAEAMwAAAM8AAAAAAA==",
        "base64",
      ),
    );
    const r = await kiln([
      "build",
      model,
      "-o",
      join(dir, "q.kiln"),
      "--backend",
      "cuda",
      "--precision",
      "int8",
      "--calibration",
      npz,
      "--calibration-method",
      "percentile",
      "--calibration-percentile",
      "99.9",
    ]);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const options = r.calls.build;
    expect(options?.backend).toBe("cuda");
    expect(options?.precision).toBe("int8");
    expect(options?.calibrationMethod).toBe("percentile");
    expect(options?.calibrationPercentile).toBe(99.9);
    expect(options?.calibration?.x?.shape).toEqual([3, 2]);
    expect(Array.from(options?.calibration?.x?.data as Float32Array)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(r.out).toContain("for cuda, int8");

    const tf32 = await kiln(["build", model, "-o", join(dir, "t.kiln"), "--backend", "cuda", "--tf32"]);
    expect(tf32.code).toBe(0);
    expect(tf32.calls.build?.tf32).toBe(true);
    expect((await kiln(["build", model, "-o", "x", "--backend", "tpu"])).err).toMatch(/--backend must be cpu or cuda/);
    expect((await kiln(["build", model, "-o", "x", "--calibration-method", "kl"])).err).toMatch(
      /--calibration-method must be one of entropy, percentile, minmax/,
    );
  });

  it("rejects bad options with usage (exit 2)", async () => {
    expect((await kiln(["build", "m.onnx", "-o", "x", "--precision", "fp8"])).err).toMatch(
      /--precision must be one of fp32, fp16, int8/,
    );
    expect((await kiln(["build", "m.onnx"])).code).toBe(2);
    const missing = await kiln(["build", join(dir, "none.onnx"), "-o", "x"]);
    expect(missing.err).toMatch(/^kiln: cannot read model .*none.onnx/);
    expect(missing.err).not.toMatch(/usage/); // a missing file is not a usage mistake
    expect(missing.code).toBe(1);
    expect((await kiln(["build", "m.onnx", "-o", "x", "--bogus"])).code).toBe(2);
    expect((await kiln(["frobnicate"])).err).toMatch(/unknown command 'frobnicate'/);
  });
});

describe("kiln inspect", () => {
  it("prints target, memory, inputs, outputs, profiles and layers", async () => {
    const r = await kiln(["inspect", engineFile, "--layers"]);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`engine: ${engineFile}`);
    expect(r.out).toContain("target: cpu-x86_64-avx2, backend: cpu, precision: fp32");
    expect(r.out).toContain("2.00 KiB activations per context");
    expect(r.out).toContain("opsets: ai.onnx 17");
    expect(r.out).toContain("build: 3 -> 1 nodes");
    expect(r.out).toContain("fusions: gelu-erf x2");
    expect(r.out).toContain("warning: slow path");
    expect(r.out).toContain("x: float32 [batch, 4]");
    expect(r.out).toContain("x: min 1x4, opt 2x4, max 8x4");
    expect(r.out).toContain("layers: 1 (Mul 1)");
    expect(r.out).toMatch(/mul +Mul +cpu\.Mul +\[2, 4\] +0\.250/);
  });

  it("prints the raw description with --json", async () => {
    expect(JSON.parse((await kiln(["inspect", engineFile, "--json"])).out).target).toBe("cpu-x86_64-avx2");
  });
});

describe("kiln run", () => {
  it("reads .npy inputs and writes one .npy per output", async () => {
    const x = join(dir, "x.npy");
    writeFileSync(x, encodeNpy({ dtype: "float32", shape: [1, 4], data: Float32Array.of(1, 2, 3, 4) }));
    const out = join(dir, "out");
    const r = await kiln(["run", engineFile, "--input", `x=${x}`, "--out", out]);
    expect(r.err).toBe("");
    const y = decodeNpy(readFileSync(join(out, "out_y_0.npy")));
    expect(y.shape).toEqual([1, 4]);
    expect(Array.from(y.data as Float32Array)).toEqual([2, 4, 6, 8]);
  });

  it("names the input and the problem when a file does not fit", async () => {
    const bad = join(dir, "bad.npy");
    writeFileSync(bad, encodeNpy({ dtype: "int64", shape: [1, 4], data: new BigInt64Array(4) }));
    expect((await kiln(["run", engineFile, "--input", `x=${bad}`, "--out", dir])).err).toMatch(
      /--input x: .*bad.npy holds int64, the input takes float32/,
    );
    const wrongShape = join(dir, "shape.npy");
    writeFileSync(wrongShape, encodeNpy({ dtype: "float32", shape: [1, 3], data: new Float32Array(3) }));
    expect((await kiln(["run", engineFile, "--input", `x=${wrongShape}`, "--out", dir])).err).toMatch(
      /shape \[1, 3\], the input takes \[batch, 4\]/,
    );
    writeFileSync(bad, "garbage");
    expect((await kiln(["run", engineFile, "--input", `x=${bad}`, "--out", dir])).err).toMatch(/not a .npy file/);
    expect((await kiln(["run", engineFile, "--out", dir])).err).toMatch(/missing --input for x/);
    expect((await kiln(["run", engineFile, "--input", `z=${bad}`, "--out", dir])).err).toMatch(
      /'z', which is not an input/,
    );
  });

  it("reports engine errors with their code (exit 1)", async () => {
    const big = join(dir, "big.npy");
    writeFileSync(big, encodeNpy({ dtype: "float32", shape: [9, 4], data: new Float32Array(36) }));
    const r = await kiln(["run", engineFile, "--input", `x=${big}`, "--out", dir]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/\[ShapeMismatch\] input 'x' shape \[9,4\] is outside every profile/);
  });

  it("makes output names safe file names", () => {
    expect(outputFileName("logits")).toBe("logits.npy");
    expect(outputFileName("../../etc/passwd")).toBe("__.._etc_passwd.npy");
    expect(outputFileName("")).toBe("_.npy");
  });
});

describe("kiln bench", () => {
  it("runs warm-up plus iterations on every context and reports percentiles and throughput", async () => {
    const calls = { runs: 0 };
    const r = await kiln(
      ["bench", engineFile, "--batch", "4", "--iterations", "20", "--warmup", "3", "--contexts", "2", "--json"],
      calls,
    );
    expect(r.err).toBe("");
    const result = JSON.parse(r.out);
    expect(calls.runs).toBe(2 * (20 + 3));
    expect(result.runs).toBe(40);
    expect(result.shapes).toEqual({ x: [4, 4] });
    expect(result.latencyMs.min).toBeLessThanOrEqual(result.latencyMs.p99);
    expect(result.samplesPerSecond).toBeCloseTo(result.runsPerSecond * 4, 6);
  });

  it("prints a latency table", async () => {
    const r = await kiln(["bench", engineFile, "--duration", "0.2", "--warmup", "0"]);
    expect(r.out).toMatch(/latency ms +min +median +p90 +p95 +p99/);
    expect(r.out).toMatch(/throughput: [\d.]+ runs\/s/);
    expect(r.out).toContain("x 2x4"); // the profile's opt batch when --batch is not given
  });

  it("rejects contradictory options", async () => {
    expect((await kiln(["bench", engineFile, "--duration", "1", "--iterations", "2"])).code).toBe(2);
    expect((await kiln(["bench", engineFile, "--contexts", "0"])).err).toMatch(/--contexts must be a positive integer/);
    expect((await kiln(["bench", engineFile, "--shape", "q=1x2"])).err).toMatch(/'q', which is not an input/);
  });
});

describe("argument syntax", () => {
  it("parses shapes and profiles, starting a new profile when an input repeats", () => {
    expect(parseShape("1x3x224x224", "s")).toEqual([1, 3, 224, 224]);
    expect(() => parseShape("1x-3", "s")).toThrow(UsageError);
    expect(() => parseShape("1x3.5", "s")).toThrow(UsageError);
    const p = parseProfiles(["ids:1x8,1x64,1x128", "mask:1x8,1x64,1x128", "ids:2x8,8x64,8x128"]);
    expect(p).toHaveLength(2);
    expect(Object.keys(p[0] ?? {})).toEqual(["ids", "mask"]);
    expect(p[1]?.ids?.max).toEqual([8, 128]);
    expect(() => parseProfiles(["ids:1x8,1x64"])).toThrow(/NAME:MIN,OPT,MAX/);
    expect(() => parseProfiles(["ids:4x8,1x64,8x128"])).toThrow(/min <= opt <= max/);
    expect(() => parseProfiles(["ids:1x8,1x64,8"])).toThrow(/same rank/);
  });

  it("resolves bench shapes from batch, profile and overrides", () => {
    const inputs = [{ name: "ids", dtype: "int64" as const, shape: ["batch", "sequence"] }];
    const profiles = [{ ids: { min: [1, 1], opt: [1, 128], max: [8, 512] } }];
    expect(benchShapes(inputs, profiles, 4, new Map()).get("ids")).toEqual([4, 128]);
    expect(benchShapes(inputs, [], undefined, new Map()).get("ids")).toEqual([1, 1]);
    expect(benchShapes(inputs, profiles, 4, new Map([["ids", [2, 16]]])).get("ids")).toEqual([2, 16]);
    expect(() => benchShapes(inputs, profiles, 4, new Map([["ids", [2]]]))).toThrow(/rank 1/);
  });

  it("computes nearest-rank percentiles", () => {
    const samples = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(samples, 50)).toBe(50);
    expect(percentile(samples, 99)).toBe(99);
    expect(percentile([5], 99)).toBe(5);
    const s = summarize([3, 1, 2]);
    expect([s.min, s.median, s.max, s.mean]).toEqual([1, 2, 3, 2]);
  });
});
