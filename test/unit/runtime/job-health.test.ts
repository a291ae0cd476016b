/**
 * Defect 7 (issue 10): health must say when a job is not making progress. Before, /healthz said
 * `ok` and /api/job `running: true` during a crash loop (here: a job whose state stays locked),
 * and the watermark-lag gauge froze at its last value when the watermark stopped.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { JobHealth } from '../../../runtime/job-health.ts';
import { JobMetrics } from '../../../runtime/metrics.ts';
import {
  StreamEnvironment,
  WatermarkStrategy,
  debeziumSource,
  fromCollection,
  type ChangeEvent,
} from '../../../runtime/index.ts';
import { DefaultStateBackendFactory, keyGroupRangeFor } from '../../../state/index.ts';
import { freePorts } from '../../support/dedicated-kafka.ts';
import { streamPosition } from '../../../state/change-position.ts';

function change(id: number, lsn: number): ChangeEvent<{ id: number }> {
  return {
    op: 'c',
    before: null,
    after: { id },
    source: {
      db: 'd',
      schema: 'public',
      table: 't',
      lsn,
      position: streamPosition(0, lsn),
      txId: lsn,
      tsMs: 1_700_000_000_000 + lsn,
      snapshot: null,
    },
    tsMs: 0,
    key: { id },
    origin: { topic: 't', partition: 0, offset: String(lsn) },
  };
}

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: response.status, body: await response.text() };
}

async function until(condition: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('job health', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('a job stuck on a held state lock is unhealthy (503 with the reason), not running, and says so in /api/job and /metrics', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdcflow-health-'));
    dirs.push(dir);
    const jobName = `health-lock-${process.pid}`;
    const stateDir = join(dir, 'state');
    // Another holder of the operator's RocksDB (what a failed attempt that kept its lock was).
    const holder = await new DefaultStateBackendFactory().createKeyedBackend({
      jobName,
      operatorUid: 'counts',
      subtaskIndex: 0,
      keyGroupRange: keyGroupRangeFor(0, 1),
      backend: 'rocksdb',
      localDir: stateDir,
    });
    const [port] = (await freePorts(1)) as [number];
    const env = StreamEnvironment.create({
      jobName,
      checkpoints: { dir: join(dir, 'chk'), intervalMs: 100 },
      state: { backend: 'rocksdb', dir: stateDir },
      restart: { maxAttempts: Number.POSITIVE_INFINITY, initialDelayMs: 20, maxDelayMs: 100 },
      health: { unhealthyAfterFailures: 2, unhealthyAfterCheckpointIntervals: 1000 },
      metricsPort: port,
      log: () => undefined,
    });
    env
      .fromSource(fromCollection([change(1, 10), change(2, 11), change(1, 12)], { batchSize: 2 }))
      .keyBy((e) => e.key?.['id'] as number)
      .upsert()
      .uid('counts')
      .sinkTo({ name: 'discard', createOperator: () => ({ processBatch() {} }) });
    const done = env.execute();
    let released = false;
    try {
      await until(async () => (await get(port, '/healthz')).status === 503, 20_000);
      const healthz = await get(port, '/healthz');
      expect(healthz.body).toMatch(/attempts failed in a row/);
      expect(healthz.body).toMatch(/lock/i);
      const job = JSON.parse((await get(port, '/api/job')).body) as Record<string, unknown>;
      expect(job['running']).toBe(false);
      expect(job['healthy']).toBe(false);
      expect(job['restarts']).toBeGreaterThanOrEqual(1);
      expect(job['lastError']).toMatchObject({
        class: 'StateError',
        retriable: true,
        where: { operator: 'counts', subtask: 0 },
      });
      const metrics = (await get(port, '/metrics')).body;
      expect(metrics).toMatch(/cdcflow_job_restarts_total\{job="[^"]+"\} [1-9]/);
      expect(metrics).toMatch(/cdcflow_job_healthy\{job="[^"]+"\} 0/);
      expect(metrics).toMatch(/cdcflow_job_status\{job="[^"]+",status="(restarting|starting)"\} 1/);
      expect(metrics).toMatch(/cdcflow_last_checkpoint_age_seconds\{job="[^"]+"\} \d/);
      // The lock goes away: the next attempt runs, checkpoints, and the job finishes.
      await holder.close();
      released = true;
      await done;
      expect(env.health()).toMatchObject({ status: 'finished', healthy: true, consecutiveFailures: 0 });
    } finally {
      if (!released) await holder.close();
      void env.stop().catch(() => undefined);
      await done.catch(() => undefined);
    }
  }, 60_000);

  it('a job whose broker is unreachable is never running, and unhealthy once its attempt failed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdcflow-health-'));
    dirs.push(dir);
    const [port, closed] = (await freePorts(2)) as [number, number];
    const env = StreamEnvironment.create({
      jobName: `health-unreachable-${process.pid}`,
      checkpoints: { dir: join(dir, 'chk'), intervalMs: 100 },
      state: { backend: 'memory' },
      restart: { maxAttempts: Number.POSITIVE_INFINITY, initialDelayMs: 50, maxDelayMs: 100 },
      health: { unhealthyAfterFailures: 1, unhealthyAfterCheckpointIntervals: 1000 },
      metricsPort: port,
      log: () => undefined,
    });
    // Nothing listens on `closed`: kafkajs gives up connecting after its retries (~10 s).
    env
      .fromSource(debeziumSource({ topics: ['t'], groupId: 'g', brokers: [`127.0.0.1:${closed}`] }))
      .sinkTo({ name: 'discard', createOperator: () => ({ processBatch() {} }) });
    const done = env.execute();
    try {
      await until(async () => (await get(port, '/api/job')).status === 200, 10_000);
      // Before: running: true from the first second on.
      expect(JSON.parse((await get(port, '/api/job')).body)).toMatchObject({ running: false, status: 'starting' });
      await until(async () => (await get(port, '/healthz')).status === 503, 40_000);
      expect((await get(port, '/healthz')).body).toMatch(/attempts failed in a row.*ECONNREFUSED/);
      const job = JSON.parse((await get(port, '/api/job')).body) as Record<string, unknown>;
      expect(job).toMatchObject({
        running: false,
        healthy: false,
        lastError: { retriable: true, domain: 'external', where: { subtask: 0 } },
      });
    } finally {
      void env.stop().catch(() => undefined);
      await done.catch(() => undefined);
    }
  }, 60_000);

  it('a job whose checkpoints stop completing turns unhealthy after N intervals', () => {
    let now = 1_000_000;
    const health = new JobHealth(
      { checkpointIntervalMs: 1000, unhealthyAfterFailures: 3, unhealthyAfterCheckpointIntervals: 5 },
      new JobMetrics('h'),
      () => now,
    );
    health.attemptStarted();
    now += 4_000;
    expect(health.report().healthy).toBe(true);
    now += 2_000;
    expect(health.report()).toMatchObject({
      healthy: false,
      reasons: [expect.stringMatching(/no checkpoint completed for 6 s since the job started \(limit 5 intervals/)],
    });
  });

  it('the watermark lag of a job whose watermark stopped keeps growing (before: frozen at its last advance)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdcflow-health-'));
    dirs.push(dir);
    const env = StreamEnvironment.create({
      jobName: `health-wm-${process.pid}`,
      checkpoints: { dir: join(dir, 'chk'), intervalMs: 100 },
      state: { backend: 'memory' },
      log: () => undefined,
    });
    const start = Date.now() - 60_000;
    env
      .fromSource(fromCollection([start, start + 1_000, start + 2_000], { batchSize: 1 }), {
        watermarks: WatermarkStrategy.forMonotonousTimestamps<number>().withTimestamps((t) => t),
      })
      .map((t) => t)
      .sinkTo({ name: 'discard', createOperator: () => ({ processBatch() {} }) });
    await env.execute();
    // The input ended: the watermark stands still from here on, and the lag must keep growing.
    const lag = async () =>
      Math.max(
        ...((await env.metrics.registry.getSingleMetric('cdcflow_watermark_lag_ms')?.get())?.values ?? []).map(
          (v) => v.value,
        ),
      );
    const first = await lag();
    await new Promise((r) => setTimeout(r, 100));
    expect(first).toBeGreaterThanOrEqual(57_000);
    expect(await lag()).toBeGreaterThanOrEqual(first + 90);
  });

  it('computes the watermark lag when scraped, so it grows while the watermark stands still', async () => {
    const metrics = new JobMetrics('wm');
    metrics.watermarkAdvanced('windows', Date.now() - 1_000);
    const lag = async () =>
      (await metrics.registry.getSingleMetric('cdcflow_watermark_lag_ms')?.get())?.values[0]?.value ?? 0;
    const first = await lag();
    await new Promise((r) => setTimeout(r, 60));
    expect(await lag()).toBeGreaterThanOrEqual(first + 50);
    expect(first).toBeGreaterThanOrEqual(1_000);
  });
});
