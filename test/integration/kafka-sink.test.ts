/**
 * The transactional Kafka sink against the real broker, driven through its operator the way the
 * runtime drives it: processBatch → snapshotState(n) (pre-commit) → notifyCheckpointComplete(n).
 * "Visible" means visible to a read_committed consumer; the last stable offset (what ListOffsets
 * returns under read_committed) shows invisibility without waiting for something not to arrive.
 */
import { Kafka, logLevel, type Admin, type Consumer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Operator, OperatorContext, StreamRecord } from '../../runtime/index.ts';
import { kafkaSink } from '../../operators/sinks/kafka/kafka-sink.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';
import { readValuesUntil } from '../support/kafka-read.ts';
import {
  SINK_COMMIT_SECONDS,
  SINK_VISIBILITY_SECONDS,
  SINK_RECORDS_COMMITTED,
} from '../../operators/sinks/sink-metrics.ts';
import { RecordingMetrics, countingOperatorContext, recordingOperatorContext } from '../support/operator-context.ts';

const brokers = testEndpoints().kafkaBrokers.split(',');
const kafka = new Kafka({ clientId: uniqueName('kafka-sink-test'), brokers, logLevel: logLevel.NOTHING });
let admin: Admin;
const consumers: Consumer[] = [];
const operators: Operator<string, never>[] = [];

beforeAll(async () => {
  admin = kafka.admin();
  await admin.connect();
});

afterAll(async () => {
  for (const op of operators) await op.close?.()?.catch(() => undefined);
  await Promise.all(consumers.map((c) => c.disconnect().catch(() => undefined)));
  await admin.disconnect();
});

async function createTopic(): Promise<string> {
  const topic = uniqueName('sink-out');
  await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true });
  return topic;
}

function context(jobName: string, counters: Map<string, number> = new Map()): OperatorContext {
  return countingOperatorContext(jobName, 'out', counters);
}

async function openSink(
  topic: string,
  jobName: string,
  restored?: unknown,
  counters?: Map<string, number>,
  slots = 3,
): Promise<Operator<string, never>> {
  const sink = kafkaSink<string>(
    { brokers, topic, serialize: (value) => ({ key: value, value }), maxTransactionSlots: slots },
    { commitAttempts: 2, initialBackoffMs: 50 },
  );
  const op = sink.createOperator();
  operators.push(op);
  await op.open?.(context(jobName, counters), restored);
  return op;
}

const records = (...values: string[]): StreamRecord<string>[] =>
  values.map((value) => ({ value, timestamp: undefined }));
const noOutput = { emit: () => undefined, emitSide: () => undefined };

/** Last stable offset of partition 0: read_committed consumers read nothing at or past it. */
async function lastStableOffset(topic: string): Promise<number> {
  const [p] = await admin.fetchTopicOffsets(topic);
  return Number(p?.offset ?? -1);
}

async function lastStableOffsetReaching(topic: string, atLeast: number): Promise<number> {
  const deadline = Date.now() + 30_000;
  let offset = await lastStableOffset(topic);
  while (offset < atLeast && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    offset = await lastStableOffset(topic);
  }
  return offset;
}

/** Everything a read_committed consumer reads from the start up to and including `last`. */
function readCommittedUntil(topic: string, last: string): Promise<string[]> {
  return readValuesUntil(kafka, topic, last, { nullAs: '<tombstone>', track: (c) => consumers.push(c) });
}

/** A crash as the broker sees it: the sockets close, no EndTxn, no InitProducerId. */
async function crash(op: Operator<string, never>): Promise<void> {
  operators.splice(operators.indexOf(op), 1);
  await op.close?.();
}

describe('kafka sink (transactional, real broker)', () => {
  it('keeps records invisible to read_committed until their checkpoint completes', async () => {
    const topic = await createTopic();
    const op = await openSink(topic, uniqueName('job'));
    await op.processBatch(records('a', 'b'), noOutput);
    await op.processBatch(records('c'), noOutput);
    await op.snapshotState?.(1);
    // Written and acknowledged, yet past the last stable offset: read_committed sees none of it.
    expect(await lastStableOffset(topic)).toBe(0);
    await op.notifyCheckpointComplete?.(1);
    // EndTxn returns once the coordinator decided; the markers reach the partition a moment later.
    expect(await lastStableOffsetReaching(topic, 3)).toBeGreaterThanOrEqual(3);

    await op.processBatch(records('d'), noOutput);
    await op.snapshotState?.(2);
    await op.notifyCheckpointComplete?.(2);
    expect(await readCommittedUntil(topic, 'd')).toEqual(['a', 'b', 'c', 'd']);
  });

  it('reports each non-empty transaction when pre-committed and when committed, and what a restore did', async () => {
    const topic = await createTopic();
    const job = uniqueName('job');
    const events: string[] = [];
    const lines: string[] = [];
    const create = () =>
      kafkaSink<string>(
        {
          brokers,
          topic,
          serialize: (value) => ({ key: value, value }),
          maxTransactionSlots: 2,
          onTransaction: (t) => void events.push(`${t.phase} ${t.checkpointId}: ${t.records}`),
          log: (l) => void lines.push(l),
        },
        { commitAttempts: 2, initialBackoffMs: 50 },
      ).createOperator();
    const first = create();
    operators.push(first);
    await first.open?.(context(job), undefined);
    await first.processBatch(records('a', 'b'), noOutput);
    const snapshot = await first.snapshotState?.(1);
    await first.snapshotState?.(2); // empty: no event
    await crash(first);
    expect(events).toEqual(['prepared 1: 2']);

    const second = create();
    operators.push(second);
    await second.open?.(context(job), JSON.parse(JSON.stringify(snapshot)));
    expect(lines.filter((l) => l.startsWith('restore: committing recorded transaction')).length).toBe(1);
    expect(lines.filter((l) => l.startsWith('restore: committed ')).length).toBe(1);
    expect(lines.at(-1)).toMatch(/^restore: fenced 2 transactional ids from slot 1 on/);
    await second.processBatch(records('c'), noOutput);
    await second.snapshotState?.(3);
    await second.notifyCheckpointComplete?.(3);
    expect(events).toEqual(['prepared 1: 2', 'prepared 3: 1', 'committed 3: 1']);
    expect(await readCommittedUntil(topic, 'c')).toEqual(['a', 'b', 'c']);
  });

  it('reports freshness and commit seconds when the transaction commits, not before', async () => {
    const topic = await createTopic();
    const metrics = new RecordingMetrics();
    const sink = kafkaSink<{ id: string; ts: number }>({
      brokers,
      topic,
      serialize: ({ id, ts }) => ({ key: id, value: id, sourceTsMs: ts }),
    });
    const op = sink.createOperator() as Operator<{ id: string; ts: number }, never>;
    await op.open?.(recordingOperatorContext(uniqueName('job'), 'out', metrics), undefined);
    const committedAt = Date.now() - 5000;
    await op.processBatch(
      [
        { value: { id: 'a', ts: committedAt }, timestamp: undefined },
        { value: { id: 'b', ts: committedAt }, timestamp: undefined },
      ],
      noOutput,
    );
    await op.snapshotState?.(1);
    expect(metrics.observed(SINK_VISIBILITY_SECONDS)).toEqual([]);
    await op.notifyCheckpointComplete?.(1);
    const freshness = metrics.observed(SINK_VISIBILITY_SECONDS);
    expect(freshness).toHaveLength(2);
    expect(Math.min(...freshness)).toBeGreaterThanOrEqual(5);
    expect(metrics.observations.get(SINK_VISIBILITY_SECONDS)?.[0]?.labels).toEqual({ sink: 'kafka' });
    expect(metrics.observed(SINK_COMMIT_SECONDS)).toHaveLength(1);
    expect(metrics.counts.get(SINK_RECORDS_COMMITTED)).toBe(2);
    await op.close?.();
  });

  it('commits a transaction pre-committed before a crash from the stored handle, and aborts the open one', async () => {
    const topic = await createTopic();
    const job = uniqueName('job');
    const first = await openSink(topic, job);
    await first.processBatch(records('before-1', 'before-2'), noOutput);
    const snapshot = await first.snapshotState?.(1); // checkpoint 1 completes: its metadata holds this
    await first.processBatch(records('after-checkpoint'), noOutput); // in the next, never-prepared transaction
    await crash(first); // dies before notifyCheckpointComplete(1) reached the sink

    expect(await lastStableOffset(topic)).toBe(0);
    const counters = new Map<string, number>();
    const second = await openSink(topic, job, JSON.parse(JSON.stringify(snapshot)), counters);
    expect(counters.get('cdcflow_kafka_sink_recovered_total{"outcome":"committed"}')).toBe(1);
    await second.processBatch(records('replayed-after-checkpoint', 'end'), noOutput);
    await second.snapshotState?.(2);
    await second.notifyCheckpointComplete?.(2);
    expect(await readCommittedUntil(topic, 'end')).toEqual([
      'before-1',
      'before-2',
      'replayed-after-checkpoint',
      'end',
    ]);
  });

  it('treats a recorded transaction that already committed as done, even once its slot moved on', async () => {
    const topic = await createTopic();
    const job = uniqueName('job');
    const first = await openSink(topic, job, undefined, undefined, 2);
    await first.processBatch(records('once'), noOutput);
    const snapshot = await first.snapshotState?.(1);
    await first.notifyCheckpointComplete?.(1);
    await first.processBatch(records('in-checkpoint-2'), noOutput);
    await first.snapshotState?.(2); // prepared, but checkpoint 2 never completes
    await first.processBatch(records('uncheckpointed'), noOutput); // on checkpoint 1's slot, new epoch
    await crash(first);

    const counters = new Map<string, number>();
    const second = await openSink(topic, job, JSON.parse(JSON.stringify(snapshot)), counters, 2);
    // Checkpoint 1's slot has a newer epoch now: EndTxn with the stored one is refused, so it can
    // neither commit the transaction open there at the crash nor count the old one twice.
    expect(counters.get('cdcflow_kafka_sink_recovered_total{"outcome":"superseded"}')).toBe(1);
    await second.processBatch(records('end'), noOutput);
    await second.snapshotState?.(2);
    await second.notifyCheckpointComplete?.(2);
    expect(await readCommittedUntil(topic, 'end')).toEqual(['once', 'end']);
  });

  it('commits a recorded transaction again after a crash during the commit: visible once', async () => {
    const topic = await createTopic();
    const job = uniqueName('job');
    const first = await openSink(topic, job);
    await first.processBatch(records('once'), noOutput);
    const snapshot = await first.snapshotState?.(1);
    await first.notifyCheckpointComplete?.(1);
    await crash(first);

    const counters = new Map<string, number>();
    const second = await openSink(topic, job, JSON.parse(JSON.stringify(snapshot)), counters);
    expect(counters.get('cdcflow_kafka_sink_recovered_total{"outcome":"committed"}')).toBe(1); // a no-op EndTxn
    await second.processBatch(records('end'), noOutput);
    await second.snapshotState?.(2);
    await second.notifyCheckpointComplete?.(2);
    expect(await readCommittedUntil(topic, 'end')).toEqual(['once', 'end']);
  });

  it('fences a zombie: its open and prepared transactions abort and its next pre-commit fails', async () => {
    const topic = await createTopic();
    const job = uniqueName('job');
    const zombie = await openSink(topic, job);
    await zombie.processBatch(records('zombie-prepared'), noOutput);
    await zombie.snapshotState?.(1);
    await zombie.processBatch(records('zombie-open'), noOutput);

    // A new incarnation restores from before checkpoint 1 (it never completed).
    const successor = await openSink(topic, job, undefined);
    await expect(
      (async () => {
        await zombie.processBatch(records('zombie-late'), noOutput);
        await zombie.snapshotState?.(2);
      })(),
    ).rejects.toThrow();

    await successor.processBatch(records('end'), noOutput);
    await successor.snapshotState?.(1);
    await successor.notifyCheckpointComplete?.(1);
    expect(await readCommittedUntil(topic, 'end')).toEqual(['end']);
  });
});
