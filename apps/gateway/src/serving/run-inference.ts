// One inference request from an authenticated key to an answer: admission (plan standing, size,
// quotas), validation against the signature, routing to a replica, metering. Shared by the
// synchronous KServe route and async predictions.
import { randomUUID } from "node:crypto";
import type { ApiKeyIdentity } from "@kiln/api-keys";
import {
  type Done,
  decodeInferRequest,
  decodeInferResponse,
  type EncodedBody,
  encodeClientResponse,
  encodeInferRequest,
  type InferRequest,
  promised,
  type RoutedAnswer,
  ServingError,
  validateInputs,
  validateOutputs,
} from "@kiln/serving";
import { DeploymentResolver, type ResolvedDeployment } from "./deployment-resolver.ts";
import type { OrgStanding } from "./org-plans.ts";
import type { ServingContext } from "./serving-context.ts";

export interface InferenceCall {
  key: ApiKeyIdentity;
  modelName: string;
  version?: string;
  body: Buffer;
  headerLength?: number;
  /** Arrival time (performance.now()) for latency. */
  startedAt: number;
}

export interface InferenceAnswer {
  requestId: string;
  encoded: EncodedBody;
  computeMs: number;
  batchSize: number;
}

// The request path passes callbacks (Done) rather than promises: with the key, deployment and plan
// cached and a lease holding admissions (nearly every request under load), an inference runs from
// its body to its frame to the worker in one go and from the worker's answer to the client's in
// another, without a promise or an async function's frame of its own in between.

/**
 * Finds the deployment for a key: 404 for unknown or foreign names, 403 for a key bound to another.
 * At once (no promise) when the deployment is cached.
 */
export function resolveForKey(
  ctx: ServingContext,
  key: ApiKeyIdentity,
  name: string,
  version?: string,
): ResolvedDeployment | Promise<ResolvedDeployment> {
  let known: ResolvedDeployment | undefined;
  try {
    known = ctx.deployments.resolveCached(key.orgId, name);
    if (known) return checkFor(key, known, name, version);
  } catch (error) {
    return Promise.reject(error);
  }
  return ctx.deployments.resolve(key.orgId, name).then((d) => checkFor(key, d, name, version));
}

function checkFor(key: ApiKeyIdentity, deployment: ResolvedDeployment, name: string, version?: string) {
  if (key.deploymentId && key.deploymentId !== deployment.served.deploymentId) {
    throw new ServingError("FORBIDDEN", `this API key may only call its own deployment, not '${name}'`);
  }
  if (version !== undefined && version !== deployment.version) {
    throw new ServingError(
      "NOT_FOUND",
      `version ${version} of model '${name}' not found (serving version ${deployment.version})`,
    );
  }
  return deployment;
}

/**
 * Plan standing and request size (in process), then quotas and spend cap (one Redis round trip).
 * With the plan cached, the admission script is queued before this returns (it leaves with the
 * event-loop turn's other commands), without a promise of its own.
 */
export function admit(ctx: ServingContext, orgId: string, bodyBytes: number): Promise<void> {
  try {
    const admitted = admitNow(ctx, orgId, bodyBytes);
    return admitted === true ? Promise.resolve() : admitted;
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * admit, answering `true` at once when the plan is cached and a lease admits the request; plan
 * standing and size refusals are thrown.
 */
function admitNow(ctx: ServingContext, orgId: string, bodyBytes: number): true | Promise<void> {
  const standing = ctx.plans.cached(orgId);
  if (standing === undefined) {
    return ctx.plans.standing(orgId).then((s) => {
      const admitted = admitWith(ctx, orgId, bodyBytes, s);
      return admitted === true ? undefined : admitted;
    });
  }
  return admitWith(ctx, orgId, bodyBytes, standing);
}

function admitWith(ctx: ServingContext, orgId: string, bodyBytes: number, standing: OrgStanding): true | Promise<void> {
  if (standing.paymentProblem) throw new ServingError("PAYMENT_REQUIRED", standing.paymentProblem);
  const maxBytes = standing.plan.limits.maxRequestBytes;
  if (bodyBytes > maxBytes) {
    throw new ServingError(
      "PAYLOAD_TOO_LARGE",
      `request body of ${bodyBytes} bytes exceeds the ${standing.plan.name} plan's ${maxBytes}`,
    );
  }
  return ctx.admission.admitNow(orgId, standing.plan);
}

/** JSON request bodies up to this size go to the worker as they came. */
const PASS_THROUGH_JSON_BYTES = 4096;

export function runInference(ctx: ServingContext, call: InferenceCall): Promise<InferenceAnswer> {
  return promised((done) => runInferenceThen(ctx, call, done));
}

/** runInference with a callback (see Done): called once, at once for a request refused before the worker hop. */
export function runInferenceThen(ctx: ServingContext, call: InferenceCall, done: Done<InferenceAnswer>): void {
  const resolved = resolveForKey(ctx, call.key, call.modelName, call.version);
  if (resolved instanceof Promise) {
    resolved.then(
      (deployment) => runResolved(ctx, call, deployment, done),
      (error: unknown) => done(error),
    );
  } else runResolved(ctx, call, resolved, done);
}

function runResolved(
  ctx: ServingContext,
  call: InferenceCall,
  deployment: ResolvedDeployment,
  done: Done<InferenceAnswer>,
): void {
  if (!DeploymentResolver.isServable(deployment)) {
    done(new ServingError("UNAVAILABLE", `model '${call.modelName}' is ${deployment.status} and cannot serve`, 30));
    return;
  }
  let admitted: true | Promise<void>;
  try {
    admitted = admitNow(ctx, call.key.orgId, call.body.byteLength);
  } catch (error) {
    // Plan standing or size: refused before anything else (as a refusal wins over a bad request).
    done(error);
    return;
  }
  // Decoded, validated and encoded for the worker in the same turn, so the worker hop starts as soon
  // as Redis answers. The answer is the same as admitting first: an admission refusal wins over a
  // bad request, and a bad request that was admitted is a 400 (having counted against the quota).
  let request: InferRequest | undefined;
  let encoded: EncodedBody | undefined;
  let invalid: unknown;
  try {
    request = decodeInferRequest(call.body, call.headerLength);
    validateInputs(request.inputs, deployment.signature);
    validateOutputs(request.outputs, deployment.signature);
    // A small plain JSON body, or one whose inputs are all binary, passes through to the worker as
    // it came (validated above, nothing re-encoded; the worker decodes either form and encodes the
    // client's answer from it: outputs, their form, the request id). Larger JSON bodies are
    // re-encoded as binary (parsing their numbers twice would cost more than the encoding), and so
    // are mixed ones.
    encoded =
      call.headerLength === undefined && call.body.byteLength <= PASS_THROUGH_JSON_BYTES
        ? { body: call.body }
        : request.binaryInputsOnly && call.headerLength !== undefined
          ? { body: call.body, headerLength: call.headerLength }
          : encodeForWorker(request);
  } catch (error) {
    invalid = error;
  }
  if (admitted === true) proceed(ctx, call, deployment, request, encoded, invalid, done);
  else {
    admitted.then(
      () => proceed(ctx, call, deployment, request, encoded, invalid, done),
      (error: unknown) => done(error),
    );
  }
}

/** Admitted: on to the worker, or the request's own error. (A function, not a closure: under tsx, a named closure costs a name definition each time it is created.) */
function proceed(
  ctx: ServingContext,
  call: InferenceCall,
  deployment: ResolvedDeployment,
  request: InferRequest | undefined,
  encoded: EncodedBody | undefined,
  invalid: unknown,
  done: Done<InferenceAnswer>,
): void {
  if (request === undefined || encoded === undefined) done(invalid);
  else forwardThen(ctx, deployment, request, call.body.byteLength, call.startedAt, encoded, done);
}

/** The request with every input in binary, and what the client's answer depends on (id, outputs and their form). */
const encodeForWorker = (request: InferRequest): EncodedBody =>
  encodeInferRequest({
    id: request.id,
    inputs: request.inputs,
    outputs: request.outputs,
    binaryOutputs: request.binaryOutputs,
  });

/**
 * The answered request's latency observation and usage event, queued before the answer and not
 * waited for (with this turn's Redis write, or under load with others within 10 ms): every answered
 * request has exactly one usage event without a round trip on its latency.
 */
function meter(
  ctx: ServingContext,
  series: ReturnType<ServingContext["metrics"]["forDeployment"]>,
  requestId: string,
  orgId: string,
  deploymentId: string,
  answer: { computeMs: number; batchShare: number },
  bytesIn: number,
  bytesOut: number,
  status: "success" | "error",
  startedAt: number,
): void {
  const latencyMs = performance.now() - startedAt;
  series.requestDuration.observe(latencyMs / 1000);
  ctx.admission.record({
    eventId: requestId,
    orgId,
    deploymentId,
    computeMs: answer.computeMs,
    batchShare: answer.batchShare,
    bytesIn,
    bytesOut,
    status,
    latencyMs,
    at: Date.now(),
  });
}

export function forward(
  ctx: ServingContext,
  deployment: ResolvedDeployment,
  request: InferRequest,
  bytesIn: number,
  startedAt: number,
  /** The request already encoded for a worker; default: encoded from `request`. */
  encodedForWorker?: EncodedBody,
): Promise<InferenceAnswer> {
  return promised((done) => {
    let encoded: EncodedBody;
    try {
      encoded = encodedForWorker ?? encodeForWorker(request);
    } catch (error) {
      done(error);
      return;
    }
    forwardThen(ctx, deployment, request, bytesIn, startedAt, encoded, done);
  });
}

/** forward with a callback (see Done) and the request already encoded for the worker. */
function forwardThen(
  ctx: ServingContext,
  deployment: ResolvedDeployment,
  request: InferRequest,
  bytesIn: number,
  startedAt: number,
  encoded: EncodedBody,
  done: Done<InferenceAnswer>,
): void {
  ctx.router.inferThen(
    deployment.served,
    { body: encoded.body, headerLength: encoded.headerLength, model: deployment.model },
    (error, answer) => {
      let result: InferenceAnswer;
      try {
        result = answered(ctx, deployment, request, bytesIn, startedAt, error, answer as RoutedAnswer);
      } catch (failure) {
        done(failure);
        return;
      }
      done(null, result);
    },
  );
}

/** The replica's answer (or failure) as the client's answer: metrics and the usage event, or the error to throw. */
function answered(
  ctx: ServingContext,
  deployment: ResolvedDeployment,
  request: InferRequest,
  bytesIn: number,
  startedAt: number,
  error: Error | null,
  answer: RoutedAnswer,
): InferenceAnswer {
  const { deploymentId, orgId } = deployment.served;
  if (error !== null) {
    const status = error instanceof ServingError ? error.status : 500;
    ctx.metrics.failure.inc({ deployment: deploymentId, status });
    throw error;
  }
  const requestId = randomUUID();
  const series = ctx.metrics.forDeployment(deploymentId);
  if (answer.status !== 200) {
    let message = `replica answered ${answer.status}`;
    try {
      message = (JSON.parse(answer.body.toString()) as { error: string }).error;
    } catch {}
    ctx.metrics.failure.inc({ deployment: deploymentId, status: answer.status });
    meter(ctx, series, requestId, orgId, deploymentId, answer, bytesIn, 0, "error", startedAt);
    throw new ServingError(answer.status === 400 ? "BAD_REQUEST" : "INTERNAL", message);
  }

  // A kiln-mux/2 worker encoded the client's answer; a worker over plain HTTP answered every output
  // in binary, and the answer is encoded here.
  const clientAnswer: EncodedBody = answer.isClientAnswer
    ? { body: answer.body, headerLength: answer.headerLength }
    : encodeClientResponse(request, deployment.model, decodeInferResponse(answer.body, answer.headerLength).outputs);
  series.success.inc();
  series.computeDuration.observe(answer.computeMs / 1000);
  series.queueDuration.observe(answer.queueMs / 1000);
  series.batchSize.observe(answer.batchSize);
  meter(
    ctx,
    series,
    requestId,
    orgId,
    deploymentId,
    answer,
    bytesIn,
    clientAnswer.body.byteLength,
    "success",
    startedAt,
  );
  return { requestId, encoded: clientAnswer, computeMs: answer.computeMs, batchSize: answer.batchSize };
}
