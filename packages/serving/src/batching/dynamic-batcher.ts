// Dynamic batching for one replica: requests queue up while the engine is busy or for at most
// maxQueueDelayMs, then run as one batch of at most maxBatchSize rows (and no more than the
// engine's profile allows), and each caller gets its own rows back.
import type { Context, RunResult, Tensor, TensorInfo } from "@kiln/engine";
import { callApart, type Done, promised } from "../callbacks.ts";
import { batchKey, concatRows, rowsOf, splitRows } from "./batch-tensors.ts";

export interface BatchPolicy {
  maxBatchSize: number;
  maxQueueDelayMs: number;
}

export interface BatchedResult {
  outputs: Record<string, Tensor>;
  /** This request's share of the batch's compute time (its rows over the batch's rows). */
  computeMs: number;
  /** Rows in the batch that carried this request. */
  batchSize: number;
  /** This request's rows over the batch's rows. */
  batchShare: number;
  queueMs: number;
}

/** Called once with the request's result (`error` null) or the error its run failed with. */
export type BatchCallback = Done<BatchedResult>;

type Pending = {
  inputs: Record<string, Tensor>;
  rows: number;
  key: string;
  enqueuedAt: number;
  done: BatchCallback;
  /** Settled already (a callback runs once, as a promise settles once). */
  settled: boolean;
};

/** Calls a request's callback once; an exception it throws is rethrown on its own (its batch-mates still get theirs). */
function settle(p: Pending, error: unknown, result?: BatchedResult): void {
  if (p.settled) return;
  p.settled = true;
  callApart(p.done, error, result);
}

export interface BatchObserver {
  onBatch?(batch: { size: number; requests: number; computeMs: number }): void;
}

/**
 * Whether requests to an engine can be joined on dim 0: every input and output must have a
 * symbolic (dynamic) first dim, otherwise rows of different requests could not be told apart.
 */
export function isBatchable(inputs: TensorInfo[], outputs: TensorInfo[]): boolean {
  const dynamicFirst = (t: TensorInfo) => t.shape !== null && t.shape.length > 0 && typeof t.shape[0] === "string";
  return inputs.length > 0 && inputs.every(dynamicFirst) && outputs.every(dynamicFirst);
}

export class DynamicBatcher {
  readonly #queue: Pending[] = [];
  #running = false;
  #timer: NodeJS.Timeout | undefined;
  readonly #batchable: boolean;
  readonly #maxRows: number;

  constructor(
    private readonly context: Context,
    private readonly policy: BatchPolicy,
    private readonly observer: BatchObserver = {},
  ) {
    const engine = context.engine;
    this.#batchable = policy.maxBatchSize > 1 && isBatchable(engine.inputs, engine.outputs);
    // The batch may not exceed what every profile allows on dim 0 of every input.
    const profileMax = Math.min(
      ...engine.profiles.flatMap((p) => Object.values(p).map((range) => range.max[0] ?? Number.POSITIVE_INFINITY)),
    );
    this.#maxRows = Math.max(1, Math.min(policy.maxBatchSize, profileMax));
  }

  get queueDepth(): number {
    return this.#queue.length + (this.#running ? 1 : 0);
  }

  run(inputs: Record<string, Tensor>): Promise<BatchedResult> {
    return promised((done) => this.runThen(inputs, done));
  }

  /**
   * run with a callback, called once and never before this returns: the worker's request path
   * runs from the request frame to its answer frame without a promise per request.
   */
  runThen(inputs: Record<string, Tensor>, done: BatchCallback): void {
    const rows = this.#batchable ? rowsOf(inputs) : 1;
    this.#queue.push({ inputs, rows, key: batchKey(inputs), enqueuedAt: performance.now(), done, settled: false });
    // Decided once the caller's synchronous work is done (a microtask, no wait): requests that
    // arrive together (one read of the worker's connection carries several) start as one batch,
    // instead of the first running alone and the rest after it.
    if (this.#isDeciding) return;
    this.#isDeciding = true;
    queueMicrotask(this.#decide);
  }

  #isDeciding = false;
  readonly #decide = () => {
    this.#isDeciding = false;
    this.#schedule();
  };

  #schedule(): void {
    if (this.#running || this.#queue.length === 0) return;
    const head = this.#queue[0] as Pending;
    const waited = performance.now() - head.enqueuedAt;
    const queuedRows = this.#queue.reduce((n, p) => (p.key === head.key ? n + p.rows : n), 0);
    if (!this.#batchable || queuedRows >= this.#maxRows || waited >= this.policy.maxQueueDelayMs) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      void this.#runBatch();
      return;
    }
    this.#timer ??= setTimeout(
      () => {
        this.#timer = undefined;
        this.#schedule();
      },
      Math.max(0, this.policy.maxQueueDelayMs - waited),
    );
  }

  /** Takes the head request and every later one with the same shapes that still fits. */
  #take(): Pending[] {
    const head = this.#queue.shift() as Pending;
    const batch = [head];
    if (!this.#batchable) return batch;
    let rows = head.rows;
    for (let i = 0; i < this.#queue.length && rows < this.#maxRows; ) {
      const p = this.#queue[i] as Pending;
      if (p.key === head.key && rows + p.rows <= this.#maxRows) {
        batch.push(p);
        rows += p.rows;
        this.#queue.splice(i, 1);
      } else i++;
    }
    return batch;
  }

  async #runBatch(): Promise<void> {
    this.#running = true;
    const batch = this.#take();
    const started = performance.now();
    try {
      if (batch.length === 1) {
        // Alone in its batch: no joining or splitting copies.
        const p = batch[0] as Pending;
        const result = await this.context.run(p.inputs);
        this.observer.onBatch?.({ size: p.rows, requests: 1, computeMs: result.computeMs });
        settle(p, null, {
          outputs: result.outputs,
          computeMs: result.computeMs,
          batchSize: p.rows,
          batchShare: 1,
          queueMs: started - p.enqueuedAt,
        });
        return;
      }
      const names = Object.keys(batch[0]?.inputs ?? {});
      const joined = Object.fromEntries(names.map((n) => [n, concatRows(batch.map((p) => p.inputs[n] as Tensor))]));
      const result: RunResult = await this.context.run(joined);
      const rows = batch.map((p) => p.rows);
      const total = rows.reduce((a, b) => a + b, 0);
      const split = Object.entries(result.outputs).map(([name, t]) => [name, splitRows(t, rows)] as const);
      this.observer.onBatch?.({ size: total, requests: batch.length, computeMs: result.computeMs });
      batch.forEach((p, i) => {
        settle(p, null, {
          outputs: Object.fromEntries(split.map(([name, parts]) => [name, parts[i] as Tensor])),
          computeMs: (result.computeMs * p.rows) / total,
          batchSize: total,
          batchShare: p.rows / total,
          queueMs: started - p.enqueuedAt,
        });
      });
    } catch (error) {
      if (batch.length === 1) settle(batch[0] as Pending, error);
      // One bad request must not fail its batch-mates: run each alone to find out whose it was.
      else for (const p of batch) await this.#runAlone(p);
    } finally {
      this.#running = false;
      this.#schedule();
    }
  }

  async #runAlone(p: Pending): Promise<void> {
    const started = performance.now();
    try {
      const result = await this.context.run(p.inputs);
      this.observer.onBatch?.({ size: p.rows, requests: 1, computeMs: result.computeMs });
      settle(p, null, {
        outputs: result.outputs,
        computeMs: result.computeMs,
        batchSize: p.rows,
        batchShare: 1,
        queueMs: started - p.enqueuedAt,
      });
    } catch (error) {
      settle(p, error);
    }
  }

  /** Fails everything still queued (the replica is going away). */
  close(reason: Error): void {
    clearTimeout(this.#timer);
    for (const p of this.#queue.splice(0)) settle(p, reason);
  }
}
