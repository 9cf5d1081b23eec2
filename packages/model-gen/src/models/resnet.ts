// ResNet-18/34/50/101/152 laid out as torchvision's ResNet exports in eval mode without Conv+BN
// folding (so the engine's BatchNorm folding pass has work to do): Conv, BatchNormalization, Relu,
// MaxPool, basic or bottleneck blocks with a downsample branch, GlobalAveragePool, Flatten, Gemm.
import { attr, type GraphBuilder } from "../graph-builder.ts";
import { batchNorm, conv2d, gemmLinear } from "../layers.ts";
import { DataType, type Dim } from "../onnx/types.ts";
import { IMAGE } from "./inputs.ts";

export interface ResNetOptions {
  depth: number;
  /** Channels of the first stage (64 in the paper); smaller for quick tests. */
  baseWidth: number;
  imageSize: number;
  classes: number;
  batch: Dim;
}

export const RESNET_BLOCKS: Readonly<Record<number, { bottleneck: boolean; blocks: readonly number[] }>> = {
  18: { bottleneck: false, blocks: [2, 2, 2, 2] },
  34: { bottleneck: false, blocks: [3, 4, 6, 3] },
  50: { bottleneck: true, blocks: [3, 4, 6, 3] },
  101: { bottleneck: true, blocks: [3, 4, 23, 3] },
  152: { bottleneck: true, blocks: [3, 8, 36, 3] },
};

// Damps each residual branch's last BatchNorm so 16+ random blocks keep activations O(1..10).
const RESIDUAL_BN_SCALE = 0.3;

function convBn(
  g: GraphBuilder,
  x: string,
  cin: number,
  cout: number,
  index: number,
  kernel: number,
  stride: number,
  bnScale = 1,
): string {
  const y = g.scope(`conv${index}`, () => conv2d(g, x, cin, cout, { kernel, stride }));
  return g.scope(`bn${index}`, () => batchNorm(g, y, cout, bnScale));
}

function downsample(g: GraphBuilder, x: string, cin: number, cout: number, stride: number): string {
  return g.scope("downsample", () => {
    const y = g.scope("0", () => conv2d(g, x, cin, cout, { kernel: 1, stride, pad: 0 }));
    return g.scope("1", () => batchNorm(g, y, cout));
  });
}

function basicBlock(g: GraphBuilder, x: string, cin: number, width: number, stride: number): string {
  let y = g.op("Relu", [convBn(g, x, cin, width, 1, 3, stride)]);
  y = convBn(g, y, width, width, 2, 3, 1, RESIDUAL_BN_SCALE);
  const identity = stride !== 1 || cin !== width ? downsample(g, x, cin, width, stride) : x;
  return g.op("Relu", [g.op("Add", [y, identity])]);
}

function bottleneckBlock(g: GraphBuilder, x: string, cin: number, width: number, stride: number): string {
  const cout = width * 4;
  let y = g.op("Relu", [convBn(g, x, cin, width, 1, 1, 1)]);
  // torchvision (v1.5) strides in the 3x3 conv.
  y = g.op("Relu", [convBn(g, y, width, width, 2, 3, stride)]);
  y = convBn(g, y, width, cout, 3, 1, 1, RESIDUAL_BN_SCALE);
  const identity = stride !== 1 || cin !== cout ? downsample(g, x, cin, cout, stride) : x;
  return g.op("Relu", [g.op("Add", [y, identity])]);
}

export function buildResNet(g: GraphBuilder, o: ResNetOptions): void {
  const spec = RESNET_BLOCKS[o.depth];
  if (spec === undefined)
    throw new Error(`ResNet depth ${o.depth} is not one of ${Object.keys(RESNET_BLOCKS).join(", ")}`);
  const input = g.input("input", DataType.FLOAT, [o.batch, 3, o.imageSize, o.imageSize], IMAGE);
  let x = g.scope("conv1", () => conv2d(g, input, 3, o.baseWidth, { kernel: 7, stride: 2, pad: 3 }));
  x = g.op("Relu", [g.scope("bn1", () => batchNorm(g, x, o.baseWidth))]);
  x = g.scope("maxpool", () =>
    g.op("MaxPool", [x], {
      ceil_mode: attr.int(0),
      kernel_shape: attr.ints([3, 3]),
      pads: attr.ints([1, 1, 1, 1]),
      strides: attr.ints([2, 2]),
    }),
  );
  let channels = o.baseWidth;
  spec.blocks.forEach((count, stage) => {
    const width = o.baseWidth * 2 ** stage;
    g.scope(`layer${stage + 1}`, () => {
      for (let b = 0; b < count; b++) {
        const stride = b === 0 && stage > 0 ? 2 : 1;
        x = g.scope(`${b}`, () =>
          spec.bottleneck ? bottleneckBlock(g, x, channels, width, stride) : basicBlock(g, x, channels, width, stride),
        );
        channels = spec.bottleneck ? width * 4 : width;
      }
    });
  });
  const pooled = g.op("GlobalAveragePool", [x]);
  const flat = g.op("Flatten", [pooled], { axis: attr.int(1) });
  const logits = g.scope("fc", () => gemmLinear(g, flat, channels, o.classes));
  g.output("output", logits, DataType.FLOAT, [o.batch, o.classes]);
}
