/**
 * More subtasks than partitions, unbounded: the revenue windows at parallelism 3 on a 2-partition
 * topic. Subtask 2 owns no partition (p % 3 == 2 matches none), so its source reports itself idle
 * and the window subtasks (whose inputs include subtask 2's channel behind the keyed exchange)
 * take the minimum over the other two channels only. Windows must fire by the watermark alone —
 * no end of input — and equal what the oracle decides for the records this run found late.
 *
 * Before sources without splits went idle, subtask 2 never sent a watermark, every window
 * subtask stayed at −∞ and nothing fired: the first test timed out waiting for the first window.
 * The last test adds a third partition mid-run: subtask 2's group rebalances (metadata refreshed
 * every second here), it becomes active, and its partition holds the window back again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateWorkload } from '../../scripts/workload/generator.ts';
import { possiblyLate, revenueWindowsDecided } from '../../scripts/workload/revenue-oracle-bounds.ts';
import { OUT_OF_ORDERNESS_MS, type RevenueRow } from '../../jobs/revenue-windows.ts';
import { subtaskGroupId } from '../../operators/sources/kafka/subtask-assignment.ts';
import { readJsonLines } from '../support/json-lines-sink.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';
import { RunFolders, runToEnd, startParallelJob, windowResults } from '../support/parallel-runs.ts';
import { createTopic, produce, testKafka } from '../support/source-jobs.ts';

const WORKLOAD = { seed: 29, keys: 6_000, events: 24_000, partitions: 2 };
const PARALLELISM = 3;
const folders = new RunFolders();
const topic = uniqueName('idle-subtask-orders');
const grown = uniqueName('idle-subtask-grown');
const kafka = testKafka(topic);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

afterAll(async () => {
  folders.cleanup();
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [topic, grown] }).catch(() => undefined);
  await admin.disconnect();
});

describe('a subtask that owns no partition', () => {
  const records = [...generateWorkload(WORKLOAD)];
  const options = { partitions: WORKLOAD.partitions };

  /** The watermark the job reaches once it read everything: the lower of the two partitions' (no idleness configured). */
  const finalWatermark = Math.min(
    ...[0, 1].map(
      (p) =>
        Math.max(
          ...records
            .filter((r) => r.partition === p && r.event !== null)
            .map((r) => r.event?.source.ts_ms ?? Number.NEGATIVE_INFINITY),
        ) -
        OUT_OF_ORDERNESS_MS -
        1,
    ),
  );
  const firedBy = (w: { windowEnd: number }) => w.windowEnd - 1 <= finalWatermark;
  const env = { KAFKA_BROKERS: testEndpoints().kafkaBrokers };
  const source = (bounded: boolean) => ({
    kind: 'kafka' as const,
    topic,
    groupId: uniqueName('idle-subtask'),
    bounded,
  });

  beforeAll(async () => {
    await createTopic(kafka, topic, WORKLOAD.partitions);
    await produce(
      kafka,
      topic,
      records.map((r) => ({ key: r.key, value: r.value, partition: r.partition })),
    );
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
      while (
        JSON.stringify(state.result.windows) !== JSON.stringify(state.expected) &&
        Date.now() - started < 150_000 &&
        job.running
      ) {
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

  it('becomes active when a partition is added for it: the new partition counts for the watermark and its record is on time', async () => {
    await createTopic(kafka, grown, 2);
    await produce(
      kafka,
      grown,
      records.slice(0, 12_000).map((r) => ({ key: r.key, value: r.value, partition: r.partition })),
    );
    const dirs = folders.make();
    const groupId = uniqueName('idle-subtask-grown');
    const job = startParallelJob(
      { job: 'revenue', source: { kind: 'kafka', topic: grown, groupId, bounded: false, metadataMaxAgeMs: 1_000 } },
      dirs,
      PARALLELISM,
      env,
    );
    const rows = () => readJsonLines<RevenueRow>(dirs.outDir, 'windows');
    // A window far ahead of the workload, with one record from the new partition 2 (subtask 2's).
    const windowStart = Math.ceil((records[0]?.event?.source.ts_ms ?? 0) / 60_000) * 60_000 + 3_600_000;
    const ahead = windowStart + 120_000;
    const inWindow = () => rows().filter((r) => r.windowStart === windowStart);
    try {
      await waitUntil(
        () => rows().length > 0,
        120_000,
        () => job.tail(40),
      );
      const admin = kafka.admin();
      await admin.connect();
      // Subtask i's group commits what its completed checkpoints recorded (after its sinks committed).
      const committed = async (subtask: number, partition: number) => {
        const offsets = await admin.fetchOffsets({
          groupId: subtaskGroupId(groupId, subtask, PARALLELISM),
          topics: [grown],
        });
        return offsets.flatMap((t) => t.partitions).find((p) => p.partition === partition)?.offset;
      };
      try {
        await admin.createPartitions({ topicPartitions: [{ topic: grown, count: 3 }] });
        await produce(kafka, grown, [orderAt(2, 900_001, windowStart + 1_000, '7.00')]);
        await waitUntil(
          async () => (await committed(2, 2)) === '1',
          120_000,
          () => job.tail(40),
        );
        // Partitions 0 and 1 move far past the window; once their subtasks checkpointed that, what it
        // fired is in the output (up to the other subtasks' commit of that same checkpoint):
        // nothing, as partition 2 still holds the window back.
        await produce(kafka, grown, [orderAt(0, 900_002, ahead, '1.00'), orderAt(1, 900_003, ahead, '1.00')]);
        const ends = new Map((await admin.fetchTopicOffsets(grown)).map((p) => [p.partition, p.high]));
        await waitUntil(
          async () => (await committed(0, 0)) === ends.get(0) && (await committed(1, 1)) === ends.get(1),
          120_000,
          () => job.tail(40),
        );
      } finally {
        await admin.disconnect();
      }
      expect(inWindow()).toEqual([]);
      await produce(kafka, grown, [orderAt(2, 900_004, ahead, '1.00')]);
      await waitUntil(
        () => inWindow().length > 0,
        60_000,
        () => job.tail(40),
      );
      expect(inWindow().map(({ status, sum, count, firing }) => ({ status, sum, count, firing }))).toEqual([
        { status: 'paid', sum: '7.00', count: 1, firing: 'on-time' },
      ]);
    } finally {
      await job.kill();
    }
  }, 240_000);
});

/** Polls `condition` every 250 ms; fails after `timeoutMs` with `context`. */
async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
  context: () => string,
): Promise<void> {
  const started = Date.now();
  while (!(await condition())) {
    if (Date.now() - started > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms\n${context()}`);
    await sleep(250);
  }
}

/** One Debezium insert of an order on `partition`, committed at `tsMs`. */
function orderAt(partition: number, id: number, tsMs: number, amount: string) {
  const source = {
    version: '2.7.3.Final',
    connector: 'postgresql',
    name: 'ecommerce',
    ts_ms: tsMs,
    snapshot: 'false',
    db: 'ecommerce',
    sequence: null,
    schema: 'public',
    table: 'orders',
    txId: id,
    lsn: id,
    xmin: null,
  };
  const value = {
    before: null,
    after: { id, status: 'paid', amount },
    source,
    op: 'c',
    ts_ms: tsMs,
    transaction: null,
  };
  return { key: JSON.stringify({ id }), value: JSON.stringify(value), partition };
}
