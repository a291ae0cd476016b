import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { BulkClient } from '../../../operators/sinks/elasticsearch/bulk-client.ts';
import { OPERATOR_SECONDS_BUCKETS } from '../../../runtime/metrics.ts';
import {
  JobMetrics,
  StreamEnvironment,
  elasticsearchSink,
  fromCollection,
  tableChangeAction,
  type ChangeEvent,
} from '../../../runtime/index.ts';
import { streamPosition } from '../../../state/change-position.ts';

type Sample = { value: number; labels: Record<string, string | number>; metricName?: string };

async function samples(metrics: JobMetrics, name: string): Promise<Sample[]> {
  return ((await metrics.registry.getSingleMetric(name)?.get())?.values ?? []) as Sample[];
}

describe('JobMetrics histograms (OperatorMetrics.observe)', () => {
  it('observes into a prom-client histogram with job, operator and the given labels, on the shared buckets', async () => {
    const metrics = new JobMetrics('metrics-job');
    const sink = metrics.forOperator('orders-pg');
    for (const seconds of [0.003, 0.3, 0.3, 4])
      sink.observe('cdcflow_sink_change_visibility_seconds', seconds, { sink: 'postgres' });
    metrics.forOperator('orders-redis').observe('cdcflow_sink_change_visibility_seconds', 0.02, { sink: 'redis' });

    const values = await samples(metrics, 'cdcflow_sink_change_visibility_seconds');
    const pg = values.filter((v) => v.labels['operator'] === 'orders-pg');
    const bucket = (le: number | string) =>
      pg.find((v) => v.metricName === 'cdcflow_sink_change_visibility_seconds_bucket' && v.labels['le'] === le)?.value;
    expect(
      pg.filter((v) => v.metricName === 'cdcflow_sink_change_visibility_seconds_bucket').map((v) => v.labels['le']),
    ).toEqual([...OPERATOR_SECONDS_BUCKETS, '+Inf']);
    expect([bucket(0.005), bucket(0.25), bucket(0.5), bucket(2.5), bucket(5), bucket('+Inf')]).toEqual([
      1, 1, 3, 3, 4, 4,
    ]);
    expect(pg.find((v) => v.metricName === 'cdcflow_sink_change_visibility_seconds_count')?.value).toBe(4);
    expect(pg.find((v) => v.metricName === 'cdcflow_sink_change_visibility_seconds_sum')?.value).toBeCloseTo(4.603, 9);
    expect(pg[0]?.labels).toMatchObject({ job: 'metrics-job', operator: 'orders-pg', sink: 'postgres' });
    expect(values.some((v) => v.labels['operator'] === 'orders-redis' && v.labels['sink'] === 'redis')).toBe(true);

    const text = await metrics.registry.metrics();
    expect(text).toContain('# TYPE cdcflow_sink_change_visibility_seconds histogram');
    expect(text).toContain(
      'cdcflow_sink_change_visibility_seconds_count{job="metrics-job",operator="orders-pg",sink="postgres"} 4',
    );
  });
});

describe('JobMetrics across subtasks (parallel jobs)', () => {
  it('combines a gauge over subtasks by its meaning: watermark the minimum, lag the maximum, buffers the sum', async () => {
    const main = new JobMetrics('parallel-job');
    const subtasks = [new JobMetrics('parallel-job'), new JobMetrics('parallel-job')];
    subtasks.forEach((m, i) => {
      const op = m.forOperator('windows');
      op.gauge('cdcflow_watermark_ms', 1_000 + i * 500);
      op.gauge('cdcflow_watermark_lag_ms', 9_000 - i * 500);
      op.gauge('cdcflow_source_buffered_bytes', 100);
      op.count('cdcflow_records_in_total', {}, 10);
    });
    main.attachWorkers(async () => Promise.all(subtasks.map((m) => m.registry.getMetricsAsJSON())));
    const registry = await main.aggregated();
    const value = async (name: string) => ((await registry.getSingleMetric(name)?.get())?.values ?? [])[0]?.value;
    expect(await value('cdcflow_watermark_ms')).toBe(1_000);
    expect(await value('cdcflow_watermark_lag_ms')).toBe(9_000);
    expect(await value('cdcflow_source_buffered_bytes')).toBe(200);
    expect(await value('cdcflow_records_in_total')).toBe(20);
  });
});

describe('sink freshness in a running job', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('reaches /metrics as cdcflow_sink_change_visibility_seconds{job,operator,sink} with one observation per change written', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdcflow-metrics-'));
    dirs.push(dir);
    const written: number[] = [];
    // Acknowledges every document: the sink counts them visible when the bulk request returns.
    const client: BulkClient = {
      bulk: (lines) => {
        const items = lines
          .filter((l) => 'index' in l || 'delete' in l)
          .map(() => ({ status: 201, errorType: undefined, errorReason: undefined }));
        written.push(items.length);
        return Promise.resolve({ ok: true, items });
      },
      close: () => Promise.resolve(),
    };
    const committedAt = Date.now() - 60_000; // source commits a minute ago: every freshness ≥ 60 s
    const events: ChangeEvent<{ id: number }>[] = [1, 2, 3, 1].map((id, i) => ({
      op: 'u',
      before: null,
      after: { id },
      source: {
        db: 'ecommerce',
        schema: 'public',
        table: 'orders',
        lsn: 10 + i,
        position: streamPosition(0, 10 + i),
        txId: 10 + i,
        tsMs: committedAt,
        snapshot: null,
      },
      tsMs: 0,
      key: { id },
      origin: { topic: 't', partition: 0, offset: String(i) },
    }));
    const env = StreamEnvironment.create({
      jobName: 'freshness-job',
      checkpoints: { dir: join(dir, 'chk'), intervalMs: 50 },
      state: { backend: 'memory' },
      restore: 'none',
      log: () => undefined,
    });
    env
      .fromSource(fromCollection(events))
      .keyBy((e) => e.key?.['id'] as number)
      .upsert()
      .sinkTo(
        elasticsearchSink({
          node: 'http://unused',
          client,
          toAction: tableChangeAction<number, { id: number }>('orders'),
        }),
      )
      .uid('orders-es');
    await env.execute();

    const values = await samples(env.metrics, 'cdcflow_sink_change_visibility_seconds');
    const count = values.find((v) => v.metricName === 'cdcflow_sink_change_visibility_seconds_count');
    expect(count?.labels).toEqual({ job: 'freshness-job', operator: 'orders-es', sink: 'elasticsearch' });
    expect(count?.value).toBe(written.reduce((a, b) => a + b, 0));
    expect(count?.value).toBeGreaterThanOrEqual(3);
    expect(
      values.find((v) => v.metricName === 'cdcflow_sink_change_visibility_seconds_bucket' && v.labels['le'] === 30)
        ?.value,
    ).toBe(0);
  });
});
