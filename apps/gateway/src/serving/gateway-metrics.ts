// Prometheus metrics with Triton-like names under the kiln_ prefix (nv_inference_request_success
// -> kiln_inference_request_success_total, and so on).
import { Counter, Gauge, Histogram, Registry } from "prom-client";

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function createGatewayMetrics(replicaCounts: () => Map<string, number>) {
  const registry = new Registry();
  const labelNames = ["deployment"] as const;
  const metrics = {
    registry,
    success: new Counter({
      name: "kiln_inference_request_success_total",
      help: "Inference requests answered by a model",
      labelNames,
      registers: [registry],
    }),
    failure: new Counter({
      name: "kiln_inference_request_failure_total",
      help: "Inference requests that failed, by HTTP status",
      labelNames: ["deployment", "status"] as const,
      registers: [registry],
    }),
    requestDuration: new Histogram({
      name: "kiln_inference_request_duration_seconds",
      help: "Gateway latency of answered requests, arrival to answer",
      labelNames,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    queueDuration: new Histogram({
      name: "kiln_inference_queue_duration_seconds",
      help: "Time requests waited in a replica's batching queue",
      labelNames,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    computeDuration: new Histogram({
      name: "kiln_inference_compute_duration_seconds",
      help: "Engine compute time charged to each request (its share of the batch)",
      labelNames,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    batchSize: new Histogram({
      name: "kiln_inference_batch_size",
      help: "Rows in the batch that carried each request",
      labelNames,
      buckets: [1, 2, 4, 8, 16, 32, 64, 128],
      registers: [registry],
    }),
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
      collect() {
        this.reset();
        for (const [deployment, count] of replicaCounts()) this.set({ deployment }, count);
      },
    }),
  };
  // Each answered request updates five series of its deployment: bound once per deployment, so a
  // request does not hash its label set five times.
  const bound = new Map<string, ReturnType<typeof bind>>();
  const bind = (deployment: string) => {
    const labels = { deployment };
    return {
      success: metrics.success.labels(labels),
      requestDuration: metrics.requestDuration.labels(labels),
      queueDuration: metrics.queueDuration.labels(labels),
      computeDuration: metrics.computeDuration.labels(labels),
      batchSize: metrics.batchSize.labels(labels),
    };
  };
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
