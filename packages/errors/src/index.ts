// Kiln's domain errors. Domain functions throw a KilnError with a code; each transport (tRPC,
// HTTP route handlers, the gateway) maps the code to its own status, so the same function serves
// the dashboard, the public API and the job handlers.

export const ERROR_CODES = {
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  PAYMENT_REQUIRED: 402,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNPROCESSABLE_CONTENT: 422,
  TOO_MANY_REQUESTS: 429,
  INTERNAL_SERVER_ERROR: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class KilnError extends Error {
  override readonly name = "KilnError";
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  get httpStatus(): number {
    return ERROR_CODES[this.code];
  }
}

/** A row that does not exist or belongs to another organization: both answer the same 404. */
export function notFound(what: string, id: string): KilnError {
  return new KilnError("NOT_FOUND", `${what} ${id} not found`);
}

export function isKilnError(error: unknown, code?: ErrorCode): error is KilnError {
  return error instanceof KilnError && (code === undefined || error.code === code);
}
