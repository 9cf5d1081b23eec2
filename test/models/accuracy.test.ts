// Kiln's fp32 CPU engine against onnxruntime on every generated model family: each output's
// worst absolute error over the reference's max-abs must be <= 1e-4 (see model-gen's compare.ts
// for why that metric). Small variants keep the suite fast; ResNet-50 and BERT-base run full size.
import { describe, expect, it } from "vitest";
import { type AccuracyCase, describeAccuracy, measureAccuracy, REL_TOLERANCE_FP32 } from "./harness.ts";

const IMAGE_BATCH = { batch: { min: 1, opt: 2, max: 4 } };
const TEXT_DIMS = { batch: { min: 1, opt: 2, max: 4 }, sequence: { min: 1, opt: 16, max: 64 } };
const TEXT_RUNS = [
  { batch: 2, sequence: 16 },
  { batch: 1, sequence: 7 },
];
const IMAGE_RUNS = [{ batch: 2 }, { batch: 1 }];

const SMALL: Record<string, AccuracyCase> = {
  "resnet18 (width 8, 64px)": {
    model: "resnet18",
    options: { width: 8, imageSize: 64, classes: 10 },
    dims: IMAGE_BATCH,
    runs: IMAGE_RUNS,
  },
  "resnet50 (width 8, 64px)": {
    model: "resnet50",
    options: { width: 8, imageSize: 64, classes: 10 },
    dims: IMAGE_BATCH,
    runs: IMAGE_RUNS,
  },
  "mobilenetv2 (x0.25, 64px)": {
    model: "mobilenetv2",
    options: { width: 0.25, imageSize: 64, classes: 10 },
    dims: IMAGE_BATCH,
    runs: IMAGE_RUNS,
  },
  "bert (2 layers, opset 17: LayerNormalization)": {
    model: "bert",
    options: { layers: 2, hidden: 64, heads: 4, vocabSize: 100, maxPositions: 64, opset: 17 },
    dims: TEXT_DIMS,
    runs: TEXT_RUNS,
  },
  "bert (2 layers, opset 13: LayerNorm pattern)": {
    model: "bert",
    options: { layers: 2, hidden: 64, heads: 4, vocabSize: 100, maxPositions: 64, opset: 13 },
    dims: TEXT_DIMS,
    runs: TEXT_RUNS,
  },
  "gpt2 (2 layers, Where mask)": {
    model: "gpt2",
    options: { layers: 2, hidden: 64, heads: 4, vocabSize: 100, maxPositions: 64, causalMask: "where" },
    dims: TEXT_DIMS,
    runs: TEXT_RUNS,
  },
  "gpt2 (2 layers, additive mask, opset 13)": {
    model: "gpt2",
    options: { layers: 2, hidden: 64, heads: 4, vocabSize: 100, maxPositions: 64, causalMask: "add", opset: 13 },
    dims: TEXT_DIMS,
    runs: TEXT_RUNS,
  },
  "vit (2 layers, 32px)": {
    model: "vit",
    options: { layers: 2, hidden: 64, heads: 4, imageSize: 32, patchSize: 8, classes: 10 },
    dims: IMAGE_BATCH,
    runs: IMAGE_RUNS,
  },
};

const FULL: Record<string, AccuracyCase> = {
  "resnet50 (full size, 224px)": {
    model: "resnet50",
    options: {},
    dims: { batch: { min: 1, opt: 1, max: 1 } },
    runs: [{ batch: 1 }],
  },
  "bert-base (full size, seq 128)": {
    model: "bert",
    options: {},
    dims: { batch: { min: 1, opt: 1, max: 1 }, sequence: { min: 1, opt: 128, max: 128 } },
    runs: [{ batch: 1, sequence: 128 }],
  },
};

describe("Kiln fp32 matches onnxruntime", () => {
  for (const [label, c] of Object.entries(SMALL)) {
    it(label, async () => {
      for (const r of await measureAccuracy(c)) {
        console.log(describeAccuracy(label, r));
        expect(r.relError, describeAccuracy(label, r)).toBeLessThanOrEqual(REL_TOLERANCE_FP32);
      }
    });
  }
  for (const [label, c] of Object.entries(FULL)) {
    it(label, { timeout: 600_000 }, async () => {
      for (const r of await measureAccuracy(c)) {
        console.log(describeAccuracy(label, r));
        expect(r.relError, describeAccuracy(label, r)).toBeLessThanOrEqual(REL_TOLERANCE_FP32);
      }
    });
  }
});
