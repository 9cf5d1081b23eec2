// Browsers (the dashboard's playground, customers' web apps) call the API with a Bearer key and
// no cookies, so any origin may: the key, not the origin, is what authorizes a request.
import type { FastifyInstance } from "fastify";

/** Sent with every answer (the inference fast path writes them itself). */
export const CORS_HEADERS = {
  "access-control-allow-origin": "*",
  "access-control-expose-headers": "inference-header-content-length, x-request-id, retry-after",
} as const;

const PREFLIGHT_HEADERS = {
  "access-control-allow-methods": "GET, POST, OPTIONS",
  "access-control-allow-headers": "authorization, content-type, inference-header-content-length, prefer",
  "access-control-max-age": "600",
} as const;

export function cors(app: FastifyInstance): void {
  // A plain (not async) hook: one less promise per request.
  app.addHook("onRequest", (req, reply, done) => {
    reply.headers(CORS_HEADERS);
    if (req.method === "OPTIONS") {
      reply.headers(PREFLIGHT_HEADERS).code(204).send();
      return;
    }
    done();
  });
}
