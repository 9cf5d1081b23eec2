// MobileNetV2 laid out as torchvision's mobilenet_v2 exports (without Conv+BN folding): a strided
// 3x3 stem, inverted residual blocks (1x1 expand + ReLU6, 3x3 depthwise + ReLU6, 1x1 linear
// projection, residual Add when shapes allow), a 1x1 conv to 1280, GlobalAveragePool, Flatten, Gemm.
// ReLU6 exports as Clip(x, 0, 6) with min/max inputs.
import { attr, type GraphBuilder } from "../graph-builder.ts";
import { batchNorm, conv2d, gemmLinear } from "../layers.ts";
import { DataType, type Dim } from "../onnx/types.ts";
import { IMAGE } from "./inputs.ts";

export interface MobileNetV2Options {
  widthMultiplier: number;
  imageSize: number;
  classes: number;
  batch: Dim;
}

// (expansion t, output channels c, repeats n, first stride s), from the paper's Table 2.
const SETTINGS: readonly (readonly [number, number, number, number])[] = [
  [1, 16, 1, 1],
  [6, 24, 2, 2],
  [6, 32, 3, 2],
  [6, 64, 4, 2],
  [6, 96, 3, 1],
  [6, 160, 3, 2],
  [6, 320, 1, 1],
];

/** torchvision's _make_divisible: round to a multiple of 8, never dropping more than 10%. */
function makeDivisible(v: number, divisor = 8): number {
  let rounded = Math.max(divisor, Math.floor((v + divisor / 2) / divisor) * divisor);
  if (rounded < 0.9 * v) rounded += divisor;
  return rounded;
}

function convBnRelu6(
  g: GraphBuilder,
  x: string,
  cin: number,
  cout: number,
  kernel: number,
  stride: number,
  group = 1,
): string {
  const y = g.scope("0", () => conv2d(g, x, cin, cout, { kernel, stride, group }));
  const z = g.scope("1", () => batchNorm(g, y, cout));
  return g.clip(z, 0, 6);
}

function invertedResidual(
  g: GraphBuilder,
  x: string,
  cin: number,
  cout: number,
  stride: number,
  expand: number,
): string {
  const hidden = Math.round(cin * expand);
  return g.scope("conv", () => {
    let y = x;
    let index = 0;
    if (expand !== 1) {
      y = g.scope(`${index++}`, () => convBnRelu6(g, y, cin, hidden, 1, 1));
    }
    y = g.scope(`${index++}`, () => convBnRelu6(g, y, hidden, hidden, 3, stride, hidden));
    y = g.scope(`${index++}`, () => conv2d(g, y, hidden, cout, { kernel: 1, pad: 0 }));
    // The projection is linear; damp it when it feeds a residual Add so depth does not blow up.
    const useResidual = stride === 1 && cin === cout;
    y = g.scope(`${index++}`, () => batchNorm(g, y, cout, useResidual ? 0.5 : 1));
    return useResidual ? g.op("Add", [x, y]) : y;
  });
}

export function buildMobileNetV2(g: GraphBuilder, o: MobileNetV2Options): void {
  const input = g.input("input", DataType.FLOAT, [o.batch, 3, o.imageSize, o.imageSize], IMAGE);
  let channels = makeDivisible(32 * o.widthMultiplier);
  const lastChannels = makeDivisible(1280 * Math.max(1, o.widthMultiplier));
  let x = "";
  let feature = 0;
  g.scope("features", () => {
    x = g.scope(`${feature++}`, () => convBnRelu6(g, input, 3, channels, 3, 2));
    for (const [t, c, n, s] of SETTINGS) {
      const out = makeDivisible(c * o.widthMultiplier);
      for (let i = 0; i < n; i++) {
        const stride = i === 0 ? s : 1;
        const cin = channels;
        x = g.scope(`${feature++}`, () => invertedResidual(g, x, cin, out, stride, t));
        channels = out;
      }
    }
    x = g.scope(`${feature++}`, () => convBnRelu6(g, x, channels, lastChannels, 1, 1));
  });
  const pooled = g.op("GlobalAveragePool", [x]);
  const flat = g.op("Flatten", [pooled], { axis: attr.int(1) });
  const logits = g.scope("classifier.1", () => gemmLinear(g, flat, lastChannels, o.classes));
  g.output("output", logits, DataType.FLOAT, [o.batch, o.classes]);
}
