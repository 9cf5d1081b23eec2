// Errors from the native engine carry a code (native/src/core/error.h errorCodeName) so callers can
// branch on it, e.g. map SHAPE_MISMATCH to HTTP 400 and ENGINE_MISMATCH to a rebuild.

export const ENGINE_ERROR_CODES = [
  "INVALID_MODEL",
  "UNSUPPORTED_OP",
  "INVALID_ARGUMENT",
  "SHAPE_MISMATCH",
  "DTYPE_MISMATCH",
  "ENGINE_MISMATCH",
  "OUT_OF_MEMORY",
  "CANCELLED",
  "INTERNAL",
  "ADDON_NOT_BUILT",
] as const;

export type EngineErrorCode = (typeof ENGINE_ERROR_CODES)[number];

export class KilnEngineError extends Error {
  override readonly name = "KilnEngineError";
  constructor(
    readonly code: EngineErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

function isCode(code: unknown): code is EngineErrorCode {
  return typeof code === "string" && (ENGINE_ERROR_CODES as readonly string[]).includes(code);
}

/** Turns whatever the addon threw into a KilnEngineError (keeping the code it set). */
export function toEngineError(error: unknown): KilnEngineError {
  if (error instanceof KilnEngineError) return error;
  if (error instanceof Error) {
    const code = (error as Error & { code?: unknown }).code;
    if (isCode(code)) return new KilnEngineError(code, error.message, { cause: error });
    // A TypeError from a bad call (wrong argument type) is the caller's mistake, not Kiln's.
    const fallback = error instanceof TypeError ? "INVALID_ARGUMENT" : "INTERNAL";
    return new KilnEngineError(fallback, error.message, { cause: error });
  }
  return new KilnEngineError("INTERNAL", String(error));
}

/** Runs `fn`, rethrowing its failure as a KilnEngineError. */
export function translate<T>(fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    throw toEngineError(error);
  }
}

export async function translateAsync<T>(promise: Promise<T>): Promise<T> {
  try {
    return await promise;
  } catch (error) {
    throw toEngineError(error);
  }
}
