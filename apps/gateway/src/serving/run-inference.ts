// One inference request from an authenticated key to an answer: admission (plan standing, size,
// quotas), validation against the signature, routing to a replica, metering. Shared by the
// synchronous KServe route and async predictions.
import { randomUUID } from "node:crypto";
import type { ApiKeyIdentity } from "@kiln/api-keys";
import {
  decodeInferRequest,
  decodeInferResponse,
  type EncodedBody,
  encodeClientResponse,
  encodeInferRequest,
  type InferRequest,
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
  const standing = ctx.plans.cached(orgId);
  if (standing === undefined) return ctx.plans.standing(orgId).then((s) => admitWith(ctx, orgId, bodyBytes, s));
  try {
    return admitWith(ctx, orgId, bodyBytes, standing);
  } catch (error) {
    return Promise.reject(error);
  }
}

function admitWith(ctx: ServingContext, orgId: string, bodyBytes: number, standing: OrgStanding): Promise<void> {
  if (standing.paymentProblem) throw new ServingError("PAYMENT_REQUIRED", standing.paymentProblem);
  const maxBytes = standing.plan.limits.maxRequestBytes;
  if (bodyBytes > maxBytes) {
    throw new ServingError(
      "PAYLOAD_TOO_LARGE",
      `request body of ${bodyBytes} bytes exceeds the ${standing.plan.name} plan's ${maxBytes}`,
    );
  }
  return ctx.admission.admit(orgId, standing.plan);
}

/** JSON request bodies up to this size go to the worker as they came. */
const PASS_THROUGH_JSON_BYTES = 4096;

export async function runInference(ctx: ServingContext, call: InferenceCall): Promise<InferenceAnswer> {
  const resolved = resolveForKey(ctx, call.key, call.modelName, call.version);
  const deployment = resolved instanceof Promise ? await resolved : resolved;
  if (!DeploymentResolver.isServable(deployment)) {
    throw new ServingError("UNAVAILABLE", `model '${call.modelName}' is ${deployment.status} and cannot serve`, 30);
  }
  const admitted = admit(ctx, call.key.orgId, call.body.byteLength);
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
  await admitted;
  if (request === undefined || encoded === undefined) throw invalid;
  return forward(ctx, deployment, request, call.body.byteLength, call.startedAt, encoded);
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
  void ctx.admission.meter({
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

export async function forward(
  ctx: ServingContext,
  deployment: ResolvedDeployment,
  request: InferRequest,
  bytesIn: number,
  startedAt: number,
  /** The request already encoded for a worker; default: encoded from `request`. */
  encodedForWorker?: EncodedBody,
): Promise<InferenceAnswer> {
  const requestId = randomUUID();
  const { deploymentId, orgId } = deployment.served;
  const series = ctx.metrics.forDeployment(deploymentId);
  const encoded = encodedForWorker ?? encodeForWorker(request);
  let answer: Awaited<ReturnType<ServingContext["router"]["infer"]>>;
  try {
    answer = await ctx.router.infer(deployment.served, {
      body: encoded.body,
      headerLength: encoded.headerLength,
      model: deployment.model,
    });
  } catch (error) {
    const status = error instanceof ServingError ? error.status : 500;
    ctx.metrics.failure.inc({ deployment: deploymentId, status });
    throw error;
  }

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
