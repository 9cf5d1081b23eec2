// Small ONNX models for tests of uploads and builds, written with the engine's ONNX writer.
import { OnnxModel } from "@kiln/engine/testing/onnx-writer";

/** y = relu(x @ W + b), x: float32 [batch, 4]: valid, tiny, one dynamic dim. */
export function denseModel(seed = 1): Uint8Array {
  const w = Float32Array.from({ length: 12 }, (_, i) => ((i * 7 + seed) % 11) / 10 - 0.5);
  return new OnnxModel({ producer: "kiln-tests" })
    .input("x", "float32", ["batch", 4])
    .initializer("W", "float32", [4, 3], w)
    .initializer("b", "float32", [3], Float32Array.from([0.1, -0.2, 0.3]))
    .node("MatMul", ["x", "W"], ["xw"], { name: "matmul" })
    .node("Add", ["xw", "b"], ["xwb"], { name: "add" })
    .node("Relu", ["xwb"], ["y"], { name: "relu" })
    .output("y", "float32", ["batch", 3])
    .toBytes();
}

/**
 * A deep stack of `layers` dense blocks of width `width`: big enough that a CPU build takes a while
 * (each layer is timed during the build), for tests that need a build in progress.
 */
export function deepModel(layers: number, width: number): Uint8Array {
  const model = new OnnxModel({ producer: "kiln-tests" }).input("x", "float32", ["batch", width]);
  let current = "x";
  for (let i = 0; i < layers; i++) {
    const w = Float32Array.from({ length: width * width }, (_, k) => (((k * 31 + i) % 17) - 8) / (8 * width));
    model
      .initializer(`W${i}`, "float32", [width, width], w)
      .initializer(`b${i}`, "float32", [width], new Float32Array(width).fill(0.01))
      .node("MatMul", [current, `W${i}`], [`mm${i}`], { name: `matmul_${i}` })
      .node("Add", [`mm${i}`, `b${i}`], [`add${i}`], { name: `add_${i}` })
      .node("Relu", [`add${i}`], [`h${i}`], { name: `relu_${i}` });
    current = `h${i}`;
  }
  return model.output(current, "float32", ["batch", width]).toBytes();
}

/** A model that uses an operator no engine implements. */
export function unsupportedOperatorModel(): Uint8Array {
  return new OnnxModel()
    .input("x", "float32", [1, 4])
    .node("FancyUnknownOp", ["x"], ["y"], { name: "mystery", domain: "com.example" })
    .output("y", "float32", [1, 4])
    .opset("com.example", 1)
    .toBytes();
}

export { denseCalibration, npyBytes, npzBytes } from "./npz.ts";
