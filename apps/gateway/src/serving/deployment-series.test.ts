// The custom per-deployment series must expose exactly what prom-client's Counter and Histogram do.
import { Counter, Histogram, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { DeploymentCounter, DeploymentHistogram } from "./deployment-series.ts";

const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const DEPLOYMENTS = ["dep_01ABC", 'dep "quoted" \\ back\nline', "dep_other"];
const VALUES = [0, 0.0005, 0.00050001, 0.001, 0.0123, 0.5, 1, 7.25, 10, 11, 123.456, 3e-7];

describe("per-deployment series", () => {
  it("expose the same text as prom-client's Counter and Histogram", async () => {
    const theirs = new Registry();
    const ours = new Registry();
    const counter = new Counter({
      name: "x_total",
      help: "a counter",
      labelNames: ["deployment"],
      registers: [theirs],
    });
    const histogram = new Histogram({
      name: "x_seconds",
      help: "a histogram",
      labelNames: ["deployment"],
      buckets: BUCKETS,
      registers: [theirs],
    });
    const batch = new Histogram({
      name: "x_batch",
      help: "sizes",
      labelNames: ["deployment"],
      buckets: [1, 2, 4, 8],
      registers: [theirs],
    });
    const myCounter = new DeploymentCounter("x_total", "a counter", ours);
    const myHistogram = new DeploymentHistogram("x_seconds", "a histogram", BUCKETS, ours);
    const myBatch = new DeploymentHistogram("x_batch", "sizes", [1, 2, 4, 8], ours);
    DEPLOYMENTS.forEach((deployment, d) => {
      VALUES.slice(d).forEach((v, i) => {
        counter.labels({ deployment }).inc();
        myCounter.for(deployment).inc();
        histogram.labels({ deployment }).observe(v);
        myHistogram.for(deployment).observe(v);
        batch.labels({ deployment }).observe(i + 1);
        myBatch.for(deployment).observe(i + 1);
      });
    });
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.getMetricsAsJSON()).toEqual(await theirs.getMetricsAsJSON());
    expect(() => myHistogram.for("d").observe(Number.NaN)).toThrow(TypeError);
    ours.resetMetrics();
    theirs.resetMetrics();
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });
});
