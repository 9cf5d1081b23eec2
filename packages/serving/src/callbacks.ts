// The serving path's callback style: the gateway's and the worker's per-request code passes
// callbacks (called once with `null` and a value, or the error) instead of a promise per hop, and
// keeps a promise form of each step for the callers that await.

/** Called once with the value (`error` null) or the error the step failed with. */
export type Done<T, E = unknown> = (error: E | null, value?: T) => void;

/** The promise form of a callback-style step. */
export function promised<T, E = unknown>(start: (done: Done<T, E>) => void): Promise<T> {
  return new Promise((resolve, reject) =>
    start((error, value) => (error === null ? resolve(value as T) : reject(error))),
  );
}

/**
 * Calls `done`; an exception it throws is rethrown on its own, so that it cannot break the caller's
 * loop (a connection's reading, a batch's other requests).
 */
export function callApart<T, E>(done: Done<T, E>, error: E | null, value?: T): void {
  try {
    done(error, value);
  } catch (thrown) {
    queueMicrotask(() => {
      throw thrown;
    });
  }
}
