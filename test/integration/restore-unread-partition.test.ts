/**
 * Restoring an older savepoint must re-read a partition that savepoint never read, from its
 * earliest offset — even when a later run of the job has committed offsets for it to the consumer
 * group. (The Kafka source used to start such a partition at the group's committed offset, which
 * skipped every record before it: a bounded job hung, an unbounded one lost them silently.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, Partitioners, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { ordersProjectionJob } from '../../jobs/orders-projection.ts';
import { StreamEnvironment, type EnvironmentOptions } from '../../runtime/index.ts';
import { generateWorkload } from '../../scripts/workload/generator.ts';
import { loadUpsertState } from '../support/checkpoint-state.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';

const brokers = testEndpoints().kafkaBrokers.split(',');
const kafka = new Kafka({ clientId: uniqueName('restore-unread'), brokers, logLevel: logLevel.NOTHING });
const dir = mkdtempSync(join(tmpdir(), 'cdcflow-restore-unread-'));
const topic = uniqueName('restore-unread');
const groupId = uniqueName('restore-unread-group');
const checkpointDir = join(dir, 'checkpoints');

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the projection job bounded, in this process; fails (instead of hanging) after 30 s. */
async function runBounded(restore: EnvironmentOptions['restore']): Promise<void> {
  const env = StreamEnvironment.create({
    jobName: 'orders-projection',
    checkpoints: { dir: checkpointDir },
    state: { dir: join(dir, 'state') },
    ...(restore === undefined ? {} : { restore }),
    log: () => undefined,
  });
  ordersProjectionJob(
    env,
    { topic, groupId, bounded: true },
    { name: 'discard', createOperator: () => ({ processBatch: () => undefined }) },
  );
  const timer = setTimeout(() => void env.stop(), 30_000);
  try {
    await env.execute();
  } finally {
    clearTimeout(timer);
  }
}

const state = () => loadUpsertState({ checkpointDir, jobName: 'orders-projection', operatorUid: 'orders-upsert' });

describe('restore from an older savepoint', () => {
  it('reads a partition the savepoint never read from its start, whatever the group committed', async () => {
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
    await admin.disconnect();
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    const records = [...generateWorkload({ keys: 20, events: 20, partitions: 2, seed: 5 })];
    const send = (partition: number) =>
      producer.send({
        topic,
        messages: records
          .filter((r) => r.partition === partition)
          .map((r) => ({ key: r.key, value: r.value, partition })),
      });
    const keysIn = (partition: number) => records.filter((r) => r.partition === partition).length;

    await send(0);
    await runBounded(undefined);
    const first = await state(); // partition 1 was empty: the savepoint has no position for it
    expect(first.entries.size).toBe(keysIn(0));
    expect(first.sourcePositions.has(`${topic}:1`)).toBe(false);

    await send(1);
    await runBounded('latest'); // reads partition 1 and commits its offsets to the group
    expect((await state()).entries.size).toBe(20);

    await runBounded({ savepoint: first.checkpoint.name as string });
    const again = await state();
    expect(again.checkpoint.kind).toBe('savepoint');
    expect(again.entries.size).toBe(20);
    expect(again.sourcePositions.get(`${topic}:1`)).toBe(String(keysIn(1)));
    await producer.disconnect();
  });
});
