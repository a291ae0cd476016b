/**
 * Issue 10, defects 1, 5 and 8 at the source: records that decoded fine but would crash a later
 * stage (a column nested 100,000 levels deep), corrupt state (null keys, keys the row images
 * contradict, negative positions), drag watermarks into the future (ts_ms in the year 3000) or
 * blow the heap (a 50 MB record) are dead-lettered at decoding with a precise reason.
 */
import { describe, expect, it } from 'vitest';
import { debeziumSource, type ChangeEvent } from '../../../../../runtime/index.ts';
import type { DeadLetter } from '../../../../../operators/sources/kafka/dead-letter.ts';
import type { DeadLetterWriter } from '../../../../../operators/sources/kafka/dead-letter-writer.ts';
import type { FetchedBatch, Fetcher } from '../../../../../operators/sources/kafka/fetcher.ts';
import type { RawMessage } from '../../../../../operators/sources/kafka/raw-message.ts';
import type { OperatorMetrics } from '../../../../../operators/operator.ts';
import { envelope, SOURCE } from './messages.ts';

const TOPIC = 'cdc.ecommerce.orders';
const NOW = 1_700_000_100_000;

function raw(offset: number, key: unknown, value: unknown): RawMessage {
  const bytes = (v: unknown): Buffer | null =>
    v === null ? null : Buffer.isBuffer(v) ? v : Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));
  return { topic: TOPIC, partition: 0, offset: String(offset), key: bytes(key), value: bytes(value), timestampMs: NOW };
}

function fetcherOf(messages: readonly RawMessage[]): Fetcher {
  const batch: FetchedBatch = { topic: TOPIC, partition: 0, messages, nextOffset: String(messages.length), bytes: 1 };
  return {
    start: async (deliver) => void (await deliver(batch)),
    commit: () => Promise.resolve(),
    endOffsets: () => Promise.resolve(new Map()),
    assignment: () => [`${TOPIC}:0`],
    stop: () => Promise.resolve(),
  };
}

function metricsRecorder(): { metrics: OperatorMetrics; counts: Map<string, number> } {
  const counts = new Map<string, number>();
  const metrics: OperatorMetrics = {
    count: (name, labels = {}, by = 1) => {
      const id = `${name}${JSON.stringify(labels)}`;
      counts.set(id, (counts.get(id) ?? 0) + by);
    },
    gauge: () => undefined,
    observe: () => undefined,
  };
  return { metrics, counts };
}

async function read(messages: readonly RawMessage[], checks = {}) {
  const letters: DeadLetter[] = [];
  const writer: DeadLetterWriter = {
    open: () => Promise.resolve(),
    write: (l) => (letters.push(...l), Promise.resolve()),
    close: () => Promise.resolve(),
  };
  const { metrics, counts } = metricsRecorder();
  const source = debeziumSource({
    topics: [TOPIC],
    groupId: 'g',
    fetcher: fetcherOf(messages),
    deadLetters: writer,
    checks,
    now: () => NOW,
  });
  const reader = source.createReader({ jobName: 'job', uid: 'source', subtaskIndex: 0, parallelism: 1, metrics });
  await reader.open(undefined);
  const polled = await reader.poll(1000);
  await reader.close();
  const events =
    polled === 'idle' || polled === 'end'
      ? []
      : polled.records.map((r) => r.value as ChangeEvent<Record<string, unknown>>);
  return { events, letters, counts };
}

const row = (id: unknown) => ({ id, status: 'paid', amount: '1.00' });

describe('source record checks (issue 10)', () => {
  it('defect 5: a null key, a key without the id, and a key the row contradicts are dead-lettered, not upserted under `undefined`', async () => {
    const { events, letters } = await read([
      raw(0, { id: 1 }, envelope({ after: row(1) })),
      raw(1, null, envelope({ after: row(2) })),
      raw(2, { other: 3 }, envelope({ after: row(3) })),
      raw(3, {}, envelope({ after: row(4) })),
      raw(4, { id: 5 }, envelope({ after: row(6) })),
      raw(5, { id: 7 }, envelope({ op: 'd', before: row(8), after: null })),
      raw(6, { id: null }, envelope({ after: row(9) })),
    ]);
    expect(events.map((e) => e.after?.['id'] ?? e.before?.['id'])).toEqual([1]);
    expect(letters.map((l) => [l.offset, l.errorKind])).toEqual([
      ['1', 'invalid-key'],
      ['2', 'invalid-key'],
      ['3', 'invalid-key'],
      ['4', 'invalid-key'],
      ['5', 'invalid-key'],
      ['6', 'invalid-key'],
    ]);
    expect(letters[3]?.reason).toMatch(/disagrees with `after.id`/);
    expect(letters[4]?.reason).toMatch(/disagrees with `before.id`/);
  });

  it('defect 5: a negative LSN and a commit time in the year 3000 are dead-lettered', async () => {
    const { events, letters } = await read([
      raw(0, { id: 1 }, envelope({ source: { ...SOURCE, lsn: -5 } })),
      raw(1, { id: 42 }, envelope({ source: { ...SOURCE, ts_ms: Date.UTC(3000, 0, 1) } })),
      raw(2, { id: 42 }, envelope({ source: { ...SOURCE, ts_ms: NOW + 60_000 } })),
    ]);
    expect(letters.map((l) => [l.offset, l.errorKind])).toEqual([
      ['0', 'invalid-position'],
      ['1', 'future-event-time'],
    ]);
    expect(letters[1]?.reason).toContain('3000-01-01');
    expect(events).toHaveLength(1);
  });

  it('the future skew is configurable', async () => {
    const { letters } = await read([raw(0, { id: 42 }, envelope({ source: { ...SOURCE, ts_ms: NOW + 60_000 } }))], {
      maxFutureSkewMs: 1000,
    });
    expect(letters.map((l) => l.errorKind)).toEqual(['future-event-time']);
  });

  it('defect 1: a column nested 100,000 levels deep is dead-lettered at decoding, before anything recurses over it', async () => {
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    const value = `{"before":null,"after":{"id":42,"status":"paid","notes":${deep}},"source":${JSON.stringify(SOURCE)},"op":"c","ts_ms":1}`;
    const { events, letters } = await read([
      raw(0, { id: 42 }, value),
      raw(1, { id: 42 }, envelope({ after: { ...row(42), notes: [[['ok']]] } })),
    ]);
    expect(letters.map((l) => [l.offset, l.errorKind])).toEqual([['0', 'too-deep']]);
    expect(letters[0]?.value?.length).toBe(Buffer.byteLength(value));
    expect(events).toHaveLength(1);
  });

  it('the depth check counts nesting, not brackets: many shallow arrays pass, brackets inside strings never count', async () => {
    const wide = `[${Array.from({ length: 200 }, () => '[1]').join(',')}]`;
    const quoted = JSON.stringify('{'.repeat(500));
    const value = `{"before":null,"after":{"id":42,"status":"paid","notes":${wide},"memo":${quoted}},"source":${JSON.stringify(SOURCE)},"op":"c","ts_ms":1}`;
    const deepInWide = `[${Array.from({ length: 100 }, () => '[1]').join(',')},${'['.repeat(70)}${']'.repeat(70)}]`;
    const over = `{"before":null,"after":{"id":43,"status":"paid","notes":${deepInWide}},"source":${JSON.stringify(SOURCE)},"op":"c","ts_ms":1}`;
    const { events, letters } = await read([raw(0, { id: 42 }, value), raw(1, { id: 43 }, over)]);
    expect(events).toHaveLength(1);
    expect(letters.map((l) => [l.offset, l.errorKind])).toEqual([['1', 'too-deep']]);
  });

  it('defect 8: a record over maxRecordBytes (default 8 MiB) is dead-lettered before parsing', async () => {
    const big = envelope({ after: { ...row(42), blob: 'x'.repeat(9 * 1024 * 1024) } });
    const { events, letters } = await read([raw(0, { id: 42 }, big), raw(1, { id: 42 }, envelope())]);
    expect(letters.map((l) => [l.offset, l.errorKind])).toEqual([['0', 'too-large']]);
    expect(letters[0]?.reason).toMatch(/over maxRecordBytes 8388608/);
    expect(events).toHaveLength(1);
  });

  it('counts letters by stage and reason, and every decode reason exists at zero from the start', async () => {
    const { counts } = await read([raw(0, null, envelope())]);
    expect(counts.get('cdcflow_dead_letters_total{"stage":"decode","reason":"invalid-key"}')).toBe(1);
    expect(counts.get('cdcflow_dead_letters_total{"stage":"decode","reason":"too-large"}')).toBe(0);
    expect(counts.get('cdcflow_dead_letters_total{"stage":"decode","reason":"undecodable"}')).toBe(0);
  });

  it('tables without a primary key can opt out of the key check', async () => {
    const { events, letters } = await read([raw(0, null, envelope())], { requireKey: false });
    expect(letters).toEqual([]);
    expect(events).toHaveLength(1);
  });
});
