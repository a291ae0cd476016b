/**
 * A consumer crash kafkajs does not restart from must fail the job (so the restart strategy and
 * the operator see it) instead of leaving it idle forever. Provoked for real: another application
 * already holds the consumer group with a different partition-assignment protocol, so the
 * source's join is refused with INCONSISTENT_GROUP_PROTOCOL, which kafkajs treats as fatal and
 * answers by stopping the consumer.
 */
import { AssignerProtocol, type Consumer } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { collectSink, debeziumSource, type ChangeEvent } from '../../runtime/index.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';
import { createTopic, produce, testJob, testKafka } from '../support/source-jobs.ts';

const kafka = testKafka('consumer-crash-test');
const cleanups: (() => Promise<void> | void)[] = [];

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** A member of `groupId` that only speaks an assignment protocol nobody else knows. */
async function foreignMember(topic: string, groupId: string): Promise<Consumer> {
  const consumer = kafka.consumer({
    groupId,
    sessionTimeout: 10_000,
    partitionAssigners: [
      () => ({
        name: 'SomeOtherApp',
        version: 0,
        assign: ({ members }) =>
          Promise.resolve(
            members.map(({ memberId }) => ({
              memberId,
              memberAssignment: AssignerProtocol.MemberAssignment.encode({
                version: 0,
                assignment: { [topic]: [0] },
                userData: Buffer.alloc(0),
              }),
            })),
          ),
        protocol: ({ topics }) => ({
          name: 'SomeOtherApp',
          metadata: AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: Buffer.alloc(0) }),
        }),
      }),
    ],
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
  await consumer.run({ eachMessage: () => Promise.resolve() });
  await joined;
  return consumer;
}

describe('debezium source when its consumer crashes for good', () => {
  it('fails the job with the consumer error instead of idling', async () => {
    const topic = uniqueName('consumer-crash');
    const groupId = uniqueName('shared-group');
    await createTopic(kafka, topic, 1);
    await produce(kafka, topic, [
      {
        key: '{"id":1}',
        value: JSON.stringify({ op: 'c', before: null, after: { id: 1 }, source: { lsn: 1, ts_ms: 0 } }),
        partition: 0,
      },
    ]);
    const other = await foreignMember(topic, groupId);
    cleanups.push(() => other.disconnect());
    const job = testJob(uniqueName('consumer-crash'));
    cleanups.push(() => job.cleanup());
    const out: ChangeEvent<{ id: number }>[] = [];
    job.env
      .fromSource(
        debeziumSource<{ id: number }>({
          topics: [topic],
          groupId,
          brokers: testEndpoints().kafkaBrokers.split(','),
          bounded: 'latest',
        }),
      )
      .sinkTo(collectSink(out));
    // Before: kafkajs stopped the consumer, the source kept polling an empty buffer, and the job
    // never ended; the bound only keeps a regression from hanging the suite.
    const outcome = await Promise.race([
      job.env.execute().then(
        () => 'finished',
        (error: unknown) => error,
      ),
      new Promise((resolve) => setTimeout(() => resolve('still running after 60 s'), 60_000).unref()),
    ]);
    if (outcome === 'still running after 60 s') void job.env.stop();
    expect(outcome).toBeInstanceOf(Error);
    expect(String((outcome as Error).message)).toMatch(/protocols are incompatible/);
    expect(out).toEqual([]);
  });
});
