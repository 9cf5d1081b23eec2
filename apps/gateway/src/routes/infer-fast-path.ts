// POST /v2/models/{name}[/versions/{v}]/infer straight from node:http, before Fastify sees it.
// Fastify's per-request machinery (request and reply objects, a child logger, hooks, the router,
// the content-type parser, async-resource bookkeeping) cost about a tenth of the gateway's CPU per
// inference. The answer is the same one the Fastify route gives (answerInference, errorAnswer,
// CORS headers), so the fast path is only a cheaper carrier. It takes only the plain case; anything
// else (another route, a query string, percent-escapes, a chunked or oversized body, an unusual
// content type, a gateway that is closing) goes to Fastify, which answers it as before.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "@kiln/logger";
import type { Done } from "@kiln/serving";
import { CORS_HEADERS } from "../cors.ts";
import { errorAnswer, type HttpAnswer } from "../errors.ts";
import { answerInferenceThen, type InferenceHttpRequest, MAX_BODY_BYTES, type ServingGetter } from "./inference.ts";

// Fastify's router limits a parameter to 100 characters (maxParamLength) and answers 404 past it.
const INFER_PATH = /^\/v2\/models\/([\w.~-]{1,100})(?:\/versions\/([\w.~-]{1,100}))?\/infer$/;

// The CORS headers as [name, value, ...]: each answer's header list starts with a copy.
const CORS_LIST: string[] = Object.entries(CORS_HEADERS).flat();

export function writeAnswer(res: ServerResponse, answer: HttpAnswer): void {
  const { body } = answer;
  const headers: (string | number | readonly string[])[] = CORS_LIST.slice();
  for (const name in answer.headers) {
    const value = answer.headers[name];
    if (value !== undefined) headers.push(name, value);
  }
  headers.push("content-length", typeof body === "string" ? Buffer.byteLength(body) : body.byteLength);
  res.writeHead(answer.status, headers as string[]);
  res.end(body);
}

// Fastify refuses malformed content types with 415; these are the ones clients send.
const isPlainType = (type: string | undefined) =>
  type === undefined || type === "application/json" || type === "application/octet-stream";

function answerWith(serving: ServingGetter, request: InferenceHttpRequest, done: Done<HttpAnswer>): void {
  const got = serving();
  if (got instanceof Promise) {
    got.then(
      (ctx) => answerInferenceThen(ctx, request, done),
      (error: unknown) => done(error),
    );
  } else answerInferenceThen(got, request, done);
}

/**
 * A request listener for the plain inference case: returns false, having touched nothing, for a
 * request it leaves to Fastify.
 */
export function inferFastPath(
  serving: ServingGetter,
  options: { logger: Logger; isClosing: () => boolean },
): (req: IncomingMessage, res: ServerResponse) => boolean {
  const fail = (res: ServerResponse, error: unknown) => writeAnswer(res, errorAnswer(error, options.logger));
  return (req, res) => {
    if (req.method !== "POST" || options.isClosing()) return false;
    const match = INFER_PATH.exec(req.url ?? "");
    if (!match) return false;
    // (Node has built req.headers already: its own request handling reads them.)
    const { headers } = req;
    if (!isPlainType(headers["content-type"]) || headers["transfer-encoding"] !== undefined) return false;
    const declared = headers["content-length"] === undefined ? 0 : Number(headers["content-length"]);
    if (!(declared <= MAX_BODY_BYTES)) return false;

    const startedAt = performance.now();
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const request: InferenceHttpRequest = {
        authorization: headers.authorization,
        headerLength: headers["inference-header-content-length"],
        name: match[1] as string,
        version: match[2],
        body: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks),
        startedAt,
      };
      answerWith(serving, request, (error, reply) =>
        error === null ? writeAnswer(res, reply as HttpAnswer) : fail(res, error),
      );
    });
    // The client went away before its body arrived: nothing to answer.
    req.on("error", () => req.destroy());
    return true;
  };
}
