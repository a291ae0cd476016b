/**
 * SLOs and /readyz on a real small job (in-memory source stamping records with their "commit"
 * time, a sink that stalls on demand): ready while the sink commits, 503 naming the freshness and
 * checkpoint-age SLOs once it stalls; every on-call series is in /metrics from the start.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readRegistration } from '../../../runtime/rest/registration.ts';
import { quantile } from '../../../runtime/signals/slo.ts';
import { countingSource } from '../../support/counting-source.ts';
import { quietEnvironment, stallableSink } from '../../support/quiet-job.ts';

const root = mkdtempSync(join(tmpdir(), 'cdcflow-slo-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('SLOs and /readyz', () => {
  it('p99 of cumulative buckets between two snapshots is the upper bound of the bucket holding it', () => {
    const now = new Map([
      [1, 10],
      [5, 100],
      [Number.POSITIVE_INFINITY, 100],
    ]);
    expect(quantile(0.99, now, undefined)).toBe(5);
    expect(
      quantile(
        0.99,
        now,
        new Map([
          [1, 10],
          [5, 10],
          [Number.POSITIVE_INFINITY, 10],
        ]),
      ),
    ).toBe(5);
    expect(
      quantile(
        0.5,
        new Map([
          [1, 90],
          [5, 100],
          [Number.POSITIVE_INFINITY, 100],
        ]),
        undefined,
      ),
    ).toBe(1);
    expect(quantile(0.99, now, now)).toBe(0);
  });

  it('answers 200 while SLOs hold and 503 naming the failing SLOs once the sink stalls', async () => {
    const gate: { stalled: boolean; release?: () => void } = { stalled: false };
    const env = quietEnvironment(root, 'slo-job', {
      checkpoints: { intervalMs: 100 },
      rest: { port: 0 },
      slo: { sinkFreshnessP99Seconds: 1.5, maxCheckpointAgeSeconds: 2, maxSilenceSeconds: 60 },
    });
    env
      .fromSource(countingSource({ pollDelayMs: 20, timestamps: 'wall-clock' }), { uid: 'ticks' })
      .map((n) => n * 2)
      .sinkTo(stallableSink(gate, { replaySafety: 'at-least-once', sideEffects: true }))
      .uid('stall-sink');
    const done = env.execute();
    try {
      let url: string | undefined;
      for (let i = 0; i < 100 && url === undefined; i++) {
        url = (await readRegistration(root, 'slo-job'))?.url;
        if (url === undefined) await new Promise((r) => setTimeout(r, 50));
      }
      const metrics = await (await fetch(`${url}/metrics`)).text();
      for (const name of [
        'cdcflow_sink_backlog_records{job="slo-job",sink="stall-sink"}',
        'cdcflow_sink_freshness_seconds_count{job="slo-job",sink="stall-sink"}',
        'cdcflow_sink_info{job="slo-job",sink="stall-sink",kind="http",replay_safety="at-least-once"} 1',
        'cdcflow_slo_ok{job="slo-job",slo="freshness-p99:stall-sink"}',
        'cdcflow_slo_value{job="slo-job",slo="checkpoint-age"}',
        'cdcflow_checkpoints_total',
        'cdcflow_job_failures_total',
        'cdcflow_checkpoint_size_bytes',
      ]) {
        expect(metrics).toContain(name);
      }
      await new Promise((r) => setTimeout(r, 1000));
      const ready = await fetch(`${url}/readyz`);
      expect(ready.status).toBe(200);
      expect(((await ready.json()) as { ready: boolean }).ready).toBe(true);

      gate.stalled = true;
      await new Promise((r) => setTimeout(r, 3000));
      const stalled = await fetch(`${url}/readyz`);
      const body = (await stalled.json()) as { ready: boolean; failing: string[] };
      expect(stalled.status).toBe(503);
      expect(body.failing).toEqual(expect.arrayContaining(['freshness-p99:stall-sink', 'checkpoint-age']));
      expect(body.failing).not.toContain('silence');
      const text = await (await fetch(`${url}/metrics`)).text();
      const backlog = Number(/cdcflow_sink_backlog_records\{job="slo-job",sink="stall-sink"\} (\S+)/.exec(text)?.[1]);
      expect(backlog).toBeGreaterThan(0);
      const age = Number(
        /cdcflow_sink_uncommitted_age_seconds\{job="slo-job",sink="stall-sink"\} (\S+)/.exec(text)?.[1],
      );
      expect(age).toBeGreaterThan(2);
      expect(text).toContain('cdcflow_slo_ok{job="slo-job",slo="freshness-p99:stall-sink"} 0');
      const apiJob = (await (await fetch(`${url}/api/job`)).json()) as { slo: { failing: string[] } };
      expect(apiJob.slo.failing).toContain('freshness-p99:stall-sink');
      const jobBody = (await (await fetch(`${url}/jobs/slo-job`)).json()) as { slo: { slos: { slo: string }[] } };
      expect(jobBody.slo.slos.map((s) => s.slo)).toEqual(['freshness-p99:stall-sink', 'checkpoint-age', 'silence']);
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
    } finally {
      gate.stalled = false;
      gate.release?.();
      await env.cancel();
      await done.catch(() => undefined);
    }
  }, 30_000);
});
