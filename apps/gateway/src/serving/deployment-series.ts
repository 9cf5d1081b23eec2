// The per-request metrics of the inference path (one counter and four histograms, labelled by
// deployment) as custom prom-client metrics. prom-client's own observe() rebuilds the label object,
// validates and hashes it, and finds the bucket by a string-keyed lookup on every call, even through
// a bound child: about a tenth of the gateway's JavaScript per request for five updates. Here each
// deployment's series is a plain object found once per request, and an observation is a loop over
// the bounds and three additions. The registry exposes them exactly as prom-client's Counter and
// Histogram would (same names, help, types, label order and value formatting; the tests compare the
// two texts).
import type { Registry } from "prom-client";

type Value = { labels: Record<string, string | number>; value: number; metricName?: string };
type PromValue = Value & { sharedLabels?: Record<string, string>; exemplar?: null };

/** One deployment's histogram series. */
export class HistogramSeries {
  /** Observations per bucket (not cumulative); the last slot counts those above every bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    readonly deployment: string,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += value;
    this.count += 1;
  }
}

/** One deployment's counter series. */
export class CounterSeries {
  value = 0;
  constructor(readonly deployment: string) {}

  inc(by = 1): void {
    this.value += by;
  }
}

abstract class DeploymentMetric<S> {
  readonly aggregator = "sum";
  readonly labelNames = ["deployment"];
  protected readonly series = new Map<string, S>();

  constructor(
    readonly name: string,
    readonly help: string,
    registry: Registry,
  ) {
    // prom-client's registry takes any object with a name and get() (its "custom metric" contract).
    registry.registerMetric(this as unknown as Parameters<Registry["registerMetric"]>[0]);
  }

  protected abstract create(deployment: string): S;

  /** The deployment's series (created on first use). */
  for(deployment: string): S {
    let s = this.series.get(deployment);
    if (s === undefined) {
      s = this.create(deployment);
      this.series.set(deployment, s);
    }
    return s;
  }

  reset(): void {
    this.series.clear();
  }

  abstract getForPromString(): Promise<{
    name: string;
    help: string;
    type: string;
    values: PromValue[];
    aggregator: string;
  }>;

  /** As prom-client's get(): label sets already merged. */
  async get() {
    const data = await this.getForPromString();
    return {
      ...data,
      values: data.values.map(({ sharedLabels, labels, ...rest }) => ({
        ...rest,
        labels: { ...labels, ...sharedLabels },
      })),
    };
  }
}

export class DeploymentCounter extends DeploymentMetric<CounterSeries> {
  readonly type = "counter";

  protected create(deployment: string): CounterSeries {
    return new CounterSeries(deployment);
  }

  async getForPromString() {
    const values: PromValue[] = [];
    for (const s of this.series.values()) values.push({ labels: { deployment: s.deployment }, value: s.value });
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}

export class DeploymentHistogram extends DeploymentMetric<HistogramSeries> {
  readonly type = "histogram";

  constructor(
    name: string,
    help: string,
    readonly buckets: readonly number[],
    registry: Registry,
  ) {
    super(name, help, registry);
  }

  protected create(deployment: string): HistogramSeries {
    return new HistogramSeries(deployment, this.buckets);
  }

  async getForPromString() {
    const values: PromValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.series.values()) {
      const sharedLabels = { deployment: s.deployment };
      let cumulative = 0;
      this.buckets.forEach((le, i) => {
        cumulative += s.counts[i] as number;
        values.push({ labels: { le }, value: cumulative, metricName: bucket, exemplar: null, sharedLabels });
      });
      values.push({ labels: { le: "+Inf" }, value: s.count, metricName: bucket, exemplar: null, sharedLabels });
      values.push({ labels: {}, value: s.sum, metricName: `${this.name}_sum`, sharedLabels });
      values.push({ labels: {}, value: s.count, metricName: `${this.name}_count`, sharedLabels });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}
