// kiln inspect model.kiln [--json] [--layers]: what an engine was built for and what it needs.
import { readFile } from "node:fs/promises";
import { CliError } from "../args.ts";
import type { EngineApi, EngineHandle, Profile, TensorInfo } from "../engine-port.ts";
import { formatBytes, table } from "../stats.ts";

export interface InspectArgs {
  engine: string;
  json: boolean;
  layers: boolean;
}

export async function loadEngineFile(api: EngineApi, path: string): Promise<EngineHandle> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new CliError(`cannot read engine '${path}': ${(error as Error).message}`);
  }
  return api.loadEngine(bytes);
}

export const shapeText = (shape: TensorInfo["shape"]) => (shape === null ? "(unknown rank)" : `[${shape.join(", ")}]`);

function profileLines(profiles: readonly Profile[]): string[] {
  return profiles.flatMap((p, i) => [
    `  profile ${i}:`,
    ...Object.entries(p).map(
      ([name, r]) => `    ${name}: min ${r.min.join("x")}, opt ${r.opt.join("x")}, max ${r.max.join("x")}`,
    ),
  ]);
}

/** A nested field of the description, or undefined where the engine does not say. */
function at(d: unknown, ...path: string[]): unknown {
  let v = d;
  for (const key of path) {
    if (typeof v !== "object" || v === null) return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}

const str = (v: unknown) => (v === undefined ? "?" : String(v));

export async function inspectCommand(api: EngineApi, args: InspectArgs, out: (line: string) => void): Promise<void> {
  const engine = await loadEngineFile(api, args.engine);
  const d = engine.describe();
  if (args.json) {
    out(JSON.stringify(d, null, 2));
    return;
  }
  out(`engine: ${args.engine}`);
  // Field names follow Engine::describeJson (native/src/runtime/describe.cc).
  out(`  target: ${str(at(d, "target"))}, backend: ${str(at(d, "backend"))}, precision: ${str(at(d, "precision"))}`);
  out(
    `  built by kiln ${str(at(d, "builderVersion"))}, format ${str(at(d, "format", "version"))}; this runtime ${str(at(d, "runtimeVersion"))}`,
  );
  const opsets = at(d, "opsets");
  if (typeof opsets === "object" && opsets !== null) {
    out(
      `  opsets: ${Object.entries(opsets)
        .map(([domain, v]) => `${domain === "" ? "ai.onnx" : domain} ${v}`)
        .join(", ")}`,
    );
  }
  const arena = at(d, "memory", "deviceMemoryBytes");
  const weights = at(d, "memory", "weightBytes");
  out(
    `  memory: ${typeof arena === "number" ? formatBytes(arena) : "?"} activations per context, ` +
      `${typeof weights === "number" ? formatBytes(weights) : "?"} weights`,
  );
  const nodesBefore = at(d, "build", "nodesBefore");
  const nodesAfter = at(d, "build", "nodesAfter");
  if (nodesBefore !== undefined) out(`  build: ${str(nodesBefore)} -> ${str(nodesAfter)} nodes`);
  const fusions = at(d, "build", "fusions");
  if (typeof fusions === "object" && fusions !== null && Object.keys(fusions).length > 0) {
    out(
      `  fusions: ${Object.entries(fusions)
        .map(([name, n]) => `${name} x${n}`)
        .join(", ")}`,
    );
  }
  const warnings = at(d, "build", "warnings");
  if (Array.isArray(warnings)) for (const w of warnings) out(`  warning: ${String(w)}`);
  out("inputs:");
  for (const i of engine.inputs) out(`  ${i.name}: ${i.dtype} ${shapeText(i.shape)}`);
  out("outputs:");
  for (const o of engine.outputs) out(`  ${o.name}: ${o.dtype} ${shapeText(o.shape)}`);
  if (engine.profiles.length > 0) {
    out("profiles:");
    for (const line of profileLines(engine.profiles)) out(line);
  }
  const layers = at(d, "layers");
  if (Array.isArray(layers)) {
    const entries = layers as Record<string, unknown>[];
    const counts = new Map<string, number>();
    for (const l of entries) counts.set(str(l.op), (counts.get(str(l.op)) ?? 0) + 1);
    const byCount = [...counts].sort((a, b) => b[1] - a[1]);
    out(`layers: ${entries.length} (${byCount.map(([op, n]) => `${op} ${n}`).join(", ")})`);
    if (args.layers) {
      const rows = entries.map((l) => [
        str(l.name),
        str(l.op),
        str(l.kernel),
        typeof l.outputShape === "string" ? l.outputShape : "",
        typeof l.timeMs === "number" ? l.timeMs.toFixed(3) : "",
      ]);
      for (const line of table(["name", "op", "kernel", "output", "ms"], rows).split("\n")) out(`  ${line}`);
    }
  }
}
