/** Quantiles of a job's prom-client histogram and of raw samples, as the benchmarks report them. */
import type { Registry } from 'prom-client';

/** A histogram of a job's registry, summed over its series, with quantiles as Prometheus computes them. */
export interface HistogramSummary {
  readonly count: number;
  readonly mean: number;
  /** `histogram_quantile(q, …)`: linear within the bucket; the highest finite bound if it falls in +Inf. */
  quantile(q: number): number;
}

export async function histogramSummary(registry: Registry, name: string): Promise<HistogramSummary> {
  const values = (await registry.getSingleMetric(name)?.get())?.values ?? [];
  const buckets = new Map<number, number>();
  let count = 0;
  let sum = 0;
  for (const v of values) {
    const metric = (v as { metricName?: string }).metricName;
    if (metric === `${name}_bucket`) {
      const le = v.labels['le'];
      const bound = le === '+Inf' ? Infinity : Number(le);
      buckets.set(bound, (buckets.get(bound) ?? 0) + v.value);
    } else if (metric === `${name}_count`) count += v.value;
    else if (metric === `${name}_sum`) sum += v.value;
  }
  const bounds = [...buckets.keys()].sort((a, b) => a - b);
  return {
    count,
    mean: count === 0 ? NaN : sum / count,
    quantile(q) {
      if (count === 0) return NaN;
      const rank = q * count;
      let lower = 0;
      let below = 0;
      for (const bound of bounds) {
        const cumulative = buckets.get(bound) ?? 0;
        if (cumulative >= rank) {
          if (bound === Infinity) return lower;
          return cumulative === below ? bound : lower + ((bound - lower) * (rank - below)) / (cumulative - below);
        }
        lower = bound;
        below = cumulative;
      }
      return lower;
    },
  };
}

/** The q-quantile of raw samples (nearest rank). */
export function quantile(xs: readonly number[], q: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? NaN;
}
