/**
 * The idempotent Elasticsearch sink against the real server (ES 7.10), driven through its
 * operator: external versions (= LSNs) make replays and reordering harmless, deletes are
 * versioned too, refused documents go to a Kafka dead-letter topic, throttling is retried.
 */
import { Client } from '@elastic/elasticsearch';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Operator, OperatorContext, StreamRecord, TableChange } from '../../runtime/index.ts';
import { elasticsearchBulkClient, type BulkClient } from '../../operators/sinks/elasticsearch/bulk-client.ts';
import { tableChangeAction } from '../../operators/sinks/elasticsearch/document-action.ts';
import { DOCUMENT_DLQ_HEADERS } from '../../operators/sinks/elasticsearch/document-dead-letters.ts';
import {
  elasticsearchSink,
  type ElasticsearchSinkOptions,
} from '../../operators/sinks/elasticsearch/elasticsearch-sink.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';
import { countingOperatorContext } from '../support/operator-context.ts';
import { streamPosition } from '../../state/change-position.ts';
import { externalVersionOf } from '../../operators/sinks/elasticsearch/external-version.ts';

/** The external version of a streamed change at `lsn` (last commit 0): 2^52 + lsn. */
const v = (lsn: number): number => externalVersionOf(streamPosition(0, lsn));

interface Order {
  readonly id: number;
  readonly status: string;
  readonly amount: number | string;
}
type Change = TableChange<number, Order>;

const { elasticsearchUrl, kafkaBrokers } = testEndpoints();
const brokers = kafkaBrokers.split(',');
const es = new Client({ node: elasticsearchUrl });
const kafka = new Kafka({ clientId: uniqueName('es-sink-test'), brokers, logLevel: logLevel.NOTHING });
const indices: string[] = [];
const consumers: Consumer[] = [];

beforeAll(async () => {
  await es.ping();
});

afterAll(async () => {
  for (const index of indices) await es.indices.delete({ index }, { ignore: [404] });
  await Promise.all(consumers.map((c) => c.disconnect().catch(() => undefined)));
  await es.close();
});

async function createIndex(): Promise<string> {
  const index = uniqueName('orders');
  indices.push(index);
  await es.indices.create({
    index,
    body: {
      mappings: {
        dynamic: 'strict',
        properties: { id: { type: 'long' }, status: { type: 'keyword' }, amount: { type: 'double' } },
      },
    },
  });
  return index;
}

function context(counters: Map<string, number>): OperatorContext {
  return countingOperatorContext('es-sink-test', 'es', counters);
}

async function openSink(
  index: string,
  counters: Map<string, number>,
  extra: Partial<ElasticsearchSinkOptions<Change>> = {},
): Promise<Operator<Change, never>> {
  const op = elasticsearchSink<Change>({
    node: elasticsearchUrl,
    toAction: tableChangeAction(index),
    refresh: true,
    initialBackoffMs: 10,
    ...extra,
  }).createOperator();
  await op.open?.(context(counters), undefined);
  return op;
}

const upsert = (id: number, lsn: number, status: string, amount: number | string = 10): Change => ({
  kind: 'upsert',
  key: id,
  row: { id, status, amount },
  previous: null,
  position: streamPosition(0, lsn),
  sourceTsMs: 0,
});
const del = (id: number, lsn: number): Change => ({
  kind: 'delete',
  key: id,
  previous: null,
  position: streamPosition(0, lsn),
  sourceTsMs: 0,
});
const batch = (...changes: Change[]): StreamRecord<Change>[] =>
  changes.map((value) => ({ value, timestamp: undefined }));
const noOutput = { emit: () => undefined, emitSide: () => undefined };

async function stored(index: string, id: number): Promise<{ version: number; source: Order } | undefined> {
  const { body, statusCode } = await es.get({ index, id: String(id) }, { ignore: [404] });
  if (statusCode === 404) return undefined;
  const doc = body as { _version: number; _source: Order };
  return { version: doc._version, source: doc._source };
}

describe('elasticsearch sink (external versions, real server)', () => {
  it('never lets a replay or an older LSN regress a document', async () => {
    const index = await createIndex();
    const counters = new Map<string, number>();
    const op = await openSink(index, counters);
    await op.processBatch(batch(upsert(1, 100, 'paid'), upsert(2, 101, 'pending')), noOutput);
    await op.snapshotState?.(1);

    // A replay from an older checkpoint: the same LSNs, and an older one, in another order.
    await op.processBatch(batch(upsert(1, 90, 'pending')), noOutput);
    await op.processBatch(batch(upsert(2, 101, 'pending'), upsert(1, 100, 'paid')), noOutput);
    await op.snapshotState?.(2);
    await op.processBatch(batch(upsert(2, 150, 'shipped'), upsert(1, 90, 'pending')), noOutput);
    await op.close?.();

    expect(await stored(index, 1)).toEqual({ version: v(100), source: { id: 1, status: 'paid', amount: 10 } });
    expect(await stored(index, 2)).toEqual({ version: v(150), source: { id: 2, status: 'shipped', amount: 10 } });
    // Within one buffer only the newest action per document is sent. Equal versions are written
    // again (version_type external_gte: a transaction's changes may share one, external-version.ts);
    // an older one bounces (409).
    expect(counters.get('cdcflow_es_sink_documents_total{"outcome":"stale"}')).toBe(1);
  });

  it('reports what each barrier flushed, including buffer-full flushes before it', async () => {
    const index = await createIndex();
    const flushes: { checkpointId: number; documents: number }[] = [];
    const op = await openSink(index, new Map(), { maxBufferedActions: 2, onFlush: (f) => void flushes.push(f) });
    await op.processBatch(batch(upsert(1, 10, 'paid'), upsert(2, 11, 'paid'), upsert(3, 12, 'paid')), noOutput); // flushes 3 at the bound
    await op.processBatch(batch(upsert(4, 13, 'paid')), noOutput);
    await op.snapshotState?.(1);
    await op.snapshotState?.(2); // nothing since barrier 1: no event
    await op.processBatch(batch(upsert(4, 14, 'shipped')), noOutput);
    await op.snapshotState?.(3);
    await op.close?.();
    expect(flushes).toEqual([
      { checkpointId: 1, documents: 4 },
      { checkpointId: 3, documents: 1 },
    ]);
  });

  it('deletes with an external version, so a replayed older insert cannot resurrect the document', async () => {
    const index = await createIndex();
    const op = await openSink(index, new Map());
    await op.processBatch(batch(upsert(7, 10, 'pending')), noOutput);
    await op.snapshotState?.(1);
    await op.processBatch(batch(del(7, 20), del(8, 21)), noOutput); // 8 never existed: still fine
    await op.snapshotState?.(2);
    expect(await stored(index, 7)).toBeUndefined();

    await op.processBatch(batch(upsert(7, 10, 'pending'), upsert(8, 5, 'pending')), noOutput);
    await op.snapshotState?.(3);
    expect(await stored(index, 7)).toBeUndefined();
    expect(await stored(index, 8)).toBeUndefined();

    await op.processBatch(batch(upsert(7, 30, 'recreated')), noOutput);
    await op.close?.();
    expect(await stored(index, 7)).toMatchObject({ version: v(30), source: { status: 'recreated' } });
  });

  it('sends documents the mapping refuses to the dead-letter topic and keeps the rest', async () => {
    const index = await createIndex();
    const topic = uniqueName('es-dlq');
    const counters = new Map<string, number>();
    const op = await openSink(index, counters, { deadLetters: { brokers, topic } });
    await op.processBatch(
      batch(upsert(1, 10, 'paid', 12.5), upsert(2, 11, 'paid', 'not-a-number'), upsert(3, 12, 'paid', 3)),
      noOutput,
    );
    await op.snapshotState?.(1);
    await op.close?.();

    expect(await stored(index, 1)).toMatchObject({ version: v(10) });
    expect(await stored(index, 3)).toMatchObject({ version: v(12) });
    expect(await stored(index, 2)).toBeUndefined();
    expect(counters.get('cdcflow_es_sink_dead_letters_total{"error_type":"mapper_parsing_exception"}')).toBe(1);

    const letter = await readOne(topic);
    expect(letter.key).toBe('2');
    expect(JSON.parse(letter.value)).toEqual({ id: 2, status: 'paid', amount: 'not-a-number' });
    expect(letter.headers[DOCUMENT_DLQ_HEADERS.errorType]).toBe('mapper_parsing_exception');
    expect(letter.headers[DOCUMENT_DLQ_HEADERS.version]).toBe(String(v(11)));
    expect(letter.headers[DOCUMENT_DLQ_HEADERS.index]).toBe(index);
  });

  it('fails the flush on a refused document when no dead-letter topic is configured', async () => {
    const index = await createIndex();
    const op = await openSink(index, new Map());
    await op.processBatch(batch(upsert(1, 10, 'paid', 'oops')), noOutput);
    await expect(op.snapshotState?.(1)).rejects.toThrow(/mapper_parsing_exception/);
    await op.close?.();
  });

  it('retries throttled requests and throttled items with back-off', async () => {
    const index = await createIndex();
    const real = elasticsearchBulkClient({ node: elasticsearchUrl });
    let calls = 0;
    // First request: 429 for the whole request; second: the real answer with item 0 turned into a 429.
    const flaky: BulkClient = {
      async bulk(lines, refresh) {
        calls += 1;
        if (calls === 1) return { ok: false, status: 429, message: 'es_rejected_execution_exception' };
        const result = await real.bulk(calls === 2 ? lines.slice(2) : lines, refresh);
        if (calls !== 2 || !result.ok) return result;
        return {
          ok: true,
          items: [
            { status: 429, errorType: 'es_rejected_execution_exception', errorReason: 'queue full' },
            ...result.items,
          ],
        };
      },
      close: () => real.close(),
    };
    const counters = new Map<string, number>();
    const op = await openSink(index, counters, { client: flaky });
    await op.processBatch(batch(upsert(1, 10, 'paid'), upsert(2, 11, 'paid')), noOutput);
    await op.snapshotState?.(1);
    await op.close?.();
    expect(calls).toBe(3);
    expect(counters.get('cdcflow_es_sink_retries_total{}')).toBe(3);
    expect(await stored(index, 1)).toMatchObject({ version: v(10) });
    expect(await stored(index, 2)).toMatchObject({ version: v(11) });
  });
});

async function readOne(topic: string): Promise<{ key: string; value: string; headers: Record<string, string> }> {
  const consumer = kafka.consumer({ groupId: uniqueName('dlq-reader') });
  consumers.push(consumer);
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no dead letter on ${topic} within 60 s`)), 60_000);
    consumer
      .run({
        eachMessage: async ({ message }) => {
          clearTimeout(timer);
          const headers = Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]));
          resolve({ key: String(message.key), value: String(message.value), headers });
        },
      })
      .catch(reject);
  });
}
