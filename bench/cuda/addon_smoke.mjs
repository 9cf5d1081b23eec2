// The Node addon on the CUDA backend, end to end (GPU machine): builds an ONNX model for cuda at
// fp16 and fp32, loads it, runs it and checks that the result carries gpuTimeMs and matches the
// CPU engine. Usage: node bench/cuda/addon_smoke.mjs <addon.node> <model.onnx> <input name> <d0xd1x...>
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const [addonPath, modelPath, inputName, shapeSpec] = process.argv.slice(2);
const addon = createRequire(import.meta.url)(addonPath);
const model = new Uint8Array(readFileSync(modelPath));
const shape = shapeSpec.split("x").map(Number);
const data = new Float32Array(shape.reduce((a, b) => a * b, 1)).map((_, i) => Math.sin(i * 0.37));
const flags = addon.buildFlags();
console.log(
  "buildFlags",
  JSON.stringify({ cuda: flags.cuda, cudaVersion: flags.cudaVersion, backends: flags.backends }),
);

async function runOn(backend, precision) {
  const { engine } = await addon.build(model, { backend, precision });
  const loaded = addon.loadEngine(engine);
  const ctx = loaded.createContext();
  const result = await ctx.run({ [inputName]: { dtype: "float32", shape, data } });
  const out = Object.values(result.outputs)[0];
  return {
    target: loaded.target,
    deviceMemoryBytes: loaded.deviceMemoryBytes,
    out,
    computeMs: result.computeMs,
    gpuTimeMs: result.gpuTimeMs,
  };
}

const cpu = await runOn("cpu", "fp32");
let failed = false;
for (const precision of ["fp32", "fp16"]) {
  const gpu = await runOn("cuda", precision);
  let maxRef = 0;
  let maxDiff = 0;
  for (let i = 0; i < cpu.out.data.length; i++) {
    maxRef = Math.max(maxRef, Math.abs(cpu.out.data[i]));
    maxDiff = Math.max(maxDiff, Math.abs(cpu.out.data[i] - gpu.out.data[i]));
  }
  const relErr = maxDiff / maxRef;
  const ok = typeof gpu.gpuTimeMs === "number" && gpu.gpuTimeMs > 0 && relErr < (precision === "fp16" ? 1e-2 : 1e-3);
  failed ||= !ok;
  console.log(
    JSON.stringify({
      precision,
      target: gpu.target,
      gpuTimeMs: gpu.gpuTimeMs,
      computeMs: gpu.computeMs,
      deviceMemoryBytes: gpu.deviceMemoryBytes,
      relErrVsCpu: relErr,
      cpuGpuTimeMs: cpu.gpuTimeMs ?? null,
      ok,
    }),
  );
}
process.exit(failed ? 1 : 0);
