/**
 * The broker the stack starts (or the one KAFKA_BROKERS names) does what cdcflow relies on, spoken
 * through kafkajs 2.2.4: plain produce/consume, transactions whose aborted records a
 * read-committed consumer never sees, and consumer offsets committed inside a transaction.
 */
import { Kafka, logLevel, type Admin, type Consumer, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';
import { readValuesUntil } from '../support/kafka-read.ts';

const kafka = new Kafka({
  clientId: uniqueName('kafka-smoke'),
  brokers: testEndpoints().kafkaBrokers.split(','),
  // kafkajs logs every retried error response (e.g. CONCURRENT_TRANSACTIONS right after a commit)
  // at ERROR; real failures reach the tests as rejections.
  logLevel: logLevel.NOTHING,
});

const open: (Admin | Consumer | Producer)[] = [];
function track<T extends Admin | Consumer | Producer>(client: T): T {
  open.push(client);
  return client;
}

let admin: Admin;

beforeAll(async () => {
  admin = track(kafka.admin());
  await admin.connect();
});

afterAll(async () => {
  await Promise.all(open.map((client) => client.disconnect().catch(() => undefined)));
});

async function createTopic(prefix: string): Promise<string> {
  const topic = uniqueName(prefix);
  await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true });
  return topic;
}

function readUntil(topic: string, last: string, readUncommitted: boolean): Promise<string[]> {
  return readValuesUntil(kafka, topic, last, { readUncommitted, track });
}

describe('kafka broker (smoke)', () => {
  it('describes a one-node cluster', async () => {
    const cluster = await admin.describeCluster();
    expect(cluster.brokers).toHaveLength(1);
    expect(cluster.controller).not.toBeNull();
  });

  it('round-trips records with keys and headers through produce and consume', async () => {
    const topic = await createTopic('smoke-roundtrip');
    const producer = track(kafka.producer());
    await producer.connect();
    const sent = ['one', 'two', 'three'];
    await producer.send({
      topic,
      acks: -1,
      messages: sent.map((value, i) => ({ key: `k${i}`, value, headers: { seq: String(i) } })),
    });
    expect(await readUntil(topic, 'three', false)).toEqual(sent);
  });

  it('hides aborted transactions from a read-committed consumer', async () => {
    const topic = await createTopic('smoke-txn');
    const producer = track(
      kafka.producer({ transactionalId: uniqueName('smoke-txn'), maxInFlightRequests: 1, idempotent: true }),
    );
    await producer.connect();

    const committed = await producer.transaction();
    await committed.send({ topic, messages: [{ value: 'committed-1' }, { value: 'committed-2' }] });
    await committed.commit();

    const aborted = await producer.transaction();
    await aborted.send({ topic, messages: [{ value: 'aborted-1' }, { value: 'aborted-2' }] });
    await aborted.abort();

    // A last committed record: once a consumer sees it, it has passed everything before it.
    const end = await producer.transaction();
    await end.send({ topic, messages: [{ value: 'end' }] });
    await end.commit();

    expect(await readUntil(topic, 'end', false)).toEqual(['committed-1', 'committed-2', 'end']);
    // The aborted records were written (a read-uncommitted consumer sees them), only hidden.
    expect(await readUntil(topic, 'end', true)).toEqual([
      'committed-1',
      'committed-2',
      'aborted-1',
      'aborted-2',
      'end',
    ]);
  });

  it('commits consumer offsets inside a transaction (sendOffsets), visible once markers land', async () => {
    const topic = await createTopic('smoke-sendoffsets');
    const groupId = uniqueName('smoke-eos-group');
    const producer = track(
      kafka.producer({ transactionalId: uniqueName('smoke-eos'), maxInFlightRequests: 1, idempotent: true }),
    );
    await producer.connect();
    const txn = await producer.transaction();
    await txn.send({ topic, messages: [{ value: 'out' }] });
    await txn.sendOffsets({
      consumerGroupId: groupId,
      topics: [{ topic, partitions: [{ partition: 0, offset: '7' }] }],
    });
    await txn.commit();
    // commit() returns when the coordinator has the decision; the offset becomes readable when the
    // commit marker reaches __consumer_offsets, a moment later (OffsetFetch here is not requireStable).
    const deadline = Date.now() + 10_000;
    let offset = '-1';
    while (offset !== '7' && Date.now() < deadline) {
      const [fetched] = await admin.fetchOffsets({ groupId, topics: [topic] });
      offset = fetched?.partitions[0]?.offset ?? '-1';
      if (offset !== '7') await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(offset).toBe('7');
  });
});
