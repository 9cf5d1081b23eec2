// RNN, GRU and LSTM against onnxruntime in the configurations the conformance data does not cover:
// bidirectional and reverse directions, ragged sequence_lens, initial states, peepholes, clipping,
// non-default activations and both GRU reset orders. Tolerance as for the model families.
import { build, loadEngine } from "@kiln/engine";
import { attr, OnnxModel } from "@kiln/engine/testing/onnx-writer";
import { compareTensors, type HostTensor } from "@kiln/model-gen";
import { createOrtSession, runOrt } from "@kiln/model-gen/ort";
import { describe, expect, it } from "vitest";
import { REL_TOLERANCE_FP32 } from "./harness.ts";

const SEQ = 5;
const BATCH = 3;
const INPUT = 4;
const HIDDEN = 6;

/** Deterministic values in [-1, 1) (a small LCG: the test needs spread, not statistics). */
function values(count: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  let s = seed >>> 0;
  for (let i = 0; i < count; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32) * 2 - 1;
  }
  return out;
}

interface RecurrentCase {
  op: "RNN" | "GRU" | "LSTM";
  direction: "forward" | "reverse" | "bidirectional";
  attrs?: ReturnType<typeof attr.int>[];
  sequenceLens?: number[];
  initialState?: boolean;
  peepholes?: boolean;
}

async function compare(c: RecurrentCase) {
  const gates = c.op === "LSTM" ? 4 : c.op === "GRU" ? 3 : 1;
  const dirs = c.direction === "bidirectional" ? 2 : 1;
  const m = new OnnxModel({ opset: 14 });
  m.input("X", "float32", [SEQ, BATCH, INPUT]);
  m.initializer("W", "float32", [dirs, gates * HIDDEN, INPUT], values(dirs * gates * HIDDEN * INPUT, 1));
  m.initializer("R", "float32", [dirs, gates * HIDDEN, HIDDEN], values(dirs * gates * HIDDEN * HIDDEN, 2));
  m.initializer("B", "float32", [dirs, 2 * gates * HIDDEN], values(dirs * 2 * gates * HIDDEN, 3));
  const inputs = ["X", "W", "R", "B", "", ""];
  const feeds: Record<string, HostTensor> = {
    X: { dtype: "float32", shape: [SEQ, BATCH, INPUT], data: values(SEQ * BATCH * INPUT, 4) },
  };
  if (c.sequenceLens) {
    m.input("sequence_lens", "int32", [BATCH]);
    feeds.sequence_lens = { dtype: "int32", shape: [BATCH], data: Int32Array.from(c.sequenceLens) };
    inputs[4] = "sequence_lens";
  }
  if (c.initialState) {
    m.input("initial_h", "float32", [dirs, BATCH, HIDDEN]);
    feeds.initial_h = { dtype: "float32", shape: [dirs, BATCH, HIDDEN], data: values(dirs * BATCH * HIDDEN, 5) };
    inputs[5] = "initial_h";
    if (c.op === "LSTM") {
      m.input("initial_c", "float32", [dirs, BATCH, HIDDEN]);
      feeds.initial_c = { dtype: "float32", shape: [dirs, BATCH, HIDDEN], data: values(dirs * BATCH * HIDDEN, 6) };
      inputs.push("initial_c");
    }
  }
  if (c.peepholes) {
    while (inputs.length < 7) inputs.push("");
    m.initializer("P", "float32", [dirs, 3 * HIDDEN], values(dirs * 3 * HIDDEN, 7));
    inputs.push("P");
  }
  const outputs = c.op === "LSTM" ? ["Y", "Y_h", "Y_c"] : ["Y", "Y_h"];
  m.node(c.op, inputs, outputs, {
    attrs: [attr.int("hidden_size", HIDDEN), attr.string("direction", c.direction), ...(c.attrs ?? [])],
  });
  m.output("Y", "float32", [SEQ, dirs, BATCH, HIDDEN]);
  for (const state of outputs.slice(1)) m.output(state, "float32", [dirs, BATCH, HIDDEN]);
  const onnx = m.toBytes();

  const expected = await runOrt(await createOrtSession(onnx), feeds);
  const { engine } = await build(onnx, { precision: "fp32" });
  const { outputs: actual } = await loadEngine(engine).createContext().run(feeds);
  for (const name of outputs) {
    const got = (actual as Record<string, HostTensor>)[name];
    const want = expected[name];
    if (!got || !want) throw new Error(`${c.op}: output ${name} missing`);
    expect(compareTensors(got, want, `${c.op} ${name}`).relError).toBeLessThanOrEqual(REL_TOLERANCE_FP32);
  }
}

describe("recurrent layers match onnxruntime", () => {
  it("LSTM bidirectional with ragged sequences, initial states and peepholes", async () => {
    await compare({
      op: "LSTM",
      direction: "bidirectional",
      sequenceLens: [5, 2, 4],
      initialState: true,
      peepholes: true,
    });
  });
  it("LSTM reverse with clipping and input_forget", async () => {
    await compare({ op: "LSTM", direction: "reverse", attrs: [attr.float("clip", 0.7), attr.int("input_forget", 1)] });
  });
  it("GRU bidirectional, reset after the recurrent product (linear_before_reset=1)", async () => {
    await compare({
      op: "GRU",
      direction: "bidirectional",
      sequenceLens: [3, 5, 1],
      initialState: true,
      attrs: [attr.int("linear_before_reset", 1)],
    });
  });
  it("GRU reverse, reset before the recurrent product (default)", async () => {
    await compare({ op: "GRU", direction: "reverse", sequenceLens: [4, 4, 2], initialState: true });
  });
  it("RNN bidirectional with a different activation per direction", async () => {
    await compare({
      op: "RNN",
      direction: "bidirectional",
      sequenceLens: [5, 1, 3],
      attrs: [attr.strings("activations", ["Relu", "Tanh"])],
    });
  });
});
