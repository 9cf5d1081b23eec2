// Engines and execution contexts: loadEngine(bytes) -> Engine -> createContext() -> Context.run().
import { loadAddon, type NativeContext, type NativeEngine } from "./addon.ts";
import { toEngineError, translate } from "./errors.ts";
import type { EngineDescription, Precision, Profile, RunResult, Tensor, TensorInfo } from "./types.ts";

/**
 * An execution context: its own activation memory (exactly engine.deviceMemoryBytes, allocated
 * once). Runs execute off the event loop. Runs on one context are queued and execute one at a
 * time (a queued run reads its input arrays when it starts); create several contexts to run in
 * parallel.
 */
export class Context {
  #tail: Promise<unknown> = Promise.resolve();

  constructor(
    readonly engine: Engine,
    private readonly native: NativeContext,
  ) {}

  run(inputs: Record<string, Tensor>): Promise<RunResult> {
    const result = this.#tail.then(async () => {
      try {
        return await this.native.run(inputs);
      } catch (error) {
        throw toEngineError(error);
      }
    });
    // The queue continues after a failed run.
    this.#tail = result.catch(() => undefined);
    return result;
  }
}

/** A loaded engine: weights and kernels shared by all of its contexts. */
export class Engine {
  constructor(private readonly native: NativeEngine) {}

  get inputs(): TensorInfo[] {
    return this.native.inputs;
  }
  get outputs(): TensorInfo[] {
    return this.native.outputs;
  }
  get profiles(): Profile[] {
    return this.native.profiles;
  }
  get backend(): string {
    return this.native.backend;
  }
  /** The target the engine is bound to, e.g. "cpu-x86_64-avx2". */
  get target(): string {
    return this.native.target;
  }
  get precision(): Precision {
    return this.native.precision as Precision;
  }
  /** Exact activation memory of one context, in bytes. */
  get deviceMemoryBytes(): number {
    return this.native.deviceMemoryBytes;
  }
  get weightBytes(): number {
    return this.native.weightBytes;
  }
  /** Header, inputs/outputs, profiles, memory plan and layers (what `kiln inspect` shows). */
  describe(): EngineDescription {
    return JSON.parse(translate(() => this.native.describe())) as EngineDescription;
  }
  createContext(): Context {
    return new Context(
      this,
      translate(() => this.native.createContext()),
    );
  }
}

/**
 * Loads a serialized engine. Throws KilnEngineError with code ENGINE_MISMATCH when it was built for
 * another target or builder version, or when the bytes are corrupt.
 */
export function loadEngine(bytes: Uint8Array): Engine {
  const addon = loadAddon();
  return new Engine(translate(() => addon.loadEngine(bytes)));
}
