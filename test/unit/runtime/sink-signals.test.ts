import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  JobMetrics,
  StreamEnvironment,
  TumblingEventTimeWindows,
  WatermarkStrategy,
  collectSink,
  fromCollection,
} from '../../../runtime/index.ts';
import { SinkSignals } from '../../../runtime/signals/sink-signals.ts';

type Sample = { value: number; labels: Record<string, string | number>; metricName?: string };

async function samples(metrics: JobMetrics, name: string): Promise<Sample[]> {
  return ((await metrics.registry.getSingleMetric(name)?.get())?.values ?? []) as Sample[];
}

describe('sink signals (runtime/signals/sink-signals.ts)', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('observes freshness for sinks behind map/filter and behind a window, and reports backlog, uncommitted age and sink_info', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdcflow-signals-'));
    dirs.push(dir);
    const committedAt = Date.now() - 120_000; // source commits two minutes ago: every freshness ≥ 120 s
    const values = Array.from({ length: 10 }, (_, i) => ({ id: i, ts: committedAt + i }));
    const env = StreamEnvironment.create({
      jobName: 'signals-job',
      checkpoints: { dir: join(dir, 'chk'), intervalMs: 50 },
      state: { backend: 'memory' },
      restore: 'none',
      log: () => undefined,
    });
    const source = env.fromSource(fromCollection(values, { timestampOf: (v) => v.ts }), {
      watermarks: WatermarkStrategy.boundedOutOfOrderness<{ id: number; ts: number }>(0).withTimestamps((v) => v.ts),
    });
    const mapped: number[] = [];
    source
      .map((v) => v.id)
      .filter((id) => id % 2 === 0)
      .sinkTo(collectSink(mapped, { transactional: true }))
      .uid('mapped-sink');
    const windows: unknown[] = [];
    source
      .keyBy(() => 'all')
      .window(TumblingEventTimeWindows.of(60_000))
      .reduce((a, b) => ({ id: a.id + b.id, ts: Math.max(a.ts, b.ts) }))
      .sinkTo(collectSink(windows, { transactional: true }))
      .uid('window-sink');
    await env.execute();

    expect(mapped).toHaveLength(5);
    expect(windows.length).toBeGreaterThan(0);
    const freshness = await samples(env.metrics, 'cdcflow_sink_freshness_seconds');
    const count = (sink: string) =>
      freshness.find((v) => v.metricName === 'cdcflow_sink_freshness_seconds_count' && v.labels['sink'] === sink)
        ?.value;
    expect(count('mapped-sink')).toBe(5);
    expect(count('window-sink')).toBe(windows.length);
    expect(
      freshness.find(
        (v) =>
          v.metricName === 'cdcflow_sink_freshness_seconds_bucket' &&
          v.labels['sink'] === 'window-sink' &&
          v.labels['le'] === 60,
      )?.value,
    ).toBe(0);
    const info = await samples(env.metrics, 'cdcflow_sink_info');
    // The job ended: its attempt's collected series went with it; sink_info is checked on a live SinkSignals below.
    expect(info.every((v) => v.value === 1)).toBe(true);
  });

  it('backlog = records handed out minus those covered by the sink’s last commit; uncommitted age grows until the commit', async () => {
    let now = 1_000_000;
    const metrics = new JobMetrics('backlog-job');
    const signals = new SinkSignals(
      metrics,
      [{ uid: 'pg', traits: { kind: 'postgres', replaySafety: 'exactly-once', sideEffects: false } }],
      () => now,
    );
    const value = async (name: string) => (await samples(metrics, name)).find((v) => v.labels['sink'] === 'pg')?.value;
    expect(await value('cdcflow_sink_backlog_records')).toBe(0);
    expect(await value('cdcflow_sink_uncommitted_age_seconds')).toBe(0);
    expect((await samples(metrics, 'cdcflow_sink_info'))[0]?.labels).toEqual({
      job: 'backlog-job',
      sink: 'pg',
      kind: 'postgres',
      replay_safety: 'exactly-once',
    });
    expect(
      (await samples(metrics, 'cdcflow_sink_freshness_seconds')).find(
        (v) => v.metricName === 'cdcflow_sink_freshness_seconds_count',
      )?.value,
    ).toBe(0);

    signals.sourceRecordsRead(100);
    signals.received('pg', now - 2000, 100);
    signals.barrierInjected(1);
    signals.barrierAligned('pg', 1);
    signals.sourceRecordsRead(50);
    signals.received('pg', now - 1000, 50);
    now += 10_000;
    expect(await value('cdcflow_sink_backlog_records')).toBe(150);
    expect(await value('cdcflow_sink_uncommitted_age_seconds')).toBe(12);
    signals.committed('pg', 1);
    expect(await value('cdcflow_sink_backlog_records')).toBe(50);
    expect(await value('cdcflow_sink_uncommitted_age_seconds')).toBe(11);
    const freshness = await samples(metrics, 'cdcflow_sink_freshness_seconds');
    expect(freshness.find((v) => v.metricName === 'cdcflow_sink_freshness_seconds_count')?.value).toBe(100);
    expect(freshness.find((v) => v.metricName === 'cdcflow_sink_freshness_seconds_sum')?.value).toBeCloseTo(1200, 6);
    signals.close();
    expect(await samples(metrics, 'cdcflow_sink_backlog_records')).toEqual([]);
  });
});
