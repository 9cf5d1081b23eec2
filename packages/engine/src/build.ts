// build(model, options, onProgress) -> engine bytes + report; inspect(model) -> signature.
import { loadAddon, type NativeBuildOptions } from "./addon.ts";
import { KilnEngineError, translate, translateAsync } from "./errors.ts";
import type { BuildOptions, BuildProgress, BuildResult, ModelSignature } from "./types.ts";

/**
 * Builds an engine from ONNX bytes on the libuv thread pool. Progress events arrive on the event
 * loop. Aborting `options.signal` cancels the build (rejects with code CANCELLED).
 */
export async function build(
  model: Uint8Array,
  options: BuildOptions = {},
  onProgress?: (progress: BuildProgress) => void,
): Promise<BuildResult> {
  const addon = loadAddon();
  const { signal, ...rest } = options;
  if (signal?.aborted) throw new KilnEngineError("CANCELLED", "build cancelled");
  const token = new addon.CancelToken();
  const abort = () => token.cancel();
  signal?.addEventListener("abort", abort, { once: true });
  try {
    const native: NativeBuildOptions = rest;
    return await translateAsync(translate(() => addon.build(model, native, onProgress, token)));
  } finally {
    signal?.removeEventListener("abort", abort);
  }
}

/** Validates an ONNX model and describes it (inputs, outputs, operators, unsupported ones). */
export async function inspect(model: Uint8Array, modelDirectory?: string): Promise<ModelSignature> {
  const addon = loadAddon();
  return translateAsync(translate(() => addon.inspect(model, modelDirectory)));
}
