// Typed serving errors: each code maps to one HTTP status, so routes never pick statuses by hand.

export const SERVING_ERROR_STATUS = {
  BAD_REQUEST: 400,
  UNAUTHENTICATED: 401,
  PAYMENT_REQUIRED: 402,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  PAYLOAD_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  UNAVAILABLE: 503,
} as const;

export type ServingErrorCode = keyof typeof SERVING_ERROR_STATUS;

export class ServingError extends Error {
  override readonly name = "ServingError";
  constructor(
    readonly code: ServingErrorCode,
    message: string,
    /** Seconds the client should wait before trying again (429 and 503). */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }

  get status(): number {
    return SERVING_ERROR_STATUS[this.code];
  }
}

export const badRequest = (message: string) => new ServingError("BAD_REQUEST", message);
