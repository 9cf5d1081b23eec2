// Engines and execution contexts: loadEngine(bytes) -> Engine -> createContext() -> Context.run().
import { loadAddon, type NativeContext, type NativeEngine } from "./addon.ts";
import { toEngineError, translate } from "./errors.ts";
import type { EngineDescription, Precision, Profile, RunResult, Tensor, TensorInfo } from "./types.ts";

/** Runs measured below this on the CPU backend execute on the calling thread (see Context). */
export const INLINE_RUN_MS = 0.2;

/**
 * An execution context: its own activation memory (exactly engine.deviceMemoryBytes, allocated
 * once). Runs execute off the event loop, on the thread pool, except on the CPU backend where the
 * context's runs have measured under INLINE_RUN_MS (a moving average, after a first run on the
 * pool): those execute on the calling thread, since the pool's hop (a queue, two wake-ups, a
 * promise) costs more than such a run. Runs on one context are queued and execute one at a time (a
 * queued run reads its input arrays when it starts); create several contexts to run in parallel.
 */
export class Context {
  #tail: Promise<unknown> = Promise.resolve();
  #queued = 0;
  #averageMs = Number.POSITIVE_INFINITY;
  #inlineRuns = 0;
  readonly #onCpu: boolean;

  constructor(
    readonly engine: Engine,
    private readonly native: NativeContext,
  ) {
    this.#onCpu = engine.backend === "cpu";
  }

  /** How many runs executed on the calling thread (metrics, tests). */
  get inlineRuns(): number {
    return this.#inlineRuns;
  }

  run(inputs: Record<string, Tensor>): Promise<RunResult> {
    if (this.#queued === 0 && this.#onCpu && this.#averageMs < INLINE_RUN_MS) {
      try {
        const result = this.native.runSync(inputs);
        this.#inlineRuns++;
        this.#observe(result.computeMs);
        return Promise.resolve(result);
      } catch (error) {
        return Promise.reject(toEngineError(error));
      }
    }
    this.#queued++;
    const result = this.#tail.then(async () => {
      try {
        const done = await this.native.run(inputs);
        this.#observe(done.computeMs);
        return done;
      } catch (error) {
        throw toEngineError(error);
      } finally {
        this.#queued--;
      }
    });
    // The queue continues after a failed run.
    this.#tail = result.catch(() => undefined);
    return result;
  }

  #observe(computeMs: number): void {
    this.#averageMs = Number.isFinite(this.#averageMs) ? 0.8 * this.#averageMs + 0.2 * computeMs : computeMs;
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
