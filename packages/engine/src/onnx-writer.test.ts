import { describe, expect, it } from "vitest";
import { inspect } from "./index.ts";
import { attr, OnnxGraph, OnnxModel, tensorProto } from "./testing/onnx-writer.ts";

describe("testing/onnx-writer", () => {
  it("writes models the native reader accepts, with attributes and subgraphs", async () => {
    const then = new OnnxGraph("then").node("Identity", ["a"], ["t"]).output("t", "float32", [2]);
    const other = new OnnxGraph("else").node("Neg", ["a"], ["e"]).output("e", "float32", [2]);
    const model = new OnnxModel({ opset: 17 })
      .input("a", "float32", [2])
      .input("cond", "bool", [])
      .node("If", ["cond"], ["r"], { attrs: [attr.graph("then_branch", then), attr.graph("else_branch", other)] })
      .node("Softmax", ["r"], ["s"], { attrs: [attr.int("axis", -1)] })
      .node("Constant", [], ["k"], { attrs: [attr.tensor("value", tensorProto("", "int64", [2], BigInt64Array.from([1n, 2n])))] })
      .output("s", "float32", [2])
      .output("k", "int64", [2])
      .toBytes();
    const sig = await inspect(model);
    expect(sig.inputs.map((i) => i.name)).toEqual(["a", "cond"]);
    expect(sig.inputs[1]).toEqual({ name: "cond", dtype: "bool", shape: [] });
    expect(sig.operators).toEqual(expect.arrayContaining(["If", "Softmax", "Constant"]));
    expect(sig.opsets[""]).toBe(17);
  });

  it("encodes varints, floats and strings as protobuf does", () => {
    // ModelProto { ir_version: 8, producer_name: "p", graph: { name: "g" }, opset_import: { version: 1 } }
    const bytes = new OnnxModel({ opset: 1, producer: "p", name: "g" }).toBytes();
    expect(Array.from(bytes)).toEqual([0x08, 0x08, 0x12, 0x01, 0x70, 0x3a, 0x03, 0x12, 0x01, 0x67, 0x42, 0x04, 0x0a, 0x00, 0x10, 0x01]);
  });
});
