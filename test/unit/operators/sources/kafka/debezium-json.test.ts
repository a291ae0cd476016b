import { describe, expect, it } from 'vitest';
import { decodeDebeziumJson } from '../../../../../operators/sources/kafka/debezium-json.ts';
import type { Decoded, JsonRow } from '../../../../../operators/sources/kafka/raw-message.ts';
import { generateWorkload } from '../../../../../scripts/workload/generator.ts';
import { ROW, SOURCE, envelope, message } from './messages.ts';

function change(decoded: Decoded<JsonRow>) {
  if (decoded.kind !== 'change') throw new Error(`expected a change, got ${JSON.stringify(decoded)}`);
  return decoded.event;
}

function letter(decoded: Decoded<JsonRow>) {
  if (decoded.kind !== 'dead-letter') throw new Error(`expected a dead letter, got ${decoded.kind}`);
  return decoded.letter;
}

describe('decodeDebeziumJson', () => {
  it('normalises an insert without the schema envelope', () => {
    const event = change(decodeDebeziumJson(message(envelope())));
    expect(event).toEqual({
      op: 'c',
      before: null,
      after: ROW,
      source: {
        db: 'ecommerce',
        schema: 'public',
        table: 'orders',
        lsn: 6_093_757_537,
        position: '1/0000000000000064/00000000000000c8',
        txId: 771,
        tsMs: 1_700_000_000_000,
        snapshot: 'false',
      },
      tsMs: 1_700_000_000_050,
      key: { id: 42 },
      origin: { topic: 'cdc.ecommerce.orders', partition: 3, offset: '1017' },
    });
  });

  it('unwraps {schema, payload} for key and value (schemas.enable=true)', () => {
    const wrapped = { schema: { type: 'struct', fields: [] }, payload: envelope({ op: 'u', before: ROW }) };
    const event = change(decodeDebeziumJson(message(wrapped, { schema: { type: 'struct' }, payload: { id: 7 } })));
    expect(event.op).toBe('u');
    expect(event.before).toEqual(ROW);
    expect(event.key).toEqual({ id: 7 });
  });

  it('accepts the LSN as a string and the snapshot marker as a boolean', () => {
    const event = change(
      decodeDebeziumJson(message(envelope({ op: 'r', source: { ...SOURCE, lsn: '123456', snapshot: true } }))),
    );
    expect(event.source.lsn).toBe(123_456);
    expect(event.source.snapshot).toBe('true');
  });

  it('decodes deletes and truncates', () => {
    const del = change(decodeDebeziumJson(message(envelope({ op: 'd', before: ROW, after: null }))));
    expect([del.op, del.before, del.after]).toEqual(['d', ROW, null]);
    const truncate = change(decodeDebeziumJson(message(envelope({ op: 't', before: null, after: null }), null)));
    expect([truncate.op, truncate.before, truncate.after, truncate.key]).toEqual(['t', null, null, null]);
  });

  it('falls back to source.ts_ms when the envelope has no ts_ms', () => {
    const event = change(decodeDebeziumJson(message(envelope({ ts_ms: undefined }))));
    expect(event.tsMs).toBe(SOURCE.ts_ms);
  });

  it('turns a null value into a tombstone carrying the key', () => {
    expect(decodeDebeziumJson(message(null))).toEqual({
      kind: 'tombstone',
      key: { id: 42 },
      origin: { topic: 'cdc.ecommerce.orders', partition: 3, offset: '1017' },
    });
  });

  it('recognises heartbeats by topic and by a value holding only ts_ms', () => {
    const byTopic = decodeDebeziumJson(
      message({ ts_ms: 5 }, { serverName: 'ecommerce' }, '__debezium-heartbeat.ecommerce'),
    );
    expect(byTopic).toMatchObject({ kind: 'heartbeat', tsMs: 5 });
    expect(decodeDebeziumJson(message({ ts_ms: 9 }))).toMatchObject({ kind: 'heartbeat', tsMs: 9 });
    const custom = decodeDebeziumJson(message('garbage', null, 'hb'), { heartbeatTopic: /^hb$/ });
    expect(custom).toMatchObject({ kind: 'heartbeat', tsMs: null });
  });

  it('decodes every record of the generated workload', () => {
    let n = 0;
    for (const record of generateWorkload({ keys: 50, events: 400, duplicateFraction: 0.05 })) {
      const decoded = decodeDebeziumJson(message(record.value, record.key));
      expect(decoded.kind).toBe(record.value === null ? 'tombstone' : 'change');
      n += 1;
    }
    expect(n).toBeGreaterThan(400);
  });

  describe('dead letters, never throws', () => {
    const cases: Array<[string, unknown, unknown, string, RegExp]> = [
      ['garbage bytes', Buffer.from([0xff, 0xfe, 0x00, 0x81]), { id: 1 }, 'undecodable', /not valid UTF-8/],
      ['UTF-8 but not JSON', '{"op": "c",', { id: 1 }, 'undecodable', /value is not JSON/],
      ['JSON that is not an object', '[1,2]', { id: 1 }, 'malformed', /array, not an object/],
      ['JSON without op', { before: null, after: ROW, source: SOURCE }, { id: 1 }, 'malformed', /no `op` field/],
      ['unknown op', envelope({ op: 'x' }), { id: 1 }, 'unknown-op', /unknown op "x"/],
      ['non-string op', envelope({ op: 3 }), { id: 1 }, 'unknown-op', /unknown op 3/],
      ['missing source', envelope({ source: undefined }), { id: 1 }, 'malformed', /missing `source`/],
      [
        'missing lsn',
        envelope({ source: { ...SOURCE, lsn: undefined, sequence: undefined } }),
        { id: 1 },
        'malformed',
        /missing `source.lsn`/,
      ],
      [
        'bad sequence',
        envelope({ source: { ...SOURCE, sequence: '[1,2]' } }),
        { id: 1 },
        'malformed',
        /source.sequence/,
      ],
      [
        'sequence beyond 64 bits',
        envelope({ source: { ...SOURCE, sequence: '["1","99999999999999999999"]' } }),
        { id: 1 },
        'malformed',
        /beyond 64 bits/,
      ],
      [
        'bad lsn',
        envelope({ source: { ...SOURCE, lsn: '0/16B3748' } }),
        { id: 1 },
        'malformed',
        /not a non-negative integer/,
      ],
      [
        'unsafe lsn',
        envelope({ source: { ...SOURCE, lsn: '99999999999999999999' } }),
        { id: 1 },
        'malformed',
        /below 2\^53/,
      ],
      ['missing ts_ms', envelope({ source: { ...SOURCE, ts_ms: undefined } }), { id: 1 }, 'malformed', /source.ts_ms/],
      ['missing table', envelope({ source: { ...SOURCE, table: undefined } }), { id: 1 }, 'malformed', /source.table/],
      ['after missing for c', envelope({ after: null }), { id: 1 }, 'malformed', /`after` missing for op c/],
      [
        'after missing for u',
        envelope({ op: 'u', after: undefined }),
        { id: 1 },
        'malformed',
        /`after` missing for op u/,
      ],
      ['after on a delete', envelope({ op: 'd', before: ROW }), { id: 1 }, 'malformed', /must not carry an `after`/],
      ['after not an object', envelope({ after: 'row' }), { id: 1 }, 'malformed', /`after` must be an object/],
      ['garbage key', envelope(), Buffer.from([0xc3, 0x28]), 'undecodable', /key is not valid UTF-8/],
      ['non-object key', envelope(), '42', 'undecodable', /key is JSON but not an object/],
    ];
    it.each(cases)('%s', (_name, value, key, kind, reason) => {
      const dead = letter(decodeDebeziumJson(message(value, key)));
      expect(dead.errorKind).toBe(kind);
      expect(dead.reason).toMatch(reason);
      expect(dead).toMatchObject({
        topic: 'cdc.ecommerce.orders',
        partition: 3,
        offset: '1017',
        timestampMs: 1_700_000_000_123,
      });
      expect(dead.value).toEqual(message(value, key).value);
    });
  });
});
