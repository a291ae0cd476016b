/** The page's arithmetic: rates from counters, quantiles from histogram deltas, and the dead-letter ring. */
import { describe, expect, it } from 'vitest';
import { rememberDeadLetter, recentDeadLetters } from '../../../operators/recent-dead-letters.ts';
import type { JobOverview, MetricSamples } from '../../../runtime/ui/overview-types.ts';
import { quantile, rate, total } from '../../../runtime/ui/web/src/derive.ts';

function histogram(counts: Record<string, number>): MetricSamples {
  return { h_bucket: Object.entries(counts).map(([le, value]) => ({ labels: { le, operator: 'sink' }, value })) };
}

const at = (nowMs: number, metrics: MetricSamples): JobOverview => ({ nowMs, metrics }) as unknown as JobOverview;

describe('web UI arithmetic', () => {
  it('takes quantiles of what a histogram observed between two snapshots, interpolated in the bucket', () => {
    const before = histogram({ '0.1': 10, '1': 10, '10': 10, '+Inf': 10 });
    const now = histogram({ '0.1': 10, '1': 10, '10': 110, '+Inf': 110 });
    // The 100 new observations all fell in (1, 10]: p50 is halfway through that bucket.
    expect(quantile(0.5, now, before, 'h')).toBeCloseTo(5.5, 5);
    expect(quantile(0.99, now, before, 'h', { operator: 'sink' })).toBeCloseTo(9.91, 5);
    expect(quantile(0.5, now, now, 'h')).toBeUndefined();
    expect(quantile(0.5, now, undefined, 'h', { operator: 'other' })).toBeUndefined();
    // Over everything: 10 of 110 at ≤ 0.1.
    expect(quantile(0.05, now, undefined, 'h')).toBeCloseTo(0.055, 5);
  });

  it('turns counters into per-second rates and sums matching series', () => {
    const a = at(1_000, {
      c: [
        { labels: { operator: 'x' }, value: 100 },
        { labels: { operator: 'y' }, value: 7 },
      ],
    });
    const b = at(3_000, {
      c: [
        { labels: { operator: 'x' }, value: 300 },
        { labels: { operator: 'y' }, value: null },
      ],
    });
    expect(rate(b, a, 'c', { operator: 'x' })).toBe(100);
    expect(rate(b, undefined, 'c')).toBeUndefined();
    expect(total(a.metrics, 'c')).toBe(107);
    expect(total(b.metrics, 'c', { operator: 'y' })).toBeUndefined();
    expect(total(a.metrics, 'missing')).toBeUndefined();
  });

  it('keeps only the last 20 dead letters, with long reasons cut', () => {
    for (let i = 0; i < 30; i++)
      rememberDeadLetter({
        topic: 't',
        partition: 0,
        offset: String(i),
        reason: 'x'.repeat(i === 29 ? 1000 : 5),
        errorKind: 'user-code',
        stage: 'op',
        key: null,
        value: Buffer.from('secret payload'),
        timestampMs: 0,
      });
    const letters = recentDeadLetters();
    expect(letters).toHaveLength(20);
    expect(letters[0]?.offset).toBe('10');
    expect(letters.at(-1)?.reason.length).toBeLessThan(310);
    expect(JSON.stringify(letters)).not.toContain('secret payload');
  });
});
