import { serialize } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { decodeUpsertEntry, encodeUpsertEntry, upsertEntrySerializer } from '../../../state/upsert-entry-codec.ts';
import type { UpsertEntry } from '../../../state/upsert-table.ts';
import { UnstorableValueError } from '../../../state/errors.ts';
import { legacyLsnPosition, snapshotPosition, streamPosition } from '../../../state/change-position.ts';

const top = streamPosition(2n ** 64n - 1n, 2n ** 64n - 1n);
const p7 = streamPosition(3, 7);

const roundTrip = <T>(entry: UpsertEntry<T>): UpsertEntry<T> => decodeUpsertEntry<T>(encodeUpsertEntry(entry));

describe('upsert entry codec', () => {
  it('round-trips JSON rows, tombstones and positions with full 64-bit LSNs', () => {
    const row = {
      id: 1,
      status: 'paid',
      amount: '9.99',
      notes: 'Kurfürstendamm ✓',
      nested: { a: [1, 'x', null, true] },
    };
    expect(roundTrip({ row, position: top })).toMatchObject({ row, position: top });
    const snap = snapshotPosition(null, 2n ** 60n + 1n);
    expect(roundTrip({ row, position: snap }).position).toBe(snap);
    const tombstone = roundTrip({ row: null, position: p7, deletedAtMs: 1_700_000_000_123 });
    expect(tombstone).toMatchObject({ row: null, position: p7, deletedAtMs: 1_700_000_000_123 });
    expect(roundTrip({ row: null, position: p7 }).deletedAtMs).toBeUndefined();
    expect(JSON.parse(JSON.stringify(tombstone))).toEqual({ row: null, position: p7, deletedAtMs: 1_700_000_000_123 });
  });

  it('reads v1 entries (LSN-only header) from checkpoints taken before positions, ranking them below streamed changes', () => {
    const v1 = (lsn: number, deletedAtMs: number | undefined, json: string | undefined): Buffer => {
      const header = deletedAtMs === undefined ? 9 : 17;
      const body = json === undefined ? Buffer.alloc(0) : Buffer.from(json);
      const out = Buffer.alloc(header + body.length);
      out[0] = 0xc0 | (deletedAtMs === undefined ? 0 : 0x01) | (json === undefined ? 0 : 0x02);
      out.writeDoubleBE(lsn, 1);
      if (deletedAtMs !== undefined) out.writeDoubleBE(deletedAtMs, 9);
      body.copy(out, header);
      return out;
    };
    const live = decodeUpsertEntry(v1(6_094_818_632, undefined, '{"id":1}'));
    expect(live).toMatchObject({ row: { id: 1 }, position: legacyLsnPosition(6_094_818_632) });
    expect(live.position < streamPosition(null, 1)).toBe(true);
    expect(decodeUpsertEntry(v1(43, 9, undefined))).toMatchObject({
      row: null,
      position: legacyLsnPosition(43),
      deletedAtMs: 9,
    });
  });

  it('falls back to v8 for values JSON would change', () => {
    const rows: unknown[] = [
      { id: 1n },
      { at: new Date(5) },
      { gone: undefined },
      { zero: -0 },
      { nan: Number.NaN },
      { bytes: Buffer.from('ab') },
      { list: [1, , 3] },
      { map: new Map([[1, 2]]) },
    ];
    for (const row of rows) expect(roundTrip({ row, position: p7 }).row).toStrictEqual(row);
    // As with plain v8 before: a null prototype comes back as Object's.
    const bare = Object.assign(Object.create(null) as object, { bare: 1, deeper: { x: 1n } });
    expect(roundTrip({ row: bare, position: p7 }).row).toEqual({ bare: 1, deeper: { x: 1n } });
  });

  it('decodes the row only when it is read, once', () => {
    const entry = roundTrip({ row: { id: 1 }, position: p7 });
    const first = entry.row;
    expect(first).toEqual({ id: 1 });
    expect(entry.row).toBe(first);
  });

  it('reads entries written as plain v8 by earlier versions', () => {
    const legacy = serialize({ row: { id: 1, big: 2n }, lsn: 42 });
    expect(decodeUpsertEntry(legacy)).toEqual({ row: { id: 1, big: 2n }, position: legacyLsnPosition(42) });
    expect(decodeUpsertEntry(serialize({ row: null, lsn: 43, deletedAtMs: 9 }))).toEqual({
      row: null,
      position: legacyLsnPosition(43),
      deletedAtMs: 9,
    });
  });

  it('serializeWithRoom writes the same bytes after the room, and decodeWritten reads them back as deserialize does', () => {
    const codec = upsertEntrySerializer<unknown>();
    const entries: UpsertEntry<unknown>[] = [
      { row: { id: 1, notes: 'Kurfürstendamm ✓' }, position: top },
      { row: { id: 2n }, position: p7 },
      { row: null, position: p7, deletedAtMs: 1_700_000_000_123 },
    ];
    for (const entry of entries) {
      const plain = codec.serialize(entry);
      for (const room of [1, 9]) {
        const roomy = codec.serializeWithRoom?.(entry, room) as Buffer;
        expect(roomy.subarray(room).equals(plain)).toBe(true);
        const written = codec.decodeWritten?.(entry, roomy.subarray(room)) as UpsertEntry<unknown>;
        expect(JSON.stringify(written, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))).toBe(
          JSON.stringify(codec.deserialize(plain), (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)),
        );
      }
    }
  });

  it('rejects bytes in no known format', () => {
    expect(() => decodeUpsertEntry(Buffer.from([0x01, 2, 3]))).toThrow(/corrupt upsert entry/);
    expect(() => decodeUpsertEntry(Buffer.from([0xc1, 0, 0, 0, 0, 0, 0, 0, 0]))).toThrow(/truncated/);
    expect(() => decodeUpsertEntry(Buffer.from([0xd0, 0, 0, 0]))).toThrow(/truncated/);
    expect(() => decodeUpsertEntry(Buffer.concat([Buffer.from([0xd0, 7]), Buffer.alloc(16)]))).toThrow(/tier/);
  });
});

describe('upsert entry codec: values it cannot store (issue 10, defect 1)', () => {
  const deep = (levels: number): unknown => {
    let value: unknown = 'bottom';
    for (let i = 0; i < levels; i++) value = [value];
    return value;
  };

  it('refuses a row nested 100,000 levels deep with a typed, non-retriable error instead of overflowing the stack', () => {
    let thrown: unknown;
    try {
      encodeUpsertEntry({ row: { id: 1, notes: deep(100_000) }, position: p7 });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(UnstorableValueError);
    expect((thrown as UnstorableValueError).retriable).toBe(false);
    expect((thrown as Error).message).toMatch(/deeper than 1000 levels/);
  });

  it('still stores rows nested deeper than the JSON fast path (v8 fallback) up to the limit', () => {
    const row = { id: 1, notes: deep(500) };
    expect(roundTrip({ row, position: p7 }).row).toStrictEqual(row);
  });
});
