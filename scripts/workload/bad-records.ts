/**
 * The malformed-input corpus (issue 10): one generator per class of bad record, across every stage
 * that can refuse a record — decoding (bytes, envelope, key, position, event time, size, depth),
 * user code (a validating map, the revenue windows' aggregate), state (a row the upsert cannot
 * store) and the sink (values the Postgres table refuses). Each record says which stage and reason must dead-letter it in each of
 * the two reference pipelines the bad-records test runs:
 * - `projection`: source → map `check-order` → keyBy id → upsert `orders-table` → postgresSink `orders-pg`;
 * - `revenue`: source → map `check-order` (stricter: amount, currency, notes) → revenue windows
 *   `revenue-windows`, whose aggregate reads amounts with `revenueAmount` (throws past numeric(12,2)).
 *
 * Bad records use ids from `BAD_ID_BASE` up, so they never touch a good row, and carry event times
 * no later than the good records around them, so they move no watermark: the targets must equal
 * the oracles of the good records alone. A class that must reach the windows (`inStreamTime`)
 * gets, when mixed, the latest event time of the good records before it on its partition: on
 * time for its window, and moving no watermark.
 */
import type { DeadLetterKind } from '../../operators/sources/kafka/dead-letter.ts';
import type { OrderEnvelope, OrderRow } from './orders-model.ts';
import { Prng } from './prng.ts';

export const BAD_ID_BASE = 10_000_000;

/** Where a pipeline must dead-letter a record: `decode`, or an operator/sink uid. */
export interface Expected {
  readonly stage: string;
  readonly kind: DeadLetterKind;
}

export interface BadRecord {
  readonly className: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly projection: Expected;
  readonly revenue: Expected;
  /** The mix gives it the event time of the stream around it (it must reach a window on time). */
  readonly inStreamTime?: boolean;
}

/** What the test jobs set so that every class reaches the stage it aims at. */
export const CORPUS_SOURCE_CHECKS = {
  /** The oversized class is 1.5 MB; the source topic must allow it (4 MB). */
  maxRecordBytes: 512 * 1024,
  /** Deep enough for the `state` class (2,000 levels) to pass decoding, not for the 100,000-level one. */
  maxNestingDepth: 5_000,
} as const;
export const CORPUS_TOPIC_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

/** The uids of the test pipelines. */
export const STAGES = {
  checkOrder: 'check-order',
  upsert: 'orders-table',
  sink: 'orders-pg',
  revenueWindows: 'revenue-windows',
} as const;

interface ClassContext {
  readonly id: number;
  readonly template: OrderEnvelope;
  /** An event time no later than the good records around the bad one. */
  readonly tsMs: number;
  readonly lsn: number;
}

interface BadClass {
  readonly name: string;
  /** How many records of the class to emit each time the class comes up. @default 1 */
  readonly burst?: number;
  readonly projection: Expected;
  readonly revenue?: Expected;
  readonly inStreamTime?: boolean;
  make(c: ClassContext): { key: unknown; value: unknown };
}

const decode = (kind: DeadLetterKind): Expected => ({ stage: 'decode', kind });
const userCode: Expected = { stage: STAGES.checkOrder, kind: 'user-code' };
const sinkRefused: Expected = { stage: STAGES.sink, kind: 'sink-refused' };
const windowUserCode: Expected = { stage: STAGES.revenueWindows, kind: 'user-code' };

function row(c: ClassContext, patch: Partial<Record<keyof OrderRow, unknown>> = {}): Record<string, unknown> {
  return { ...(c.template.after as OrderRow), id: c.id, ...patch };
}

function envelope(
  c: ClassContext,
  patch: Record<string, unknown> = {},
  sourcePatch: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    before: null,
    after: row(c),
    source: { ...c.template.source, ts_ms: c.tsMs, lsn: c.lsn, snapshot: 'false', ...sourcePatch },
    op: 'c',
    ts_ms: c.tsMs,
    transaction: null,
    ...patch,
  };
}

const key = (c: ClassContext) => ({ id: c.id });
const raw = (text: string) => Buffer.from(text, 'utf8');

function nested(levels: number): string {
  return '['.repeat(levels) + '"bottom"' + ']'.repeat(levels);
}

/** Every class; the test asserts there are at least 25. */
export const BAD_CLASSES: readonly BadClass[] = [
  // Decoding: bytes
  {
    name: 'garbage bytes',
    projection: decode('undecodable'),
    make: (c) => ({ key: key(c), value: Buffer.from([0xff, 0xfe, 0x00, 0x13, 0x37, 0xc3, 0x28]) }),
  },
  {
    name: 'text, not JSON',
    projection: decode('undecodable'),
    make: (c) => ({ key: key(c), value: raw('order 42 shipped') }),
  },
  {
    name: 'truncated JSON',
    projection: decode('undecodable'),
    make: (c) => ({ key: key(c), value: raw(JSON.stringify(envelope(c)).slice(0, 120)) }),
  },
  {
    name: 'invalid UTF-8 inside a JSON string',
    projection: decode('undecodable'),
    make: (c) => ({
      key: key(c),
      value: Buffer.concat([raw('{"op":"c","after":{"notes":"'), Buffer.from([0xc3, 0x28]), raw('"}}')]),
    }),
  },
  {
    name: 'key is not JSON',
    projection: decode('undecodable'),
    make: (c) => ({ key: raw('id=42'), value: envelope(c) }),
  },
  {
    name: 'key is a JSON array',
    projection: decode('undecodable'),
    make: (c) => ({ key: [c.id], value: envelope(c) }),
  },
  {
    name: 'burst of 8 x 200 KB garbage',
    burst: 8,
    projection: decode('undecodable'),
    make: (c) => ({ key: key(c), value: Buffer.alloc(200 * 1024, 0xff) }),
  },
  {
    name: 'oversized record (1.5 MB)',
    projection: decode('too-large'),
    make: (c) => ({ key: key(c), value: envelope(c, { after: row(c, { notes: 'x'.repeat(1536 * 1024) }) }) }),
  },
  {
    name: 'column nested 100,000 levels deep',
    projection: decode('too-deep'),
    make: (c) => ({
      key: key(c),
      value: raw(JSON.stringify(envelope(c)).replace('"notes":', `"notes":${nested(100_000)},"was":`)),
    }),
  },
  // Decoding: envelope
  {
    name: 'value is a JSON array',
    projection: decode('malformed'),
    make: (c) => ({ key: key(c), value: [envelope(c)] }),
  },
  { name: 'value is a JSON number', projection: decode('malformed'), make: (c) => ({ key: key(c), value: raw('42') }) },
  {
    name: 'no op',
    projection: decode('malformed'),
    make: (c) => ({ key: key(c), value: envelope(c, { op: undefined }) }),
  },
  {
    name: 'unknown op',
    projection: decode('unknown-op'),
    make: (c) => ({ key: key(c), value: envelope(c, { op: 'x' }) }),
  },
  {
    name: 'no source block',
    projection: decode('malformed'),
    make: (c) => ({ key: key(c), value: envelope(c, { source: undefined }) }),
  },
  {
    name: 'no position (neither source.lsn nor source.sequence)',
    projection: decode('malformed'),
    make: (c) => ({ key: key(c), value: envelope(c, {}, { lsn: undefined, sequence: undefined }) }),
  },
  {
    name: 'source.lsn not a number',
    projection: decode('malformed'),
    make: (c) => ({ key: key(c), value: envelope(c, {}, { lsn: 'abc' }) }),
  },
  {
    name: 'no source.ts_ms',
    projection: decode('malformed'),
    make: (c) => ({ key: key(c), value: envelope(c, {}, { ts_ms: undefined }) }),
  },
  {
    name: 'create without after',
    projection: decode('malformed'),
    make: (c) => ({ key: key(c), value: envelope(c, { after: null }) }),
  },
  {
    name: 'delete with an after image',
    projection: decode('malformed'),
    make: (c) => ({ key: key(c), value: envelope(c, { op: 'd', before: row(c) }) }),
  },
  {
    name: 'after is a string',
    projection: decode('malformed'),
    make: (c) => ({ key: key(c), value: envelope(c, { after: 'not a row' }) }),
  },
  {
    name: 'payload of a schema envelope is a string',
    projection: decode('malformed'),
    make: (c) => ({ key: key(c), value: { schema: {}, payload: 'x' } }),
  },
  // Decoding: key, position, event time
  { name: 'null key', projection: decode('invalid-key'), make: (c) => ({ key: null, value: envelope(c) }) },
  {
    name: 'delete with null key and null before',
    projection: decode('invalid-key'),
    make: (c) => ({ key: null, value: envelope(c, { op: 'd', before: null, after: null }) }),
  },
  {
    name: 'key without the id',
    projection: decode('invalid-key'),
    make: (c) => ({ key: { order: c.id }, value: envelope(c) }),
  },
  { name: 'empty key', projection: decode('invalid-key'), make: (c) => ({ key: {}, value: envelope(c) }) },
  {
    name: 'key disagrees with after.id',
    projection: decode('invalid-key'),
    make: (c) => ({ key: { id: c.id }, value: envelope(c, { after: row(c, { id: c.id + 1 }) }) }),
  },
  {
    name: 'negative LSN',
    projection: decode('invalid-position'),
    make: (c) => ({ key: key(c), value: envelope(c, {}, { lsn: -5 }) }),
  },
  {
    name: 'ts_ms in the year 3000',
    projection: decode('future-event-time'),
    make: (c) => ({ key: key(c), value: envelope(c, {}, { ts_ms: Date.UTC(3000, 0, 1) }) }),
  },
  // User code
  {
    name: 'status is a number',
    projection: userCode,
    make: (c) => ({ key: key(c), value: envelope(c, { after: row(c, { status: 42 }) }) }),
  },
  // State: passes decoding (depth 2,000 < 5,000) and the projection's check, the upsert cannot store it
  {
    name: 'column nested 2,000 levels deep',
    projection: { stage: STAGES.upsert, kind: 'unstorable' },
    revenue: userCode,
    make: (c) => ({
      key: key(c),
      value: raw(JSON.stringify(envelope(c)).replace('"notes":', `"notes":${nested(2_000)},"was":`)),
    }),
  },
  // Sink: values the table refuses; the revenue check refuses them first
  {
    name: 'amount "twelve euros"',
    projection: sinkRefused,
    revenue: userCode,
    make: (c) => ({ key: key(c), value: envelope(c, { after: row(c, { amount: 'twelve euros' }) }) }),
  },
  {
    name: 'amount "1e400"',
    projection: sinkRefused,
    revenue: userCode,
    make: (c) => ({ key: key(c), value: envelope(c, { after: row(c, { amount: '1e400' }) }) }),
  },
  // Not a currency longer than char(3): the sink's typed unnest casts explicitly, and an explicit cast to char(n) truncates.
  {
    name: 'customer_id not an integer',
    projection: sinkRefused,
    revenue: userCode,
    make: (c) => ({ key: key(c), value: envelope(c, { after: row(c, { customer_id: 'abc' }) }) }),
  },
  {
    name: 'created_at not a timestamp',
    projection: sinkRefused,
    revenue: userCode,
    make: (c) => ({ key: key(c), value: envelope(c, { after: row(c, { created_at: 'yesterday-ish' }) }) }),
  },
  // Window aggregate: a well-formed decimal the revenue check lets through, over numeric(12,2): the
  // table refuses it, and the windows' aggregate throws on it (dead-lettered per record by the window).
  {
    name: 'amount over numeric(12,2) (11 integer digits)',
    projection: sinkRefused,
    revenue: windowUserCode,
    inStreamTime: true,
    make: (c) => ({ key: key(c), value: envelope(c, { after: row(c, { amount: '99999999999.99' }) }) }),
  },
];

function bytes(value: unknown): Buffer | null {
  if (value === null || value === undefined) return null;
  return Buffer.isBuffer(value) ? value : Buffer.from(JSON.stringify(value), 'utf8');
}

/**
 * `copies` rounds over every class (a burst class emits its burst each round), in a seeded
 * shuffled order. `context(i)` gives the event time and LSN the i-th bad record should carry.
 */
export function badRecordCorpus(options: {
  seed: number;
  copies: number;
  template: OrderEnvelope;
  tsMs: number;
  lsn: number;
}): BadRecord[] {
  const prng = new Prng(options.seed);
  const out: BadRecord[] = [];
  let id = BAD_ID_BASE;
  for (let round = 0; round < options.copies; round++) {
    for (const cls of BAD_CLASSES) {
      for (let b = 0; b < (cls.burst ?? 1); b++) {
        const made = cls.make({ id: id++, template: options.template, tsMs: options.tsMs, lsn: options.lsn + id });
        out.push({
          className: cls.name,
          key: bytes(made.key),
          value: bytes(made.value),
          projection: cls.projection,
          revenue: cls.revenue ?? cls.projection,
          ...(cls.inStreamTime === true ? { inStreamTime: true } : {}),
        });
      }
    }
  }
  // Fisher–Yates with the seeded PRNG: the mix is reproducible.
  for (let i = out.length - 1; i > 0; i--) {
    const j = prng.int(i + 1);
    [out[i], out[j]] = [out[j] as BadRecord, out[i] as BadRecord];
  }
  return out;
}

/**
 * The checks the pipelines' `check-order` maps apply. The projection's only insists on a string
 * status (the table refuses the rest itself); the revenue check also wants a decimal amount, a
 * currency, a customer and a timestamp. The amount's range is the aggregate's to refuse
 * (`revenueAmount`): the window dead-letters a record its aggregate throws on.
 */
export function checkOrderForProjection<T extends { readonly after: unknown }>(event: T): T {
  const after = event.after as Record<string, unknown> | null;
  if (after !== null && typeof after['status'] !== 'string')
    throw new TypeError(`status must be a string, got ${JSON.stringify(after['status'])}`);
  return event;
}

const DECIMAL_AMOUNT = /^-?\d+(\.\d{1,2})?$/;
const AMOUNT = /^-?\d{1,10}(\.\d{1,2})?$/;

/** The revenue windows' amount: what numeric(12,2) holds, or a throw (inside the aggregate's `add`). */
export function revenueAmount(event: { readonly after: unknown }): string {
  const amount = (event.after as Record<string, unknown>)['amount'];
  if (typeof amount !== 'string' || !AMOUNT.test(amount))
    throw new RangeError(`amount ${JSON.stringify(amount)} does not fit numeric(12,2)`);
  return amount;
}

export function checkOrderForRevenue<T extends { readonly after: unknown }>(event: T): T {
  checkOrderForProjection(event);
  const after = event.after as Record<string, unknown> | null;
  if (after === null) return event;
  if (typeof after['amount'] !== 'string' || !DECIMAL_AMOUNT.test(after['amount']))
    throw new RangeError(`amount ${JSON.stringify(after['amount'])} is not a decimal with 2 fraction digits`);
  if (typeof after['currency'] !== 'string' || after['currency'].length !== 3)
    throw new RangeError(`currency ${JSON.stringify(after['currency'])} is not 3 letters`);
  if (!Number.isSafeInteger(after['customer_id']))
    throw new TypeError(`customer_id ${JSON.stringify(after['customer_id'])} is not an integer`);
  if (after['notes'] !== null && typeof after['notes'] !== 'string') throw new TypeError('notes must be text');
  if (typeof after['created_at'] !== 'string' || Number.isNaN(Date.parse(after['created_at'])))
    throw new RangeError(`created_at ${JSON.stringify(after['created_at'])} is not a timestamp`);
  return event;
}
