import { describe, expect, it } from "vitest";
import { build, buildFlags, inspect, KilnEngineError, loadEngine, tensor, version } from "./index.ts";
import { loadAddon } from "./addon.ts";
import { INLINE_RUN_MS } from "./engine.ts";
import { translateAsync } from "./errors.ts";
import { denseModel, denseProfile, denseReference } from "./testing/models.ts";
import { OnnxModel } from "./testing/onnx-writer.ts";

function randomInput(batch: number, seed: number): Float32Array {
  const x = new Float32Array(batch * 4);
  for (let i = 0; i < x.length; i++) x[i] = Math.sin(seed + 0.37 * i);
  return x;
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>) {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) expect(Math.abs((got[i] as number) - (want[i] as number))).toBeLessThan(1e-5);
}

async function expectCode(promise: Promise<unknown> | (() => unknown), code: string, message?: RegExp | string) {
  let caught: unknown;
  try {
    await (typeof promise === "function" ? promise() : promise);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(KilnEngineError);
  expect((caught as KilnEngineError).code).toBe(code);
  if (message) expect((caught as Error).message).toMatch(message);
}

describe("@kiln/engine", () => {
  it("reports its version and build flags", () => {
    expect(version()).toMatch(/^\d+\.\d+\.\d+/);
    const flags = buildFlags();
    expect(flags.version).toBe(version());
    expect(flags.backends).toContain("cpu");
    expect(flags.cpuTarget).toMatch(/^cpu-/);
    expect(typeof flags.avx2Available).toBe("boolean");
  });

  it("builds, loads and runs a model", async () => {
    const stages: string[] = [];
    const { engine: bytes, report } = await build(
      denseModel(),
      { profiles: [denseProfile(1, 4, 8)] },
      (p) => stages.push(p.stage),
    );
    expect(Array.from(bytes.subarray(0, 8), (b) => String.fromCharCode(b)).join("")).toBe("KILNENG1");
    expect(stages[0]).toBe("parse");
    expect(stages).toContain("serialize");
    expect(report.layers.length).toBe(report.nodesAfter);
    expect(report.weightBytes).toBeGreaterThanOrEqual(60);

    const engine = loadEngine(bytes);
    expect(engine.inputs).toEqual([{ name: "x", dtype: "float32", shape: ["batch", 4] }]);
    expect(engine.outputs[0]?.name).toBe("y");
    expect(engine.profiles).toEqual([denseProfile(1, 4, 8)]);
    expect(engine.precision).toBe("fp32");
    expect(engine.target).toBe(buildFlags().cpuTarget);
    expect(engine.deviceMemoryBytes).toBe(report.peakMemoryBytes);
    const description = engine.describe();
    expect(description.builderVersion).toBe(version());
    expect(description.layers.length).toBe(report.nodesAfter);

    const ctx = engine.createContext();
    for (const batch of [1, 8, 3]) {
      const x = randomInput(batch, batch);
      const { outputs, computeMs } = await ctx.run({ x: tensor("float32", [batch, 4], x) });
      const y = outputs.y;
      expect(y?.dtype).toBe("float32");
      expect(y?.shape).toEqual([batch, 3]);
      expect(y?.data).toBeInstanceOf(Float32Array);
      expectClose(y?.data as Float32Array, denseReference(x, batch));
      expect(computeMs).toBeGreaterThanOrEqual(0);
    }
  });

  it("inspects a model without building it", async () => {
    const sig = await inspect(denseModel());
    expect(sig.inputs).toEqual([{ name: "x", dtype: "float32", shape: ["batch", 4] }]);
    expect(sig.operators).toEqual(expect.arrayContaining(["MatMul", "Add", "Relu"]));
    expect(sig.unsupported).toEqual([]);
    expect(sig.parameterCount).toBe(15);
  });

  it("rejects wrong inputs with codes that name the input", async () => {
    const { engine: bytes } = await build(denseModel(), { profiles: [denseProfile(1, 2, 8)] });
    const ctx = loadEngine(bytes).createContext();
    await expectCode(ctx.run({ x: tensor("int64", [2, 4]) }), "DTYPE_MISMATCH", "input 'x' expects float32, got int64");
    await expectCode(ctx.run({ x: tensor("float32", [2, 5]) }), "SHAPE_MISMATCH", /input 'x' has shape \[2,5\]/);
    await expectCode(ctx.run({ x: tensor("float32", [9, 4]) }), "SHAPE_MISMATCH", /\[9,4\]/);
    await expectCode(ctx.run({}), "INVALID_ARGUMENT", "missing input 'x'");
    await expectCode(ctx.run({ x: tensor("float32", [1, 4]), z: tensor("float32", [1]) }), "INVALID_ARGUMENT", /unknown input 'z'/);
    // Malformed tensor objects are caught at the boundary, before any native work.
    await expectCode(
      ctx.run({ x: { dtype: "float32", shape: [2, 4], data: new Float64Array(8) } }),
      "INVALID_ARGUMENT",
      "needs a Float32Array, got Float64Array",
    );
    await expectCode(
      ctx.run({ x: { dtype: "float32", shape: [2, 4], data: new Float32Array(7) } }),
      "INVALID_ARGUMENT",
      "has 8 elements but data has 7",
    );
    await expectCode(
      ctx.run({ x: { dtype: "float8" as "float32", shape: [2, 4], data: new Float32Array(8) } }),
      "INVALID_ARGUMENT",
      "unknown dtype 'float8'",
    );
    // The context still works afterwards.
    const x = randomInput(2, 7);
    const { outputs } = await ctx.run({ x: tensor("float32", [2, 4], x) });
    expectClose(outputs.y?.data as Float32Array, denseReference(x, 2));
  });

  it("runs short CPU runs on the calling thread once measured, with the same results and errors", async () => {
    const { engine: bytes } = await build(denseModel(), { profiles: [denseProfile(1, 2, 8)] });
    const ctx = loadEngine(bytes).createContext();
    const x = randomInput(2, 3);
    // The first run goes to the thread pool and measures; the dense model then runs in microseconds.
    const first = await ctx.run({ x: tensor("float32", [2, 4], x) });
    expect(ctx.inlineRuns).toBe(0);
    expect(first.computeMs).toBeLessThan(INLINE_RUN_MS);
    for (let i = 0; i < 3; i++) {
      const { outputs } = await ctx.run({ x: tensor("float32", [2, 4], x) });
      expectClose(outputs.y?.data as Float32Array, denseReference(x, 2));
    }
    expect(ctx.inlineRuns).toBe(3);
    // An inline run's error still arrives as a rejected promise, never a synchronous throw.
    let pending: Promise<unknown> | undefined;
    expect(() => {
      pending = ctx.run({ x: tensor("float32", [2, 5]) });
    }).not.toThrow();
    await expectCode(pending as Promise<unknown>, "SHAPE_MISMATCH", /input 'x' has shape \[2,5\]/);
    expect(ctx.inlineRuns).toBe(3);
  });

  it("runs many contexts concurrently and queues runs on one context", async () => {
    const { engine: bytes } = await build(denseModel(), { profiles: [denseProfile(1, 4, 8)] });
    const engine = loadEngine(bytes);
    const contexts = Array.from({ length: 4 }, () => engine.createContext());
    const runs: Promise<void>[] = [];
    for (let i = 0; i < 48; i++) {
      const batch = 1 + (i % 8);
      const x = randomInput(batch, i);
      const ctx = contexts[i % contexts.length];
      if (!ctx) throw new Error("no context");
      runs.push(
        ctx.run({ x: tensor("float32", [batch, 4], x) }).then(({ outputs }) => {
          expect(outputs.y?.shape).toEqual([batch, 3]);
          expectClose(outputs.y?.data as Float32Array, denseReference(x, batch));
        }),
      );
    }
    await Promise.all(runs);
  });

  it("refuses engines built for another target, another builder or corrupted", async () => {
    const { engine: bytes } = await build(denseModel());
    const corrupt = bytes.slice();
    corrupt[corrupt.length - 5] = (corrupt[corrupt.length - 5] ?? 0) ^ 0xff;
    await expectCode(() => loadEngine(corrupt), "ENGINE_MISMATCH", "checksum mismatch");
    await expectCode(() => loadEngine(bytes.subarray(0, bytes.length - 1)), "ENGINE_MISMATCH");
    await expectCode(() => loadEngine(denseModel()), "ENGINE_MISMATCH", "not a Kiln engine");
    // Rewrite the target string in the header ("cpu-..." -> "gpu-...") and reseal nothing: the
    // header checksum catches it as corruption, which is still ENGINE_MISMATCH.
    const retargeted = bytes.slice();
    const at = Buffer.from(retargeted).indexOf("cpu-");
    retargeted[at] = "g".charCodeAt(0);
    await expectCode(() => loadEngine(retargeted), "ENGINE_MISMATCH");
  });

  it("reports unsupported operators and invalid models with codes", async () => {
    const model = new OnnxModel()
      .input("x", "float32", [2])
      .node("FrobnicateAll", ["x"], ["y"], { name: "frob" })
      .output("y", "float32", [2])
      .toBytes();
    await expectCode(build(model), "UNSUPPORTED_OP", "unsupported operator FrobnicateAll (opset 17) at node 'frob'");
    const sig = await inspect(model);
    expect(sig.unsupported[0]).toMatch(/FrobnicateAll/);
    await expectCode(build(Uint8Array.from([1, 2, 3])), "INVALID_MODEL");
    await expectCode(build(denseModel(), { optimizationLevel: 7 as 2 }), "INVALID_ARGUMENT");
    await expectCode(build(denseModel(), { backend: "tpu" as "cpu" }), "INVALID_ARGUMENT", "unknown backend 'tpu'");
    await expectCode(build("not bytes" as unknown as Uint8Array), "INVALID_ARGUMENT", "must be a Uint8Array");
  });

  it("checks the INT8 and TF32 options and keeps reduced precisions off the cpu backend", async () => {
    const calibration = { x: tensor("float32", [3, 4], randomInput(3, 1)) };
    await expectCode(
      build(denseModel(), { precision: "int8", calibration }),
      "INVALID_ARGUMENT",
      "precision int8 is not available on the cpu backend",
    );
    await expectCode(build(denseModel(), { precision: "fp16" }), "INVALID_ARGUMENT", "not available on the cpu backend");
    await expectCode(build(denseModel(), { tf32: true }), "INVALID_ARGUMENT", "tf32 applies to fp32 builds on the cuda backend");
    await expectCode(
      build(denseModel(), { precision: "int8", calibration, calibrationMethod: "kl" as "entropy" }),
      "INVALID_ARGUMENT",
      "calibrationMethod must be entropy, percentile or minmax",
    );
    await expectCode(
      build(denseModel(), { precision: "int8", calibration, calibrationPercentile: 120 }),
      "INVALID_ARGUMENT",
      "calibrationPercentile must be in (0, 100]",
    );
    await expectCode(
      build(denseModel(), { precision: "int8", calibration: { x: tensor("float32", [], new Float32Array([1])) } }),
      "INVALID_ARGUMENT",
      "calibration.x needs a first dim",
    );
    // fp32 builds report each layer's precision.
    const { report } = await build(denseModel(), { profiles: [denseProfile(1, 4, 8)] });
    expect(report.layers.every((l) => l.precision === "fp32")).toBe(true);
  });

  it("cancels a build through an AbortSignal", async () => {
    // The native build checks its cancel token at every stage. A tiny model builds in well under
    // a millisecond, so an abort racing it may legitimately come too late: cancel up front.
    const addon = loadAddon();
    const token = new addon.CancelToken();
    token.cancel();
    const stages: string[] = [];
    await expectCode(
      translateAsync(addon.build(denseModel(), {}, (p) => stages.push(p.stage), token)),
      "CANCELLED",
      "build cancelled",
    );
    expect(stages).toEqual([]);
    const aborted = new AbortController();
    aborted.abort();
    await expectCode(build(denseModel(), { signal: aborted.signal }), "CANCELLED");
  });
});
