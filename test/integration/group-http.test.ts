/**
 * The HTTP server of a group-mode process (runtime/group/group-http-server.ts), against the real
 * Kafka: one process owns both partitions of a generated topic; /readyz turns 200 once both tasks
 * run, /metrics carries each task's series (its `job` label the task) and the process's own once,
 * /api/group names the tasks and epochs, and after a stop /readyz says why it is not ready.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GroupJob } from '../../runtime/group/group-job.ts';
import { collectSink, debeziumSource, type ChangeEvent } from '../../runtime/index.ts';
import { generateWorkload } from '../../scripts/workload/generator.ts';
import { uniqueName } from '../support/endpoints.ts';
import { createTopic, produce, testKafka } from '../support/source-jobs.ts';

const dir = mkdtempSync(join(tmpdir(), 'cdcflow-group-http-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

interface GroupStatus {
  readonly assigned: string[];
  readonly membership?: { groupInstanceId?: string; assigner: string; generation: number };
  readonly tasks: { topic: string; partition: number; epoch: number; job: string; running: boolean }[];
}

describe('group-mode HTTP server', () => {
  it('serves readiness, every task’s metrics and the group’s state from one port', async () => {
    const jobName = uniqueName('group-http');
    const topic = `${jobName}-orders`;
    const kafka = testKafka(jobName);
    await createTopic(kafka, topic, 2);
    const records = [...generateWorkload({ keys: 40, events: 200, partitions: 2, seed: 7 })];
    await produce(
      kafka,
      topic,
      records.map((r) => ({ key: r.key, value: r.value, partition: r.partition })),
    );
    const seen: ChangeEvent<unknown>[] = [];
    const job = await GroupJob.start({
      jobName,
      topics: [topic],
      sessionTimeoutMs: 6_000,
      handleSignals: false,
      log: () => undefined,
      environment: {
        metricsPort: 0,
        checkpoints: { dir: join(dir, 'checkpoints'), intervalMs: 500 },
        state: { backend: 'memory', dir: join(dir, 'state') },
        log: () => undefined,
      },
      build: (env, task) =>
        env
          .fromSource(
            debeziumSource<unknown>({ topics: [task.topic], groupId: task.groupId, partitionTask: task.source }),
          )
          .sinkTo(collectSink(seen)),
    });
    try {
      const url = job.httpUrl;
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect((await fetch(`${url}/livez`)).status).toBe(200);

      const ready = await waitFor('/readyz 200', async () => {
        const response = await fetch(`${url}/readyz`);
        return response.status === 200 ? ((await response.json()) as { ready: boolean }) : undefined;
      });
      expect(ready.ready).toBe(true);
      await waitFor('every record read', async () =>
        seen.length >= records.filter((r) => r.value).length ? true : undefined,
      );

      const group = (await (await fetch(`${url}/api/group`)).json()) as GroupStatus;
      expect([...group.assigned].sort()).toEqual([`${topic}-0`, `${topic}-1`]);
      expect(group.membership).toMatchObject({ assigner: 'CdcflowSticky' });
      expect(group.membership?.generation).toBeGreaterThan(0);
      expect(group.tasks.map((t) => t.job).sort()).toEqual([`${jobName}.${topic}-0`, `${jobName}.${topic}-1`]);
      expect(group.tasks.every((t) => t.running && t.epoch >= 1)).toBe(true);

      const metrics = await (await fetch(`${url}/metrics`)).text();
      expect(metrics).toMatch(new RegExp(`cdcflow_group_partitions_owned\\{job="${jobName}"\\} 2`));
      expect(metrics).toMatch(new RegExp(`cdcflow_group_tasks_started_total\\{job="${jobName}"\\} 2`));
      for (const p of [0, 1]) {
        expect(metrics).toContain(`cdcflow_group_owner_epoch{job="${jobName}",topic="${topic}",partition="${p}"}`);
        // Each task's own series, labelled by the task.
        expect(metrics).toContain(`job="${jobName}.${topic}-${p}"`);
      }
      // The process's metrics once, not once per task (summed, RSS would read twice the truth).
      const rssLines = metrics
        .split('\n')
        .filter((line) => line.startsWith('cdcflow_process_process_resident_memory_bytes'));
      expect(rssLines).toHaveLength(1);
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
    } finally {
      await job.stop();
    }
  }, 120_000);
});
