// Module-level building blocks shared by the generators, each emitting the node pattern PyTorch's
// exporter produces for the corresponding nn.Module, with initial weights that keep activations
// in a realistic range (He init for conv stacks, N(0, 0.02) for transformers, as their papers do).
import { attr, type GraphBuilder } from "./graph-builder.ts";

export interface ConvOptions {
  kernel: number;
  stride?: number;
  pad?: number;
  group?: number;
  bias?: boolean;
}

/** nn.Conv2d: Conv with OIHW weights, He-normal (fan_in) so ReLU stacks keep unit variance. */
export function conv2d(g: GraphBuilder, x: string, inChannels: number, outChannels: number, o: ConvOptions): string {
  const group = o.group ?? 1;
  if (inChannels % group !== 0 || outChannels % group !== 0) {
    throw new Error(`conv: channels ${inChannels}->${outChannels} not divisible by group ${group}`);
  }
  const stride = o.stride ?? 1;
  const pad = o.pad ?? Math.floor(o.kernel / 2);
  const fanIn = (inChannels / group) * o.kernel * o.kernel;
  const w = g.rng.fillNormal(new Float32Array(outChannels * fanIn), Math.sqrt(2 / fanIn));
  const inputs = [x, g.parameter("weight", [outChannels, inChannels / group, o.kernel, o.kernel], w)];
  if (o.bias)
    inputs.push(g.parameter("bias", [outChannels], g.rng.fillUniform(new Float32Array(outChannels), -0.05, 0.05)));
  return g.op("Conv", inputs, {
    dilations: attr.ints([1, 1]),
    group: attr.int(group),
    kernel_shape: attr.ints([o.kernel, o.kernel]),
    pads: attr.ints([pad, pad, pad, pad]),
    strides: attr.ints([stride, stride]),
  });
}

/**
 * nn.BatchNorm2d in eval mode with plausible running statistics. `gammaScale` below 1 damps a
 * residual branch (like zero-init-residual training leaves it), so a 50-layer stack of random
 * blocks does not grow its activations without bound.
 */
export function batchNorm(g: GraphBuilder, x: string, channels: number, gammaScale = 1): string {
  const rng = g.rng;
  const gamma = new Float32Array(channels);
  const beta = new Float32Array(channels);
  const mean = new Float32Array(channels);
  const variance = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    gamma[c] = rng.uniform(0.7, 1.3) * gammaScale;
    beta[c] = rng.normal() * 0.1;
    mean[c] = rng.normal() * 0.1;
    variance[c] = rng.uniform(0.8, 1.6);
  }
  return g.op(
    "BatchNormalization",
    [
      x,
      g.parameter("weight", [channels], gamma),
      g.parameter("bias", [channels], beta),
      g.parameter("running_mean", [channels], mean),
      g.parameter("running_var", [channels], variance),
    ],
    { epsilon: attr.float(1e-5), momentum: attr.float(0.9) },
  );
}

/** nn.Linear on a 2-D input: Gemm with transB=1 (weight stored [out, in]), as the exporter writes it. */
export function gemmLinear(g: GraphBuilder, x: string, inFeatures: number, outFeatures: number, std?: number): string {
  const s = std ?? 1 / Math.sqrt(inFeatures);
  const w = g.rng.fillTruncatedNormal(new Float32Array(outFeatures * inFeatures), s);
  const b = g.rng.fillUniform(new Float32Array(outFeatures), -0.02, 0.02);
  return g.op("Gemm", [x, g.parameter("weight", [outFeatures, inFeatures], w), g.parameter("bias", [outFeatures], b)], {
    alpha: attr.float(1),
    beta: attr.float(1),
    transB: attr.int(1),
  });
}

/** nn.Linear on a 3-D input: MatMul with the weight stored transposed ([in, out]) then Add bias. */
export function matmulLinear(g: GraphBuilder, x: string, inFeatures: number, outFeatures: number, std = 0.02): string {
  const w = g.rng.fillTruncatedNormal(new Float32Array(inFeatures * outFeatures), std);
  const b = g.rng.fillUniform(new Float32Array(outFeatures), -0.02, 0.02);
  const y = g.op("MatMul", [x, g.parameter("weight", [inFeatures, outFeatures], w)]);
  return g.op("Add", [g.parameter("bias", [outFeatures], b), y]);
}

/**
 * nn.LayerNorm over the last axis. At opset 17+ PyTorch writes LayerNormalization; below it writes
 * the decomposition ReduceMean, Sub, Pow, ReduceMean, Add(eps), Sqrt, Div, Mul(gamma), Add(beta),
 * which the engine's LayerNorm fusion must recognise.
 */
export function layerNorm(g: GraphBuilder, x: string, hidden: number, epsilon: number): string {
  const gamma = g.parameter("weight", [hidden], g.rng.fillUniform(new Float32Array(hidden), 0.9, 1.1));
  const beta = g.parameter("bias", [hidden], g.rng.fillUniform(new Float32Array(hidden), -0.05, 0.05));
  if (g.opset >= 17) {
    return g.op("LayerNormalization", [x, gamma, beta], { axis: attr.int(-1), epsilon: attr.float(epsilon) });
  }
  const mean = g.reduceMean(x, [-1]);
  const centered = g.op("Sub", [x, mean]);
  const squared = g.op("Pow", [centered, g.constFloat([2])]);
  const variance = g.reduceMean(squared, [-1]);
  const std = g.op("Sqrt", [g.op("Add", [variance, g.constFloat([epsilon])])]);
  const normalized = g.op("Div", [centered, std]);
  return g.op("Add", [g.op("Mul", [normalized, gamma]), beta]);
}

/** Exact GELU, x * 0.5 * (1 + erf(x / sqrt(2))), as nn.GELU() exports: Div, Erf, Add, Mul, Mul. */
export function geluErf(g: GraphBuilder, x: string): string {
  const erf = g.op("Erf", [g.op("Div", [x, g.constFloat([Math.SQRT2])])]);
  const onePlus = g.op("Add", [erf, g.constFloat([1])]);
  return g.op("Mul", [g.op("Mul", [x, onePlus]), g.constFloat([0.5])]);
}

/** GPT-2's gelu_new: 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3))). */
export function geluTanh(g: GraphBuilder, x: string): string {
  const half = g.op("Mul", [g.constFloat([0.5]), x]);
  const cube = g.op("Pow", [x, g.constFloat([3])]);
  const inner = g.op("Add", [x, g.op("Mul", [g.constFloat([0.044715]), cube])]);
  const tanh = g.op("Tanh", [g.op("Mul", [g.constFloat([Math.sqrt(2 / Math.PI)]), inner])]);
  return g.op("Mul", [half, g.op("Add", [g.constFloat([1]), tanh])]);
}
