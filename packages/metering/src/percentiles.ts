import { LATENCY_BUCKETS_MS } from "./usage-event.ts";

/**
 * The p-th percentile (0..1) of latencies summed into LATENCY_BUCKETS_MS buckets: the upper bound
 * of the bucket that holds it (null when there were no requests; the open last bucket reports
 * twice the last bound).
 */
export function latencyPercentile(buckets: readonly (number | bigint)[], p: number): number | null {
  const counts = buckets.map(Number);
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = Math.ceil(p * total);
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i] as number;
    if (seen >= rank) return LATENCY_BUCKETS_MS[i] ?? (LATENCY_BUCKETS_MS.at(-1) as number) * 2;
  }
  return (LATENCY_BUCKETS_MS.at(-1) as number) * 2;
}
