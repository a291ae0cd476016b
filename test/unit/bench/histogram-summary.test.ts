import { describe, expect, it } from 'vitest';
import { JobMetrics } from '../../../runtime/index.ts';
import { histogramSummary, quantile } from '../../../scripts/bench/histogram-summary.ts';

describe('histogramSummary (the sinks benchmark reads the job histograms with it)', () => {
  it('sums the series and interpolates quantiles within buckets like histogram_quantile', async () => {
    const metrics = new JobMetrics('bench');
    // Buckets …0.5, 0.75, 1…: 40 observations in (0.5, 0.75], 60 in (0.75, 1], on two operators.
    for (let i = 0; i < 40; i++)
      metrics.forOperator('a').observe('cdcflow_sink_freshness_seconds', 0.6, { sink: 'redis' });
    for (let i = 0; i < 60; i++)
      metrics.forOperator('b').observe('cdcflow_sink_freshness_seconds', 0.9, { sink: 'kafka' });
    const h = await histogramSummary(metrics.registry, 'cdcflow_sink_freshness_seconds');
    expect(h.count).toBe(100);
    expect(h.mean).toBeCloseTo(0.78, 9);
    expect(h.quantile(0.2)).toBeCloseTo(0.625, 9); // rank 20 of 40 in (0.5, 0.75]
    expect(h.quantile(0.7)).toBeCloseTo(0.875, 9); // rank 70: 30 of 60 into (0.75, 1]
    expect(h.quantile(1)).toBeCloseTo(1, 9);
    expect((await histogramSummary(metrics.registry, 'cdcflow_missing_seconds')).quantile(0.5)).toBeNaN();
  });

  it('reports the highest finite bound for a quantile in the +Inf bucket', async () => {
    const metrics = new JobMetrics('bench');
    metrics.forOperator('a').observe('cdcflow_sink_commit_seconds', 7200);
    expect((await histogramSummary(metrics.registry, 'cdcflow_sink_commit_seconds')).quantile(0.99)).toBe(3600);
  });

  it('takes raw quantiles by nearest rank', () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect([quantile(xs, 0.5), quantile(xs, 0.99), quantile(xs, 1), quantile([], 0.5)]).toEqual([50, 99, 100, NaN]);
  });
});
