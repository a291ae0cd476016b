/**
 * The replay tool (issue 10): dead letters re-injected, all or filtered by reason and stage, into
 * their source topic or a chosen one — the original key and value, once per letter even when the
 * dead-letter topic holds it twice, and never a truncated letter.
 */
import type { Kafka } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import type { DeadLetter } from '../../operators/sources/kafka/dead-letter.ts';
import { replayDeadLetters } from '../../operators/sources/kafka/dead-letter-replay.ts';
import { deadLetterWriter } from '../../operators/sources/kafka/dead-letter-writer.ts';
import { readAll } from '../../scripts/workload/bad-records-mix.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';
import { createTopic, testKafka } from '../support/source-jobs.ts';

const kafka: Kafka = testKafka('dead-letter-replay');
const brokers = testEndpoints().kafkaBrokers.split(',');
const topics: string[] = [];

afterAll(async () => {
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics }).catch(() => undefined);
  await admin.disconnect();
});

const letter = (
  source: string,
  offset: number,
  errorKind: DeadLetter['errorKind'],
  stage: string,
  bytes = 20,
): DeadLetter => ({
  topic: source,
  partition: 0,
  offset: String(offset),
  reason: 'test',
  errorKind,
  stage,
  key: Buffer.from(`{"id":${offset}}`),
  value: Buffer.alloc(bytes, 0x61),
  timestampMs: 1,
});

describe('dead-letter replay', () => {
  it('re-injects matching letters once into the source topic or --to, skipping truncated ones; a dry run produces nothing', async () => {
    const source = uniqueName('replay-src');
    const dlq = `${source}.dlq`;
    const target = uniqueName('replay-to');
    topics.push(source, dlq, target);
    await createTopic(kafka, source, 1);
    await createTopic(kafka, target, 1);
    await createTopic(kafka, dlq, 1);
    const writer = deadLetterWriter({ brokers, topic: dlq, clientId: 'replay-test' });
    try {
      const letters = [
        letter(source, 1, 'sink-refused', 'orders-pg'),
        letter(source, 2, 'undecodable', 'decode'),
        letter(source, 3, 'sink-refused', 'orders-pg'),
      ];
      await writer.write(letters);
      await writer.write([letters[0] as DeadLetter]); // at-least-once: the same letter again
      await writer.write([letter(source, 4, 'sink-refused', 'orders-pg', 2 * 1024 * 1024)]); // truncated to fit 1 MB
    } finally {
      await writer.close();
    }

    const dry = await replayDeadLetters({ brokers, from: dlq, reason: 'sink-refused', dryRun: true });
    expect(dry).toMatchObject({
      read: 5,
      matched: 4,
      replayed: 0,
      duplicates: 1,
      truncated: 1,
      byTarget: { [source]: 2 },
    });

    const toTarget = await replayDeadLetters({ brokers, from: dlq, to: target, stage: 'orders-pg' });
    expect(toTarget).toMatchObject({ replayed: 2, duplicates: 1, truncated: 1 });
    const replayed = await readAll(kafka, target);
    expect(replayed.map((r) => r.message.key?.toString()).sort()).toEqual(['{"id":1}', '{"id":3}']);
    expect(replayed.every((r) => r.message.value?.equals(Buffer.alloc(20, 0x61)))).toBe(true);

    const toSource = await replayDeadLetters({ brokers, from: dlq, stage: 'decode' });
    expect(toSource).toMatchObject({ replayed: 1, byTarget: { [source]: 1 } });
    expect((await readAll(kafka, source)).map((r) => r.message.key?.toString())).toEqual(['{"id":2}']);
  }, 90_000);
});
