// POST /v2/models/{name}[/versions/{v}]/infer straight from node:http, before Fastify sees it.
// Fastify's per-request machinery (request and reply objects, a child logger, hooks, the router,
// the content-type parser, async-resource bookkeeping) cost about a tenth of the gateway's CPU per
// inference. The answer is the same one the Fastify route gives (answerInference, errorAnswer,
// CORS headers), so the fast path is only a cheaper carrier. It takes only the plain case; anything
// else (another route, a query string, percent-escapes, a chunked or oversized body, an unusual
// content type, a gateway that is closing) goes to Fastify, which answers it as before.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "@kiln/logger";
import { CORS_HEADERS } from "../cors.ts";
import { errorAnswer, type HttpAnswer } from "../errors.ts";
import { answerInference, type InferenceHttpRequest, MAX_BODY_BYTES, type ServingGetter } from "./inference.ts";

// Fastify's router limits a parameter to 100 characters (maxParamLength) and answers 404 past it.
const INFER_PATH = /^\/v2\/models\/([\w.~-]{1,100})(?:\/versions\/([\w.~-]{1,100}))?\/infer$/;
// Fastify refuses malformed content types with 415; these are the ones clients send.
const PLAIN_TYPES = new Set([undefined, "application/json", "application/octet-stream"]);

export function writeAnswer(res: ServerResponse, answer: HttpAnswer): void {
  res.writeHead(answer.status, {
    ...CORS_HEADERS,
    ...answer.headers,
    "content-length": String(Buffer.byteLength(answer.body)),
  });
  res.end(answer.body);
}

async function answer(serving: ServingGetter, request: InferenceHttpRequest): Promise<HttpAnswer> {
  const got = serving();
  return answerInference(got instanceof Promise ? await got : got, request);
}

/**
 * A request listener for the plain inference case: returns false, having touched nothing, for a
 * request it leaves to Fastify.
 */
export function inferFastPath(
  serving: ServingGetter,
  options: { logger: Logger; isClosing: () => boolean },
): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    if (req.method !== "POST" || options.isClosing()) return false;
    const match = INFER_PATH.exec(req.url ?? "");
    if (!match) return false;
    const { headers } = req;
    if (!PLAIN_TYPES.has(headers["content-type"]) || headers["transfer-encoding"] !== undefined) return false;
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
      answer(serving, request).then(
        (reply) => writeAnswer(res, reply),
        (error: unknown) => writeAnswer(res, errorAnswer(error, options.logger)),
      );
    });
    // The client went away before its body arrived: nothing to answer.
    req.on("error", () => req.destroy());
    return true;
  };
}
