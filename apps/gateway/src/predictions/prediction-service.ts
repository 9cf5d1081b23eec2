// Async predictions end to end: accept (validate, store inputs, write the row, enqueue), process
// (route to a replica like a synchronous request, store outputs), notify (signed webhooks with
// retries), expire. Every step is idempotent so BullMQ may repeat any of them after a crash.
import { randomUUID } from "node:crypto";
import type { ApiKeyIdentity } from "@kiln/api-keys";
import { newId, type PrismaClient } from "@kiln/db";
import {
  bullPrefix,
  checkWebhookUrl,
  decodeInferRequest,
  type InferRequest,
  postWebhook,
  ServingError,
  SIGNATURE_HEADER,
  signWebhook,
  validateInputs,
  validateOutputs,
  WebhookTargetRefusedError,
  webhookSecretFor,
} from "@kiln/serving";
import type { StorageProvider } from "@kiln/storage";
import { Worker as BullWorker, Queue, UnrecoverableError } from "bullmq";
import { admit, forward, resolveForKey } from "../serving/run-inference.ts";
import type { ServingContext } from "../serving/serving-context.ts";
import { deleteExpired, loadInputs, loadOutputs, saveInputs, saveOutputs } from "./prediction-store.ts";

export interface PredictionSettings {
  /** How long a prediction and its tensors are kept after creation. */
  retentionMs: number;
  /** Server key from which each organization's webhook secret is derived. */
  webhookSigningKey: string;
  webhookTimeoutMs: number;
  /** KILN_WEBHOOK_ALLOW_PRIVATE: webhooks may target private, loopback and link-local addresses. */
  webhookAllowPrivate: boolean;
}

type PredictionJob = { predictionId: string; orgId: string };
type WebhookJob = { predictionId: string; orgId: string; url: string; deliveryId: string };

const TERMINAL = new Set(["succeeded", "failed", "canceled"]);
type PredictionRow = Awaited<ReturnType<PrismaClient["prediction"]["findUniqueOrThrow"]>>;

export interface PredictionView {
  id: string;
  model: string;
  status: string;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  expires_at: string;
  outputs?: unknown[];
  error?: string;
}

export class PredictionService {
  readonly #queue: Queue<PredictionJob>;
  readonly #webhooks: Queue<WebhookJob>;
  readonly #workers: BullWorker[] = [];
  #sweep: NodeJS.Timeout | undefined;

  constructor(
    private readonly ctx: ServingContext,
    private readonly storage: StorageProvider,
    private readonly settings: PredictionSettings,
  ) {
    const connection = ctx.redis.duplicate({
      maxRetriesPerRequest: null,
      enableOfflineQueue: true,
      enableAutoPipelining: false,
    });
    const prefix = bullPrefix(ctx.settings.keyPrefix);
    this.#queue = new Queue("predictions", { connection, prefix });
    this.#webhooks = new Queue("prediction-webhooks", { connection, prefix });
  }

  /** Starts processing predictions and webhooks in this process, and the recovery/expiry sweep. */
  start(): void {
    const prefix = bullPrefix(this.ctx.settings.keyPrefix);
    const connection = () =>
      this.ctx.redis.duplicate({ maxRetriesPerRequest: null, enableOfflineQueue: true, enableAutoPipelining: false });
    this.#workers.push(
      new BullWorker<PredictionJob>("predictions", (job) => this.#process(job.data), {
        connection: connection(),
        prefix,
        concurrency: 32,
      }),
      new BullWorker<WebhookJob>("prediction-webhooks", (job) => this.#deliver(job.data), {
        connection: connection(),
        prefix,
        concurrency: 8,
      }),
    );
    for (const w of this.#workers) w.on("error", (err) => this.ctx.logger.warn({ err }, "prediction worker error"));
    this.#sweep = setInterval(() => {
      this.sweep().catch((err) => this.ctx.logger.warn({ err }, "prediction sweep failed"));
    }, 5_000);
  }

  async close(): Promise<void> {
    clearInterval(this.#sweep);
    await Promise.all(this.#workers.map((w) => w.close()));
    await this.#queue.close();
    await this.#webhooks.close();
  }

  #enqueue(p: { id: string; orgId: string }) {
    // The job id is the prediction id: enqueueing twice (the sweep racing the request) is one job.
    return this.#queue.add(
      "predict",
      { predictionId: p.id, orgId: p.orgId },
      {
        jobId: p.id,
        attempts: 5,
        backoff: { type: "exponential", delay: 1_000 },
        removeOnComplete: true,
        removeOnFail: true,
      },
    );
  }

  async create(key: ApiKeyIdentity, body: Buffer): Promise<PredictionView> {
    let header: { model?: unknown; version?: unknown; webhook?: unknown };
    try {
      header = JSON.parse(body.toString("utf8")) as typeof header;
    } catch (error) {
      throw new ServingError("BAD_REQUEST", `request body is not valid JSON: ${(error as Error).message}`);
    }
    if (typeof header.model !== "string")
      throw new ServingError("BAD_REQUEST", 'prediction needs a "model" (deployment name)');
    // SSRF guard: no private, loopback or link-local targets unless the settings allow them.
    const webhookUrl =
      header.webhook === undefined
        ? null
        : await checkWebhookUrl(header.webhook, { allowPrivate: this.settings.webhookAllowPrivate });
    const deployment = await resolveForKey(
      this.ctx,
      key,
      header.model,
      typeof header.version === "string" ? header.version : undefined,
    );
    await admit(this.ctx, key.orgId, body.byteLength);
    const request = decodeInferRequest(body);
    validateInputs(request.inputs, deployment.signature);
    validateOutputs(request.outputs, deployment.signature);

    const id = newId("prd");
    const inputsRef = await saveInputs(this.storage, id, request.inputs);
    const row = await this.ctx.prisma.prediction.create({
      data: {
        id,
        orgId: key.orgId,
        deploymentId: deployment.served.deploymentId,
        apiKeyId: key.keyId,
        webhookUrl,
        inputsRef,
        expiresAt: new Date(Date.now() + this.settings.retentionMs),
      },
    });
    await this.#enqueue(row);
    return this.#view(row, deployment.name);
  }

  async get(orgId: string, id: string): Promise<PredictionView> {
    // Scoped by the key's org: another organization's prediction id is a 404.
    const row = await this.ctx.prisma.prediction.findFirst({
      where: { id, orgId },
      include: { deployment: { select: { name: true } } },
    });
    if (!row) throw new ServingError("NOT_FOUND", `prediction ${id} not found`);
    return this.#view(row, row.deployment.name);
  }

  /** Waits up to `seconds` for a terminal status (Prefer: wait=N). */
  async wait(orgId: string, id: string, seconds: number): Promise<PredictionView> {
    const deadline = Date.now() + seconds * 1000;
    let view = await this.get(orgId, id);
    while (!TERMINAL.has(view.status) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 25));
      view = await this.get(orgId, id);
    }
    return view;
  }

  async cancel(orgId: string, id: string): Promise<PredictionView> {
    const { count } = await this.ctx.prisma.prediction.updateMany({
      where: { id, orgId, status: { in: ["queued", "running"] } },
      data: { status: "canceled", finishedAt: new Date() },
    });
    const view = await this.get(orgId, id);
    if (count > 0) {
      await this.#queue.remove(id).catch(() => undefined);
      await this.#notify(view, id, orgId);
    }
    return view;
  }

  async #view(row: PredictionRow, model: string): Promise<PredictionView> {
    const view: PredictionView = {
      id: row.id,
      model,
      status: row.status,
      created_at: row.createdAt.toISOString(),
      started_at: row.startedAt?.toISOString() ?? null,
      completed_at: row.finishedAt?.toISOString() ?? null,
      expires_at: row.expiresAt.toISOString(),
    };
    if (row.outputsRef) view.outputs = await loadOutputs(this.storage, row.outputsRef);
    if (row.error) view.error = row.error;
    return view;
  }

  async #process({ predictionId, orgId }: PredictionJob): Promise<void> {
    const claimed = await this.ctx.prisma.prediction.updateMany({
      where: { id: predictionId, orgId, status: { in: ["queued", "running"] } },
      data: { status: "running", startedAt: new Date() },
    });
    if (claimed.count === 0) return; // canceled, finished, or expired meanwhile
    const row = await this.ctx.prisma.prediction.findUniqueOrThrow({ where: { id: predictionId } });
    const finish = async (data: { status: "succeeded" | "failed"; outputsRef?: string; error?: string }) => {
      const done = await this.ctx.prisma.prediction.updateMany({
        where: { id: predictionId, status: "running" },
        data: { ...data, finishedAt: new Date() },
      });
      if (done.count > 0) await this.#notify(await this.get(orgId, predictionId), predictionId, orgId);
    };
    try {
      const deployment = await this.ctx.deployments.resolveById(orgId, row.deploymentId);
      const inputs = await loadInputs(this.storage, row.inputsRef);
      const request: InferRequest = { inputs, binaryOutputs: false };
      const answer = await forward(this.ctx, deployment, request, 0, performance.now());
      const outputs = (JSON.parse(answer.encoded.body.toString("utf8")) as { outputs: unknown[] }).outputs;
      await finish({ status: "succeeded", outputsRef: await saveOutputs(this.storage, predictionId, outputs) });
    } catch (error) {
      // No capacity is transient: let BullMQ retry with backoff. Anything else is the answer.
      if (error instanceof ServingError && error.code === "UNAVAILABLE") throw error;
      await finish({ status: "failed", error: (error as Error).message });
      if (!(error instanceof ServingError)) throw new UnrecoverableError((error as Error).message);
    }
  }

  async #notify(view: PredictionView, predictionId: string, orgId: string): Promise<void> {
    const row = await this.ctx.prisma.prediction.findUnique({
      where: { id: predictionId },
      select: { webhookUrl: true },
    });
    if (!row?.webhookUrl) return;
    await this.#webhooks.add(
      "deliver",
      { predictionId, orgId, url: row.webhookUrl, deliveryId: randomUUID() },
      {
        jobId: `${predictionId}-${view.status}`,
        attempts: 8,
        backoff: { type: "exponential", delay: 1_000 },
        removeOnComplete: true,
        removeOnFail: 1000,
      },
    );
  }

  async #deliver(job: WebhookJob): Promise<void> {
    const view = await this.get(job.orgId, job.predictionId).catch(() => null);
    if (!view) return; // expired meanwhile: nothing left to tell
    const body = JSON.stringify({ type: `prediction.${view.status}`, delivery_id: job.deliveryId, prediction: view });
    const secret = webhookSecretFor(this.settings.webhookSigningKey, job.orgId);
    let status: number;
    try {
      status = await postWebhook(
        job.url,
        {
          "content-type": "application/json",
          [SIGNATURE_HEADER]: signWebhook(secret, body, Math.floor(Date.now() / 1000)),
        },
        body,
        { timeoutMs: this.settings.webhookTimeoutMs, allowPrivate: this.settings.webhookAllowPrivate },
      );
    } catch (error) {
      // A target that now resolves to a private address is not retried.
      if (error instanceof WebhookTargetRefusedError) throw new UnrecoverableError(error.message);
      throw error;
    }
    if (status < 200 || status >= 300) throw new Error(`webhook answered ${status}`);
  }

  /** Re-enqueues accepted predictions whose job was lost, and deletes expired ones. */
  async sweep(): Promise<void> {
    const stale = await this.ctx.prisma.prediction.findMany({
      where: { status: "queued", createdAt: { lt: new Date(Date.now() - 10_000) } },
      select: { id: true, orgId: true },
      take: 500,
    });
    for (const p of stale) await this.#enqueue(p);
    await deleteExpired(this.ctx.prisma, this.storage);
  }
}
