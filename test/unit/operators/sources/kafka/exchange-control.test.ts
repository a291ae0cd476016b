/**
 * A repartition topic's watermark headers at the downstream source: control records are consumed
 * (their offsets advance) and never reach the job or the dead-letter topic; data records and
 * control records alike hand their upstream watermark to the runtime, which moves the watermark
 * without sending an empty batch downstream.
 */
import { describe, expect, it } from 'vitest';
import { debeziumSource } from '../../../../../runtime/index.ts';
import type { DeadLetter } from '../../../../../operators/sources/kafka/dead-letter.ts';
import type { DeadLetterWriter } from '../../../../../operators/sources/kafka/dead-letter-writer.ts';
import type { FetchedBatch, Fetcher } from '../../../../../operators/sources/kafka/fetcher.ts';
import type { RawMessage } from '../../../../../operators/sources/kafka/raw-message.ts';
import type { PollResult, SourceBatch } from '../../../../../operators/sources/source.ts';
import type { Element } from '../../../../../runtime/execution/operator-runner.ts';
import { SourceTask } from '../../../../../runtime/execution/source-task.ts';
import { WatermarkGenerator } from '../../../../../runtime/execution/watermark-generator.ts';
import { watermarkControlMessage, repartitionMessage } from '../../../../../runtime/group/repartition-topic.ts';
import type { ChangeEvent } from '../../../../../runtime/index.ts';
import { decodeDebeziumJson } from '../../../../../operators/sources/kafka/debezium-json.ts';
import { envelope } from './messages.ts';

const TOPIC = 'job-by-status-repartition';

function asRaw(offset: number, message: ReturnType<typeof watermarkControlMessage>): RawMessage {
  const bytes = (v: Buffer | string | null) => (v === null ? null : Buffer.from(v));
  return {
    topic: TOPIC,
    partition: 0,
    offset: String(offset),
    key: bytes(message.key),
    value: bytes(message.value),
    timestampMs: 0,
    headers: Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, Buffer.from(v)])),
  };
}

const decoded = decodeDebeziumJson({
  topic: 'orders',
  partition: 1,
  offset: '0',
  key: Buffer.from('{"id":42}'),
  value: Buffer.from(JSON.stringify(envelope())),
  timestampMs: 0,
});
if (decoded.kind !== 'change') throw new Error('the fixture must decode');
const event = decoded.event as ChangeEvent<Record<string, unknown>>;

async function poll(messages: readonly RawMessage[]) {
  const letters: DeadLetter[] = [];
  const deadLetters: DeadLetterWriter = {
    open: () => Promise.resolve(),
    write: (l) => (letters.push(...l), Promise.resolve()),
    close: () => Promise.resolve(),
  };
  const batch: FetchedBatch = { topic: TOPIC, partition: 0, messages, nextOffset: String(messages.length), bytes: 1 };
  const fetcher: Fetcher = {
    start: async (deliver) => void (await deliver(batch)),
    commit: () => Promise.resolve(),
    endOffsets: () => Promise.resolve(new Map()),
    assignment: () => [`${TOPIC}:0`],
    stop: () => Promise.resolve(),
  };
  const reader = debeziumSource({ topics: [TOPIC], groupId: 'g', fetcher, deadLetters }).createReader({
    jobName: 'job',
    uid: 'source',
    subtaskIndex: 0,
    parallelism: 1,
    metrics: { count: () => undefined, gauge: () => undefined, observe: () => undefined },
  });
  await reader.open(undefined);
  const polled = await reader.poll(1000);
  const snapshot = reader.snapshot(1);
  await reader.close();
  return { polled, letters, snapshot };
}

describe('exchange watermarks at the downstream source', () => {
  it('consumes control records: not emitted, not dead-lettered, offsets advance, watermarks carried', async () => {
    const data = repartitionMessage(event, () => 'paid', 1, { origin: 'job.up.orders-1', watermark: 7_000 });
    const { polled, letters, snapshot } = await poll([
      asRaw(0, watermarkControlMessage(0, { origin: 'job.up.orders-0', watermark: Number.NEGATIVE_INFINITY })),
      asRaw(1, { ...data, key: Buffer.from(data.key as string), value: Buffer.from(data.value as string) }),
      asRaw(2, watermarkControlMessage(0, { origin: 'job.up.orders-0', watermark: 3_000, origins: 2 })),
    ]);
    expect(letters).toEqual([]);
    const batch = polled as SourceBatch<ChangeEvent<Record<string, unknown>>>;
    expect(batch.records.map((r) => r.value.after)).toEqual([event.after]);
    expect(batch.carried).toEqual([
      { origin: 'job.up.orders-0', watermark: Number.NEGATIVE_INFINITY },
      { origin: 'job.up.orders-1', watermark: 7_000 },
      { origin: 'job.up.orders-0', watermark: 3_000, origins: 2 },
    ]);
    expect(snapshot.positions).toEqual([{ split: `${TOPIC}:0`, position: '3' }]);
  });

  it('a batch of control records only: no records, no empty batch downstream, the watermark moves', async () => {
    const { polled } = await poll([
      asRaw(0, watermarkControlMessage(0, { origin: 'a', watermark: 4_000 })),
      asRaw(1, watermarkControlMessage(0, { origin: 'b', watermark: 6_000 })),
    ]);
    expect((polled as SourceBatch<unknown>).records).toEqual([]);
    const sent: Element[] = [];
    const generator = new WatermarkGenerator({
      outOfOrdernessMs: 5_000,
      timestampOf: undefined,
      idlenessMs: undefined,
    });
    const task = new SourceTask(
      'source',
      'source',
      { poll: () => Promise.resolve(polled), snapshot: () => ({ positions: [] }) } as never,
      generator,
      () => undefined,
    );
    task.downstream.push({
      runner: {
        push: (_input: number, e: Element) => void sent.push(e),
        pushBarrier: () => Promise.resolve(),
      } as never,
      input: 0,
      sideOutput: undefined,
    });
    await task.deliver(polled as PollResult<unknown>);
    expect(sent).toEqual([{ kind: 'watermark', timestamp: 4_000 }]);
    const { snapshot } = await task.injectBarrier(1);
    expect(snapshot.carriedWatermarks).toEqual([
      { split: `${TOPIC}:0`, origin: 'a', watermark: 4_000 },
      { split: `${TOPIC}:0`, origin: 'b', watermark: 6_000 },
    ]);
  });

  it('a plain Debezium message (no exchange headers) carries nothing', async () => {
    const { polled } = await poll([
      {
        topic: TOPIC,
        partition: 0,
        offset: '0',
        key: Buffer.from('{"id":42}'),
        value: Buffer.from(JSON.stringify(envelope())),
        timestampMs: 0,
      },
    ]);
    expect((polled as SourceBatch<unknown>).carried).toBeUndefined();
    expect((polled as SourceBatch<unknown>).records).toHaveLength(1);
  });
});
