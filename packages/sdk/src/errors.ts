/** An error answer from Kiln: the HTTP status and the server's {"error"} message. */
export class KilnApiError extends Error {
  override readonly name = "KilnApiError";
  constructor(
    readonly status: number,
    message: string,
    /** Seconds the server asked to wait (429, 503). */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

export class WebhookVerificationError extends Error {
  override readonly name = "WebhookVerificationError";
}
