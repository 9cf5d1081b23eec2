// One inference request from an authenticated key to an answer: admission (plan standing, size,
// quotas), validation against the signature, routing to a replica, metering. Shared by the
// synchronous KServe route and async predictions.
import { randomUUID } from "node:crypto";
import type { ApiKeyIdentity } from "@kiln/api-keys";
import { checkSpendCap, recordComputeUsage, type SpendCapDeps } from "@kiln/billing";
import { recordUsageIn } from "@kiln/metering";
import {
  decodeInferRequest,
  decodeInferResponse,
  type EncodedBody,
  encodeInferRequest,
  encodeInferResponse,
  type InferRequest,
  ServingError,
  validateInputs,
  validateOutputs,
} from "@kiln/serving";
import { DeploymentResolver, type ResolvedDeployment } from "./deployment-resolver.ts";
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

/** Finds the deployment for a key: 404 for unknown or foreign names, 403 for a key bound to another. */
export async function resolveForKey(
  ctx: ServingContext,
  key: ApiKeyIdentity,
  name: string,
  version?: string,
): Promise<ResolvedDeployment> {
  const deployment = await ctx.deployments.resolve(key.orgId, name);
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

/** Plan standing, request size and quotas, in that order (cheapest refusal first). */
export async function admit(ctx: ServingContext, orgId: string, bodyBytes: number): Promise<void> {
  const standing = await ctx.plans.standing(orgId);
  if (standing.paymentProblem) throw new ServingError("PAYMENT_REQUIRED", standing.paymentProblem);
  const maxBytes = standing.plan.limits.maxRequestBytes;
  if (bodyBytes > maxBytes) {
    throw new ServingError(
      "PAYLOAD_TOO_LARGE",
      `request body of ${bodyBytes} bytes exceeds the ${standing.plan.name} plan's ${maxBytes}`,
    );
  }
  const admission = await ctx.quotas.admit(orgId, standing.plan);
  if (!admission.admitted) throw new ServingError("RATE_LIMITED", admission.message, admission.retryAfterSeconds);
  // Last, because it counts the request toward the period's projected spend when it lets it through.
  const spend = await checkSpendCap(spendDeps(ctx), orgId);
  if (!spend.allowed) {
    throw new ServingError(
      "PAYMENT_REQUIRED",
      `projected spend this period ($${(spend.projectedCents / 100).toFixed(2)}) would pass the organization's ` +
        `spend cap of $${((spend.capCents ?? 0) / 100).toFixed(2)}: raise the cap in the dashboard's billing page`,
    );
  }
}

function spendDeps(ctx: ServingContext): SpendCapDeps {
  return { prisma: ctx.prisma, redis: ctx.redis, redisKeyPrefix: ctx.settings.keyPrefix };
}

export async function runInference(ctx: ServingContext, call: InferenceCall): Promise<InferenceAnswer> {
  const deployment = await resolveForKey(ctx, call.key, call.modelName, call.version);
  if (!DeploymentResolver.isServable(deployment)) {
    throw new ServingError("UNAVAILABLE", `model '${call.modelName}' is ${deployment.status} and cannot serve`, 30);
  }
  await admit(ctx, call.key.orgId, call.body.byteLength);
  const request = decodeInferRequest(call.body, call.headerLength);
  validateInputs(request.inputs, deployment.signature);
  validateOutputs(request.outputs, deployment.signature);
  return forward(ctx, deployment, request, call.body.byteLength, call.startedAt);
}

export async function forward(
  ctx: ServingContext,
  deployment: ResolvedDeployment,
  request: InferRequest,
  bytesIn: number,
  startedAt: number,
): Promise<InferenceAnswer> {
  const requestId = randomUUID();
  const { deploymentId, orgId } = deployment.served;
  const labels = { deployment: deploymentId };
  let answer: Awaited<ReturnType<ServingContext["router"]["infer"]>>;
  try {
    answer = await ctx.router.infer(deployment.served, encodeInferRequest({ inputs: request.inputs }));
  } catch (error) {
    const status = error instanceof ServingError ? error.status : 500;
    ctx.metrics.failure.inc({ deployment: deploymentId, status });
    throw error;
  }

  // Awaited before answering: every answered request has its usage event, so metered equals answered.
  const meter = async (status: "success" | "error", bytesOut: number) => {
    const latencyMs = performance.now() - startedAt;
    ctx.metrics.requestDuration.observe(labels, latencyMs / 1000);
    // One round trip: the usage event and the month's compute charge, as one transaction.
    const tx = recordUsageIn(ctx.redis.multi(), ctx.settings.keyPrefix, {
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
    if (answer.computeMs > 0) ctx.quotas.chargeComputeIn(tx, orgId, answer.computeMs);
    await Promise.all([
      tx.exec(),
      answer.computeMs > 0 ? recordComputeUsage(spendDeps(ctx), orgId, Math.round(answer.computeMs)) : undefined,
    ]).catch((err) => ctx.logger.error({ err, requestId, deploymentId }, "usage event not recorded"));
  };

  if (answer.status !== 200) {
    let message = `replica answered ${answer.status}`;
    try {
      message = (JSON.parse(answer.body.toString()) as { error: string }).error;
    } catch {}
    ctx.metrics.failure.inc({ deployment: deploymentId, status: answer.status });
    await meter("error", 0);
    throw new ServingError(answer.status === 400 ? "BAD_REQUEST" : "INTERNAL", message);
  }

  const decoded = decodeInferResponse(answer.body, answer.headerLength);
  const wanted = request.outputs;
  const outputs = wanted ? decoded.outputs.filter((o) => wanted.some((w) => w.name === o.name)) : decoded.outputs;
  const binary = (name: string) => wanted?.find((w) => w.name === name)?.binary ?? request.binaryOutputs;
  const encoded = encodeInferResponse(
    { modelName: deployment.name, modelVersion: deployment.version, id: request.id, outputs },
    binary,
  );
  ctx.metrics.success.inc(labels);
  ctx.metrics.computeDuration.observe(labels, answer.computeMs / 1000);
  ctx.metrics.queueDuration.observe(labels, answer.queueMs / 1000);
  ctx.metrics.batchSize.observe(labels, answer.batchSize);
  await meter("success", encoded.body.byteLength);
  return { requestId, encoded, computeMs: answer.computeMs, batchSize: answer.batchSize };
}
