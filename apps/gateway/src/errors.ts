// Every error leaves the gateway as {"error": "..."} with the status its code maps to.
import { ServingError } from "@kiln/serving";
import type { FastifyError, FastifyInstance } from "fastify";

export function errorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError | ServingError, req, reply) => {
    if (error instanceof ServingError) {
      if (error.retryAfterSeconds !== undefined) reply.header("retry-after", String(error.retryAfterSeconds));
      return reply.code(error.status).send({ error: error.message });
    }
    const status = (error as FastifyError).statusCode;
    if (status !== undefined && status >= 400 && status < 500) {
      const message =
        status === 413
          ? `request body exceeds the gateway's limit of ${req.routeOptions.bodyLimit} bytes`
          : error.message;
      return reply.code(status).send({ error: message });
    }
    req.log.error({ err: error }, "request failed");
    return reply.code(500).send({ error: "internal error" });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: `no route ${req.method} ${req.url}` }));
}
