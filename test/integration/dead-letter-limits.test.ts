/**
 * Issue 10, defect 3, against the real broker: one 5 MB garbage record, or a burst of 8 × 200 KB
 * bad records, used to kill the job — the dead-letter writer sent a batch's letters in one request
 * (one record batch, over the topic's `max.message.bytes`) and created the dead-letter topic with
 * the default 1 MB whatever the source allowed. Now sends are split under the limit, the topic
 * gets its source's `max.message.bytes`, and a letter too large for any limit is truncated with its
 * original size in a header: never a failed produce.
 */
import { ConfigResourceTypes, type Kafka } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { DLQ_HEADERS, type DeadLetter } from '../../operators/sources/kafka/dead-letter.ts';
import { deadLetterWriter } from '../../operators/sources/kafka/dead-letter-writer.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';
import { testKafka } from '../support/source-jobs.ts';

const kafka: Kafka = testKafka('dead-letter-limits');
const brokers = testEndpoints().kafkaBrokers.split(',');
const topics: string[] = [];

afterAll(async () => {
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics }).catch(() => undefined);
  await admin.disconnect();
});

async function createTopic(topic: string, maxMessageBytes?: number): Promise<void> {
  topics.push(topic);
  const admin = kafka.admin();
  await admin.connect();
  try {
    const configEntries =
      maxMessageBytes === undefined ? [] : [{ name: 'max.message.bytes', value: String(maxMessageBytes) }];
    await admin.createTopics({
      topics: [{ topic, numPartitions: 1, replicationFactor: 1, configEntries }],
      waitForLeaders: true,
    });
  } finally {
    await admin.disconnect();
  }
}

async function maxMessageBytes(topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const described = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['max.message.bytes'] }],
    });
    return Number(described.resources[0]?.configEntries[0]?.configValue);
  } finally {
    await admin.disconnect();
  }
}

async function countOf(topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    return offsets.reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
  } finally {
    await admin.disconnect();
  }
}

/** The last message of a topic, read with a consumer allowed to fetch big records. */
async function lastMessage(topic: string): Promise<{ value: Buffer | null; headers: Record<string, string> }> {
  const consumer = kafka.consumer({
    groupId: uniqueName('dlq-limits-reader'),
    maxWaitTimeInMs: 100,
    maxBytesPerPartition: 16 * 1024 * 1024,
    maxBytes: 32 * 1024 * 1024,
  });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nothing read from ${topic}`)), 30_000);
      void consumer.run({
        eachMessage: ({ message }) => {
          clearTimeout(timer);
          const headers = Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]));
          resolve({ value: message.value, headers });
          return Promise.resolve();
        },
      });
    });
  } finally {
    await consumer.disconnect();
  }
}

function letter(source: string, offset: number, bytes: number): DeadLetter {
  return {
    topic: source,
    partition: 0,
    offset: String(offset),
    reason: 'value is not valid UTF-8',
    errorKind: 'undecodable',
    key: Buffer.from(`{"id":${offset}}`),
    value: Buffer.alloc(bytes, 0xff),
    timestampMs: 1,
  };
}

describe('dead-letter writer limits (issue 10, defect 3)', () => {
  it('a 5 MB garbage record from a topic that allows 8 MB lands whole in a dead-letter topic created with 8 MB', async () => {
    const source = uniqueName('dlq-limits-src');
    const dlq = `${source}.dlq`;
    topics.push(dlq);
    await createTopic(source, 8 * 1024 * 1024);
    const writer = deadLetterWriter({ brokers, topic: dlq, clientId: 'dlq-limits', sourceTopics: [source] });
    try {
      await writer.write([letter(source, 0, 5 * 1024 * 1024)]);
    } finally {
      await writer.close();
    }
    expect(await maxMessageBytes(dlq)).toBe(8 * 1024 * 1024);
    const read = await lastMessage(dlq);
    expect(read.value?.length).toBe(5 * 1024 * 1024);
    expect(read.headers[DLQ_HEADERS.originalValueBytes]).toBeUndefined();
  }, 60_000);

  it('a burst of 8 × 200 KB letters into a 1 MB dead-letter topic is split into several sends, none refused', async () => {
    const source = uniqueName('dlq-burst-src');
    const dlq = `${source}.dlq`;
    await createTopic(source);
    topics.push(dlq);
    const writer = deadLetterWriter({ brokers, topic: dlq, clientId: 'dlq-limits', sourceTopics: [source] });
    try {
      await writer.write(Array.from({ length: 8 }, (_, i) => letter(source, i, 200 * 1024)));
    } finally {
      await writer.close();
    }
    expect(await countOf(dlq)).toBe(8);
  }, 60_000);

  it('a letter over the dead-letter topic limit is truncated, its original size in a header', async () => {
    const source = uniqueName('dlq-trunc-src');
    const dlq = `${source}.dlq`;
    await createTopic(dlq, 1024 * 1024);
    const writer = deadLetterWriter({ brokers, topic: dlq, clientId: 'dlq-limits', sourceTopics: [source] });
    try {
      await writer.write([letter(source, 0, 3 * 1024 * 1024)]);
    } finally {
      await writer.close();
    }
    const read = await lastMessage(dlq);
    expect(read.headers[DLQ_HEADERS.originalValueBytes]).toBe(String(3 * 1024 * 1024));
    expect(read.value?.length ?? 0).toBeLessThan(1024 * 1024);
    expect(read.value?.length ?? 0).toBeGreaterThan(900 * 1024);
  }, 60_000);
});
