// Tiny models shared by this package's tests (and usable by others): built with the ONNX writer.
import { OnnxModel } from "./onnx-writer.ts";

export const DENSE_W = Float32Array.from([0.5, -1, 0.25, 1, 0.5, -0.5, -0.25, 0.75, 1.5, 2, -1.5, 0]);
export const DENSE_B = Float32Array.from([0.1, -0.2, 0.3]);

/** y = relu(x @ W + b) with x: float32 [batch, 4], W: [4, 3]. */
export function denseModel(): Uint8Array {
  return new OnnxModel()
    .input("x", "float32", ["batch", 4])
    .initializer("W", "float32", [4, 3], DENSE_W)
    .initializer("b", "float32", [3], DENSE_B)
    .node("MatMul", ["x", "W"], ["xw"], { name: "matmul" })
    .node("Add", ["xw", "b"], ["xwb"], { name: "add" })
    .node("Relu", ["xwb"], ["y"], { name: "relu" })
    .output("y", "float32", ["batch", 3])
    .toBytes();
}

/** The reference of denseModel in plain TypeScript. */
export function denseReference(x: Float32Array, batch: number): Float32Array {
  const y = new Float32Array(batch * 3);
  for (let r = 0; r < batch; r++) {
    for (let c = 0; c < 3; c++) {
      let acc = DENSE_B[c] as number;
      for (let k = 0; k < 4; k++) acc += (x[r * 4 + k] as number) * (DENSE_W[k * 3 + c] as number);
      y[r * 3 + c] = Math.max(acc, 0);
    }
  }
  return y;
}

/** A profile for denseModel's batch dimension. */
export function denseProfile(min: number, opt: number, max: number) {
  return { x: { min: [min, 4], opt: [opt, 4], max: [max, 4] } };
}
