// Every error leaves the gateway as {"error": "..."} with the status its code maps to.
import type { OutgoingHttpHeaders } from "node:http";
import type { Logger } from "@kiln/logger";
import { ServingError } from "@kiln/serving";
import type { FastifyError, FastifyInstance } from "fastify";

/** An HTTP answer but its Content-Length, for routes that write it themselves (the inference fast path). */
export interface HttpAnswer {
  status: number;
  headers: OutgoingHttpHeaders;
  body: Buffer | string;
}

// What Fastify's serializer sends with an object body; the fast path sends the same.
const JSON_ERROR_TYPE = "application/json; charset=utf-8";

/**
 * The answer for a serving error, or for any other error (logged, 500). Fastify's error handler
 * and the inference fast path both answer with it, so a status, its body and Retry-After do not
 * depend on which of them carried the request.
 */
export function errorAnswer(error: unknown, log: Pick<Logger, "error">): HttpAnswer {
  const headers: OutgoingHttpHeaders = {};
  let status = 500;
  let message = "internal error";
  if (error instanceof ServingError) {
    if (error.retryAfterSeconds !== undefined) headers["retry-after"] = String(error.retryAfterSeconds);
    status = error.status;
    message = error.message;
  } else {
    log.error({ err: error }, "request failed");
  }
  const body = JSON.stringify({ error: message });
  headers["content-type"] = JSON_ERROR_TYPE;
  return { status, headers, body };
}

export function errorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError | ServingError, req, reply) => {
    const status = (error as FastifyError).statusCode;
    if (!(error instanceof ServingError) && status !== undefined && status >= 400 && status < 500) {
      const message =
        status === 413
          ? `request body exceeds the gateway's limit of ${req.routeOptions.bodyLimit} bytes`
          : error.message;
      return reply.code(status).send({ error: message });
    }
    const answer = errorAnswer(error, req.log);
    return reply.code(answer.status).headers(answer.headers).send(answer.body);
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: `no route ${req.method} ${req.url}` }));
}
