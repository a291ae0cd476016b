/**
 * More subtasks than partitions, unbounded: the revenue windows at parallelism 3 on a 2-partition
 * topic. Subtask 2 owns no partition (p % 3 == 2 matches none), so its source reports itself idle
 * and the window subtasks (whose inputs include subtask 2's channel behind the keyed exchange)
 * take the minimum over the other two channels only. Windows must fire by the watermark alone —
 * no end of input — and equal what the oracle decides for the records this run found late.
 *
 * Before sources without splits went idle, subtask 2 never sent a watermark, every window
 * subtask stayed at −∞ and nothing fired: this test timed out waiting for the first window.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateWorkload } from '../../scripts/workload/generator.ts';
import { possiblyLate, revenueWindowsDecided } from '../../scripts/workload/revenue-oracle-bounds.ts';
import { OUT_OF_ORDERNESS_MS } from '../../jobs/revenue-windows.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';
import { RunFolders, runToEnd, startParallelJob, windowResults } from '../support/parallel-runs.ts';
import { createTopic, produce, testKafka } from '../support/source-jobs.ts';

const WORKLOAD = { seed: 29, keys: 6_000, events: 24_000, partitions: 2 };
const PARALLELISM = 3;
const folders = new RunFolders();
const topic = uniqueName('idle-subtask-orders');
const kafka = testKafka(topic);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

afterAll(async () => {
  folders.cleanup();
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
  await admin.disconnect();
});

describe('a subtask that owns no partition', () => {
  const records = [...generateWorkload(WORKLOAD)];
  const options = { partitions: WORKLOAD.partitions };

  /** The watermark the job reaches once it read everything: the lower of the two partitions' (no idleness configured). */
  const finalWatermark = Math.min(
    ...[0, 1].map((p) => Math.max(...records.filter((r) => r.partition === p && r.event !== null).map((r) => r.event?.source.ts_ms ?? Number.NEGATIVE_INFINITY)) - OUT_OF_ORDERNESS_MS - 1),
  );
  const firedBy = (w: { windowEnd: number }) => w.windowEnd - 1 <= finalWatermark;
  const env = { KAFKA_BROKERS: testEndpoints().kafkaBrokers };
  const source = (bounded: boolean) => ({ kind: 'kafka' as const, topic, groupId: uniqueName('idle-subtask'), bounded });

  beforeAll(async () => {
    await createTopic(kafka, topic, WORKLOAD.partitions);
    await produce(kafka, topic, records.map((r) => ({ key: r.key, value: r.value, partition: r.partition })));
  });

  it('does not stall event time: at parallelism 3 on 2 partitions the windows fire and equal the oracle', async () => {
    const dirs = folders.make();
    const job = startParallelJob({ job: 'revenue', source: source(false) }, dirs, PARALLELISM, env);
    const expectedNow = () => {
      const result = windowResults(dirs);
      return { result, expected: revenueWindowsDecided(records, result.late, options).windows.filter(firedBy) };
    };
    try {
      // Unbounded: wait (bounded in time) until the committed results cover every window the final watermark fires.
      const started = Date.now();
      let state = expectedNow();
      while (JSON.stringify(state.result.windows) !== JSON.stringify(state.expected) && Date.now() - started < 150_000 && job.running) {
        await sleep(500);
        state = expectedNow();
      }
      const { result, expected } = state;
      expect(job.running, job.tail(40)).toBe(true);
      expect(expected.length).toBeGreaterThanOrEqual(6);
      // Nothing fired that the watermark does not reach (only watermarks fire here, no end of input).
      expect(result.windows.filter((w) => !firedBy(w))).toEqual([]);
      expect(result.windows).toEqual(expected);
      // Late only where the own partition's watermark allows it, each at most once.
      const mayBeLate = possiblyLate(records, options);
      expect(result.late.filter((lsn) => !mayBeLate.has(lsn))).toEqual([]);
      expect(new Set(result.late).size).toBe(result.late.length);
      expect(result.late.length).toBeGreaterThan(0);
    } finally {
      await job.kill();
    }
  }, 240_000);

  it('bounded: the job still ends (the idle subtask ends at once) and every window equals the oracle', async () => {
    const dirs = folders.make();
    await runToEnd({ job: 'revenue', source: source(true) }, dirs, PARALLELISM, 180_000, env);
    const result = windowResults(dirs);
    const mayBeLate = possiblyLate(records, options);
    expect(result.late.filter((lsn) => !mayBeLate.has(lsn))).toEqual([]);
    expect(result.windows).toEqual(revenueWindowsDecided(records, result.late, options).windows);
    expect(result.windows.some((w) => !firedBy(w))).toBe(true);
  }, 240_000);
});
