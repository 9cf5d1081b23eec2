// Prometheus metrics with Triton-like names under the kiln_ prefix (nv_inference_request_success
// -> kiln_inference_request_success_total, and so on).
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { DeploymentCounter, DeploymentHistogram } from "./deployment-series.ts";

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function createGatewayMetrics(replicaCounts: () => Map<string, number>) {
  const registry = new Registry();
  const labelNames = ["deployment"] as const;
  const metrics = {
    registry,
    // The five per-request series: deployment-series.ts (same exposition as prom-client's).
    success: new DeploymentCounter(
      "kiln_inference_request_success_total",
      "Inference requests answered by a model",
      registry,
    ),
    failure: new Counter({
      name: "kiln_inference_request_failure_total",
      help: "Inference requests that failed, by HTTP status",
      labelNames: ["deployment", "status"] as const,
      registers: [registry],
    }),
    requestDuration: new DeploymentHistogram(
      "kiln_inference_request_duration_seconds",
      "Gateway latency of answered requests, arrival to answer",
      LATENCY_BUCKETS,
      registry,
    ),
    queueDuration: new DeploymentHistogram(
      "kiln_inference_queue_duration_seconds",
      "Time requests waited in a replica's batching queue",
      LATENCY_BUCKETS,
      registry,
    ),
    computeDuration: new DeploymentHistogram(
      "kiln_inference_compute_duration_seconds",
      "Engine compute time charged to each request (its share of the batch)",
      LATENCY_BUCKETS,
      registry,
    ),
    batchSize: new DeploymentHistogram(
      "kiln_inference_batch_size",
      "Rows in the batch that carried each request",
      [1, 2, 4, 8, 16, 32, 64, 128],
      registry,
    ),
    coldStarts: new Counter({
      name: "kiln_cold_starts_total",
      help: "Requests that found no ready replica and waited for one, by outcome",
      labelNames: ["deployment", "outcome"] as const,
      registers: [registry],
    }),
    coldStartDuration: new Histogram({
      name: "kiln_cold_start_duration_seconds",
      help: "How long requests waited for a first replica",
      labelNames,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
      registers: [registry],
    }),
    scaleUps: new Counter({
      name: "kiln_scale_up_requests_total",
      help: "Load jobs asked for because every replica had more than a batch queued",
      labelNames,
      registers: [registry],
    }),
    replicas: new Gauge({
      name: "kiln_ready_replicas",
      help: "Ready replicas per deployment, as this gateway last read the registry",
      labelNames,
      registers: [registry],
      // Every process of a host reads the same registry: a host's /metrics (cluster.ts) shows the
      // highest count any of them saw, not their sum.
      aggregator: "max",
      collect() {
        this.reset();
        for (const [deployment, count] of replicaCounts()) this.set({ deployment }, count);
      },
    }),
  };
  // Each answered request updates five series of its deployment: found once per request.
  const bound = new Map<string, ReturnType<typeof bind>>();
  const bind = (deployment: string) => ({
    success: metrics.success.for(deployment),
    requestDuration: metrics.requestDuration.for(deployment),
    queueDuration: metrics.queueDuration.for(deployment),
    computeDuration: metrics.computeDuration.for(deployment),
    batchSize: metrics.batchSize.for(deployment),
  });
  return {
    ...metrics,
    /** The per-request series of one deployment. */
    forDeployment(deployment: string) {
      let series = bound.get(deployment);
      if (!series) {
        if (bound.size > 10_000) bound.clear();
        series = bind(deployment);
        bound.set(deployment, series);
      }
      return series;
    },
  };
}

export type GatewayMetrics = ReturnType<typeof createGatewayMetrics>;
