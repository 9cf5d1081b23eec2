// KServe v2 / Open Inference Protocol routes beyond health: server metadata (no key), model
// metadata and readiness, and inference with JSON or binary tensors (Bearer key).
import type { ApiKeyIdentity } from "@kiln/api-keys";
import { type Done, DTYPE_TO_V2, promised, ServingError } from "@kiln/serving";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { HttpAnswer } from "../errors.ts";
import { DeploymentResolver } from "../serving/deployment-resolver.ts";
import { type InferenceAnswer, resolveForKey, runInferenceThen } from "../serving/run-inference.ts";
import type { ServingContext } from "../serving/serving-context.ts";

export const SERVER_NAME = "kiln";
export const SERVER_VERSION = "0.1.0";
export const SERVER_EXTENSIONS = ["binary_tensor_data", "kiln_async_predictions"];
// The largest body any plan allows; each plan's own limit is checked after the key is known (413).
export const MAX_BODY_BYTES = 64 * 1024 * 1024 + 64 * 1024;

type ModelParams = { name: string; version?: string };

const showDims = (shape: readonly (number | string)[] | null) =>
  (shape ?? []).map((d) => (typeof d === "number" ? d : -1));

export type ServingGetter = () => ServingContext | Promise<ServingContext>;

const EMPTY = Buffer.alloc(0);

/** One inference request as either transport (Fastify's route, the fast path) received it. */
export interface InferenceHttpRequest {
  authorization: string | undefined;
  /** The raw Inference-Header-Content-Length header. */
  headerLength: string | string[] | undefined;
  name: string;
  version?: string;
  body: Buffer;
  /** Arrival time (performance.now()). */
  startedAt: number;
}

/** The answer to POST …/infer; errors are thrown (ServingError) for the transport to answer. */
export function answerInference(ctx: ServingContext, req: InferenceHttpRequest): Promise<HttpAnswer> {
  return promised((done) => answerInferenceThen(ctx, req, done));
}

/** answerInference with a callback (see Done): called once, at once for a request refused before the worker hop. */
export function answerInferenceThen(ctx: ServingContext, req: InferenceHttpRequest, done: Done<HttpAnswer>): void {
  const authenticated = ctx.authenticate(req.authorization);
  if (authenticated instanceof Promise) {
    authenticated.then(
      (key) => answerFor(ctx, key, req, done),
      (error: unknown) => done(error),
    );
  } else answerFor(ctx, authenticated, req, done);
}

function answerFor(ctx: ServingContext, key: ApiKeyIdentity, req: InferenceHttpRequest, done: Done<HttpAnswer>): void {
  const rawLength = req.headerLength;
  const headerLength = rawLength === undefined ? undefined : Number(rawLength);
  if (headerLength !== undefined && !Number.isInteger(headerLength)) {
    done(new ServingError("BAD_REQUEST", `Inference-Header-Content-Length '${rawLength}' is not an integer`));
    return;
  }
  runInferenceThen(
    ctx,
    { key, modelName: req.name, version: req.version, body: req.body, headerLength, startedAt: req.startedAt },
    (error, answer) => (error === null ? done(null, httpAnswer(answer as InferenceAnswer)) : done(error)),
  );
}

/**
 * JSON answers up to this size are sent as strings. Node writes a string body together with the
 * response head as one string, one plain socket write; a Buffer body goes out after the head as
 * a second chunk, through the corked writev path, which costs more than decoding a small body
 * (a node:http server answering this way does 5-10% more requests per second: bench/http-answer-body.ts).
 */
const STRING_ANSWER_BYTES = 16 * 1024;

function httpAnswer(answer: InferenceAnswer): HttpAnswer {
  const { encoded } = answer;
  const headers: HttpAnswer["headers"] = { "x-request-id": answer.requestId };
  if (encoded.headerLength !== undefined) {
    headers["content-type"] = "application/octet-stream";
    headers["inference-header-content-length"] = String(encoded.headerLength);
    return { status: 200, headers, body: encoded.body };
  }
  // As Fastify labels a string body (and the error answers): the worker's JSON is UTF-8
  // (JSON.stringify, then Buffer.from), so decoding it loses nothing.
  headers["content-type"] = "application/json; charset=utf-8";
  const { body } = encoded;
  return { status: 200, headers, body: body.byteLength <= STRING_ANSWER_BYTES ? body.toString("utf8") : body };
}

export function inferenceRoutes(app: FastifyInstance, serving: ServingGetter): void {
  app.get("/v2", async () => ({ name: SERVER_NAME, version: SERVER_VERSION, extensions: SERVER_EXTENSIONS }));

  const metadata = async (req: FastifyRequest<{ Params: ModelParams }>) => {
    const ctx = await serving();
    const key = await ctx.authenticate(req.headers.authorization);
    const d = await resolveForKey(ctx, key, req.params.name, req.params.version);
    return {
      name: d.name,
      versions: [d.version],
      platform: "kiln",
      inputs: d.signature.inputs.map((t) => ({
        name: t.name,
        datatype: DTYPE_TO_V2[t.dtype],
        shape: showDims(t.shape),
      })),
      outputs: d.signature.outputs.map((t) => ({
        name: t.name,
        datatype: DTYPE_TO_V2[t.dtype],
        shape: showDims(t.shape),
      })),
    };
  };
  app.get("/v2/models/:name", metadata);
  app.get("/v2/models/:name/versions/:version", metadata);

  // Ready means "a request now would be served" (possibly after a cold start); it never loads anything.
  const ready = async (req: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply) => {
    const ctx = await serving();
    const key = await ctx.authenticate(req.headers.authorization);
    const d = await resolveForKey(ctx, key, req.params.name, req.params.version);
    const isReady = DeploymentResolver.isServable(d);
    const replicas = await ctx.router.readyReplicas(d.served.deploymentId);
    return reply.code(isReady ? 200 : 503).send({ name: d.name, ready: isReady, status: d.status, replicas });
  };
  app.get("/v2/models/:name/ready", ready);
  app.get("/v2/models/:name/versions/:version/ready", ready);

  const infer = async (req: FastifyRequest<{ Params: ModelParams; Body: Buffer }>, reply: FastifyReply) => {
    const startedAt = performance.now();
    const got = serving();
    const ctx = got instanceof Promise ? await got : got;
    const answer = await answerInference(ctx, {
      authorization: req.headers.authorization,
      headerLength: req.headers["inference-header-content-length"],
      name: req.params.name,
      version: req.params.version,
      body: Buffer.isBuffer(req.body) ? req.body : EMPTY,
      startedAt,
    });
    return reply.code(answer.status).headers(answer.headers).send(answer.body);
  };

  // Inference bodies are read raw: JSON or JSON header + binary tensors, decoded by the protocol codec.
  app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: MAX_BODY_BYTES }, (_req, body, done) =>
      done(null, body),
    );
    scope.post("/v2/models/:name/infer", infer);
    scope.post("/v2/models/:name/versions/:version/infer", infer);
  });
}
