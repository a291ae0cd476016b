/**
 * A position the broker no longer has must never be skipped silently. Retention deleting the
 * segments a lagging job has not read yet is reproduced with `deleteRecords` (what retention does,
 * at once): kafkajs alone logs "Offset out of range, resetting to default offset" and goes on from
 * the earliest offset. The source must fail with an error naming topic, partition, the offset and
 * the earliest offset available — at restore and while running — unless the job chose a policy,
 * and then the skipped records are counted.
 */
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { debeziumSource, SourceOffsetOutOfRangeError, type OffsetOutOfRangePolicy } from '../../runtime/index.ts';
import type { DeadLetterWriter } from '../../operators/sources/kafka/dead-letter-writer.ts';
import type { SourceReader } from '../../operators/sources/source.ts';
import type { ChangeEvent } from '../../operators/change-event.ts';
import { generateWorkload } from '../../scripts/workload/generator.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';

const brokers = testEndpoints().kafkaBrokers.split(',');
const kafka = new Kafka({ clientId: uniqueName('offset-range'), brokers, logLevel: logLevel.NOTHING });
const admin = kafka.admin();
const producer = kafka.producer();
const topics: string[] = [];
const noDeadLetters: DeadLetterWriter = {
  open: () => Promise.resolve(),
  write: () => Promise.reject(new Error('no dead letters expected')),
  close: () => Promise.resolve(),
};
const records = [...generateWorkload({ keys: 100, events: 300, partitions: 1, seed: 15 })].filter(
  (r) => r.value !== null,
);

beforeAll(async () => {
  await admin.connect();
  await producer.connect();
});

afterAll(async () => {
  await admin.deleteTopics({ topics }).catch(() => undefined);
  await producer.disconnect();
  await admin.disconnect();
});

async function topicWith(count: number): Promise<string> {
  const topic = uniqueName('offset-range');
  topics.push(topic);
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
  await produce(topic, 0, count);
  return topic;
}

async function produce(topic: string, from: number, to: number): Promise<void> {
  await producer.send({
    topic,
    messages: records.slice(from, to).map((r) => ({ key: r.key, value: r.value, partition: 0 })),
  });
}

/** What retention does to a lagging job: every record below `offset` is gone. */
async function deleteBelow(topic: string, offset: number): Promise<void> {
  // kafkajs finds the partition leader in its metadata cache, which a new topic is not in yet.
  await admin.fetchTopicOffsets(topic);
  await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: String(offset) }] });
}

interface Opened {
  readonly reader: SourceReader<ChangeEvent<unknown>>;
  readonly skipped: { value: number };
  readonly logs: string[];
}

function reader(topic: string, policy: OffsetOutOfRangePolicy | undefined, maxBufferedBytes?: number): Opened {
  const skipped = { value: 0 };
  const logs: string[] = [];
  const source = debeziumSource({
    topics: [topic],
    groupId: uniqueName('offset-range-group'),
    brokers,
    deadLetters: noDeadLetters,
    sessionTimeoutMs: 6000,
    log: (line) => logs.push(line),
    ...(policy === undefined ? {} : { offsetOutOfRange: policy }),
    ...(maxBufferedBytes === undefined ? {} : { maxBufferedBytes }),
  });
  const metrics = {
    count: (name: string, _labels?: unknown, by = 1) => {
      if (name === 'cdcflow_source_offsets_skipped_total') skipped.value += by;
    },
    gauge: () => undefined,
    observe: () => undefined,
  };
  return {
    reader: source.createReader({ jobName: 'offset-range', uid: 'source', subtaskIndex: 0, parallelism: 1, metrics }),
    skipped,
    logs,
  };
}

/** Polls until `count` records were read (or the reader fails); returns their offsets. */
async function read(r: SourceReader<ChangeEvent<unknown>>, count: number, deadlineMs = 30_000): Promise<number[]> {
  const offsets: number[] = [];
  const until = Date.now() + deadlineMs;
  while (offsets.length < count && Date.now() < until) {
    const result = await r.poll(200);
    if (typeof result === 'object') for (const rec of result.records) offsets.push(Number(rec.value.origin.offset));
  }
  return offsets;
}

describe('source offsets out of range', () => {
  it('fails at restore when the checkpointed offset was deleted by retention', async () => {
    const topic = await topicWith(100);
    await deleteBelow(topic, 60);
    const { reader: r } = reader(topic, undefined);
    const opened = r.open({ positions: [{ split: `${topic}:0`, position: '20' }] });
    await expect(opened).rejects.toThrow(SourceOffsetOutOfRangeError);
    await expect(opened).rejects.toThrow(
      new RegExp(`${topic} partition 0: checkpoint offset 20 is out of range, the earliest offset available is 60`),
    );
    await r.close();
  });

  it('fails at restore when the topic was recreated (offset beyond its end)', async () => {
    const topic = await topicWith(10);
    const { reader: r } = reader(topic, undefined);
    const opened = r.open({ positions: [{ split: `${topic}:0`, position: '500' }] });
    await expect(opened).rejects.toThrow(
      /checkpoint offset 500 is beyond the end of the partition \(high watermark 10/,
    );
    await r.close();
  });

  it("resumes at the earliest offset under the 'earliest' policy and counts the skip", async () => {
    const topic = await topicWith(100);
    await deleteBelow(topic, 60);
    const { reader: r, skipped, logs } = reader(topic, 'earliest');
    await r.open({ positions: [{ split: `${topic}:0`, position: '20' }] });
    const offsets = await read(r, 40);
    expect(offsets[0]).toBe(60);
    expect(skipped.value).toBe(40);
    expect(logs.join('\n')).toMatch(/resuming at 60, 40 records skipped/);
    await r.close();
  });

  it('fails while running when retention deletes what a lagging job has not read yet', async () => {
    const topic = await topicWith(100);
    // A buffer of one batch: the fetcher waits for the job, which does not poll — it lags.
    const { reader: r } = reader(topic, undefined, 1);
    await r.open({ positions: [{ split: `${topic}:0`, position: '0' }] });
    expect((await read(r, 1))[0]).toBe(0);
    // Fetched into the buffer, which then holds the fetcher: the job lags from here on.
    await produce(topic, 100, 150);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await produce(topic, 150, 250);
    await deleteBelow(topic, 200);
    const failure = read(r, 1000, 20_000).then(
      () => undefined,
      (error: unknown) => error,
    );
    const error = await failure;
    expect(error).toBeInstanceOf(SourceOffsetOutOfRangeError);
    expect(String((error as Error).message)).toMatch(
      new RegExp(`${topic} partition 0: fetch offset 150 is out of range, the earliest offset available is 200`),
    );
    await r.close();
  });
});
