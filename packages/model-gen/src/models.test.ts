// Every family, at small sizes, must be a valid ONNX model that onnxruntime loads and runs, with
// finite outputs of the declared shapes. Full-size defaults are checked for structure only here
// (parameter counts match the published architectures); bench/ runs them.
import { describe, expect, it } from "vitest";
import { encodeModelBytes } from "./onnx/encode.ts";
import { createOrtSession, runOrt } from "./ort.ts";
import { type GenerateOptions, generateModel, generateModelBytes } from "./registry.ts";
import { sampleInputs } from "./tensors.ts";

const SMALL: Record<string, GenerateOptions> = {
  resnet18: { width: 8, imageSize: 64, classes: 10 },
  resnet50: { width: 8, imageSize: 64, classes: 10 },
  mobilenetv2: { width: 0.25, imageSize: 64, classes: 10 },
  bert: { layers: 2, hidden: 64, heads: 4, vocabSize: 100, maxPositions: 64 },
  gpt2: { layers: 2, hidden: 64, heads: 4, vocabSize: 100, maxPositions: 64 },
  vit: { layers: 2, hidden: 64, heads: 4, imageSize: 32, patchSize: 8, classes: 10 },
};

async function runSmall(name: string, options: GenerateOptions, dims = { batch: 2, sequence: 12 }) {
  const model = generateModel(name, options);
  const session = await createOrtSession(encodeModelBytes(model.spec));
  const outputs = await runOrt(session, sampleInputs(model.inputs, dims));
  return { model, outputs };
}

describe.each(Object.entries(SMALL))("%s (small)", (name, options) => {
  for (const opset of [13, 17, 18]) {
    it(`loads and runs in onnxruntime at opset ${opset}`, async () => {
      const { model, outputs } = await runSmall(name, { ...options, opset });
      expect(Object.keys(outputs)).toEqual(model.spec.graph.outputs.map((o) => o.name));
      for (const declared of model.spec.graph.outputs) {
        const t = outputs[declared.name];
        expect(t?.dtype).toBe("float32");
        const expectedShape = declared.shape.map((d) => (d === "batch" ? 2 : d === "sequence" ? 12 : d));
        expect(t?.shape).toEqual(expectedShape);
        const data = t?.data as Float32Array;
        expect(data.every(Number.isFinite)).toBe(true);
        // Random weights must still give non-trivial activations (neither collapsed nor exploding).
        const maxAbs = data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        expect(maxAbs).toBeGreaterThan(1e-3);
        expect(maxAbs).toBeLessThan(1e3);
      }
    });
  }
});

describe("generation", () => {
  it("is deterministic for a seed and changes with it", () => {
    const a = generateModelBytes("bert", { ...SMALL.bert, seed: 1 });
    const b = generateModelBytes("bert", { ...SMALL.bert, seed: 1 });
    const c = generateModelBytes("bert", { ...SMALL.bert, seed: 2 });
    expect(Buffer.compare(Buffer.from(a), Buffer.from(b))).toBe(0);
    expect(Buffer.compare(Buffer.from(a), Buffer.from(c))).not.toBe(0);
  });

  it("writes LayerNorm as the ReduceMean pattern below opset 17 and as LayerNormalization from 17", () => {
    const ops = (opset: number) =>
      new Set(generateModel("bert", { ...SMALL.bert, opset }).spec.graph.nodes.map((n) => n.opType));
    expect(ops(13).has("LayerNormalization")).toBe(false);
    expect(ops(13).has("ReduceMean")).toBe(true);
    expect(ops(17).has("LayerNormalization")).toBe(true);
    expect(ops(17).has("ReduceMean")).toBe(false);
  });

  it("gives the same outputs whichever LayerNorm form or protobuf packing it writes", async () => {
    const dims = { batch: 2, sequence: 12 };
    const model = generateModel("bert", SMALL.bert);
    const feeds = sampleInputs(model.inputs, dims);
    const run = async (opset: number, packed: boolean) =>
      runOrt(await createOrtSession(generateModelBytes("bert", { ...SMALL.bert, opset }, { packed })), feeds);
    const reference = await run(17, false);
    for (const [opset, packed] of [
      [13, true],
      [18, false],
    ] as const) {
      const other = await run(opset, packed);
      const a = reference.last_hidden_state?.data as Float32Array;
      const b = other.last_hidden_state?.data as Float32Array;
      let worst = 0;
      for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs((a[i] as number) - (b[i] as number)));
      expect(worst).toBeLessThan(1e-4);
    }
  });

  it("masks padded positions: changing a padded token does not change the unpadded outputs", async () => {
    const model = generateModel("bert", SMALL.bert);
    const session = await createOrtSession(generateModelBytes("bert", SMALL.bert));
    const feeds = sampleInputs(model.inputs, { batch: 1, sequence: 8 });
    const mask = feeds.attention_mask?.data as BigInt64Array;
    mask.fill(1n);
    mask[7] = 0n;
    const before = (await runOrt(session, feeds)).last_hidden_state?.data as Float32Array;
    (feeds.input_ids?.data as BigInt64Array)[7] = 42n;
    const after = (await runOrt(session, feeds)).last_hidden_state?.data as Float32Array;
    const hidden = 64;
    for (let i = 0; i < 7 * hidden; i++) expect(after[i]).toBeCloseTo(before[i] as number, 5);
  });

  it("is causal: a GPT-2 token's logits do not depend on later tokens", async () => {
    for (const causalMask of ["where", "add"] as const) {
      const options = { ...SMALL.gpt2, causalMask };
      const model = generateModel("gpt2", options);
      const session = await createOrtSession(generateModelBytes("gpt2", options));
      const feeds = sampleInputs(model.inputs, { batch: 1, sequence: 6 });
      const before = (await runOrt(session, feeds)).logits?.data as Float32Array;
      (feeds.input_ids?.data as BigInt64Array)[5] = 3n;
      const after = (await runOrt(session, feeds)).logits?.data as Float32Array;
      const vocab = 100;
      for (let i = 0; i < 5 * vocab; i++) expect(after[i]).toBeCloseTo(before[i] as number, 5);
    }
  });

  it("builds the published full-size architectures", () => {
    // torchvision's parameter counts plus the BatchNorm running mean/var buffers (2 per channel),
    // which are float initializers too.
    const count = (name: string) => generateModel(name).parameterCount;
    expect(count("resnet50")).toBe(25_557_032 + 2 * 26_560);
    expect(count("resnet18")).toBe(11_689_512 + 2 * 4_800);
    expect(count("mobilenetv2")).toBe(3_504_872 + 2 * 17_056);
  });

  it("rejects options that do not apply and bad values", () => {
    expect(() => generateModel("resnet50", { hidden: 64 })).toThrow(/does not apply to resnet50/);
    expect(() => generateModel("resnet50", { layers: 42 })).toThrow(/depth 42/);
    expect(() => generateModel("bert", { layers: 0 })).toThrow(/positive/);
    expect(() => generateModel("bert", { ...SMALL.bert, heads: 5 })).toThrow(/divisible/);
    expect(() => generateModel("bert", { ...SMALL.bert, opset: 12 })).toThrow(/opset 12/);
    expect(() => generateModel("alexnet")).toThrow(/unknown model 'alexnet'/);
  });
});
