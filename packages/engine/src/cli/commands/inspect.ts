// kiln inspect model.kiln [--json] [--layers]: what an engine was built for and what it needs.
import { readFile } from "node:fs/promises";
import { UsageError } from "../args.ts";
import type { Engine, EngineApi, Profile, TensorInfo } from "../engine-port.ts";
import { formatBytes, table } from "../stats.ts";

export interface InspectArgs {
  engine: string;
  json: boolean;
  layers: boolean;
}

export async function loadEngineFile(api: EngineApi, path: string): Promise<Engine> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new UsageError(`cannot read engine '${path}': ${(error as Error).message}`);
  }
  return api.loadEngine(bytes);
}

const shapeText = (shape: TensorInfo["shape"]) => `[${shape.map((d) => d ?? "?").join(", ")}]`;

function profileLines(profiles: readonly Profile[]): string[] {
  return profiles.flatMap((p, i) => [
    `  profile ${i}:`,
    ...Object.entries(p).map(
      ([name, r]) => `    ${name}: min ${r.min.join("x")}, opt ${r.opt.join("x")}, max ${r.max.join("x")}`,
    ),
  ]);
}

function field(d: Record<string, unknown>, ...keys: string[]): unknown {
  for (const k of keys) if (d[k] !== undefined) return d[k];
  return undefined;
}

export async function inspectCommand(api: EngineApi, args: InspectArgs, out: (line: string) => void): Promise<void> {
  const engine = await loadEngineFile(api, args.engine);
  const d = engine.describe();
  if (args.json) {
    out(JSON.stringify(d, null, 2));
    return;
  }
  const num = (v: unknown) => (typeof v === "number" ? v : undefined);
  out(`engine: ${args.engine}`);
  out(
    `  target: ${String(field(d, "target") ?? "?")}, backend: ${String(field(d, "backend") ?? "?")}, precision: ${String(field(d, "precision") ?? "?")}`,
  );
  const version = field(d, "builderVersion", "version");
  if (version !== undefined) out(`  built by kiln ${String(version)}`);
  const arena = num(field(d, "deviceMemoryBytes", "activationBytes", "peakMemoryBytes"));
  const weights = num(field(d, "weightBytes"));
  out(
    `  memory: ${arena !== undefined ? `${formatBytes(arena)} activations per context` : "activations ?"}, ${weights !== undefined ? `${formatBytes(weights)} weights` : "weights ?"}`,
  );
  out("inputs:");
  for (const i of engine.inputs) out(`  ${i.name}: ${i.dtype} ${shapeText(i.shape)}`);
  out("outputs:");
  for (const o of engine.outputs) out(`  ${o.name}: ${o.dtype} ${shapeText(o.shape)}`);
  if (engine.profiles.length > 0) {
    out("profiles:");
    for (const line of profileLines(engine.profiles)) out(line);
  }
  const layers = field(d, "layers");
  if (Array.isArray(layers)) {
    const counts = new Map<string, number>();
    for (const l of layers as Record<string, unknown>[]) {
      const op = String(l.opType ?? l.op ?? "?");
      counts.set(op, (counts.get(op) ?? 0) + 1);
    }
    out(
      `layers: ${layers.length} (${[...counts]
        .sort((a, b) => b[1] - a[1])
        .map(([op, n]) => `${op} ${n}`)
        .join(", ")})`,
    );
    if (args.layers) {
      const rows = (layers as Record<string, unknown>[]).map((l) => [
        String(l.name ?? ""),
        String(l.opType ?? l.op ?? ""),
        String(l.kernel ?? ""),
        String(l.outputShape ?? l.shape ?? ""),
      ]);
      for (const line of table(["name", "op", "kernel", "output"], rows).split("\n")) out(`  ${line}`);
    }
  }
}
