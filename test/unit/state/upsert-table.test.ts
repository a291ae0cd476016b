import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KeyedStateBackend } from '../../../state/keyed-state-backend.ts';
import { MemoryStore } from '../../../state/memory-store.ts';
import { UpsertTable } from '../../../state/upsert-table.ts';
import { snapshotPosition, streamPosition, type ChangePosition } from '../../../state/change-position.ts';
import { manualClock } from './helpers.ts';

const p = (lsn: number): ChangePosition => streamPosition(0, lsn);

interface Row {
  readonly id: number;
  readonly name: string;
}

describe('UpsertTable', () => {
  const clock = manualClock();
  let backend: KeyedStateBackend;
  let table: UpsertTable<Row>;
  const key = { id: 1 };

  beforeEach(async () => {
    backend = new KeyedStateBackend({
      store: new MemoryStore(),
      keyGroupRange: { start: 0, end: 127 },
      clock: clock.now,
    });
    await backend.open();
    table = new UpsertTable<Row>(backend, { tombstoneTtlMs: 60_000 });
    await backend.prefetch([key, { id: 2 }]);
  });
  afterEach(() => backend.close());

  it('applies inserts and updates in position order and reports the previous row', () => {
    expect(table.apply(key, { op: 'r', position: p(10), row: { id: 1, name: 'a' } })).toEqual({
      kind: 'applied',
      previous: null,
    });
    expect(table.apply(key, { op: 'u', position: p(20), row: { id: 1, name: 'b' } })).toEqual({
      kind: 'applied',
      previous: { id: 1, name: 'a' },
    });
    expect(table.get(key)).toEqual({ id: 1, name: 'b' });
    expect(table.get({ id: 2 })).toBeNull();
  });

  it('drops replayed events whose position is not newer as duplicates', () => {
    table.apply(key, { op: 'c', position: p(10), row: { id: 1, name: 'a' } });
    table.apply(key, { op: 'u', position: p(20), row: { id: 1, name: 'b' } });
    expect(table.apply(key, { op: 'c', position: p(10), row: { id: 1, name: 'a' } })).toEqual({ kind: 'duplicate' });
    expect(table.apply(key, { op: 'u', position: p(20), row: { id: 1, name: 'b' } })).toEqual({ kind: 'duplicate' });
    expect(table.get(key)).toEqual({ id: 1, name: 'b' });
  });

  it('a delete tombstone stops a replayed older insert from resurrecting the row', () => {
    table.apply(key, { op: 'c', position: p(10), row: { id: 1, name: 'a' } });
    expect(table.apply(key, { op: 'd', position: p(30), row: null })).toEqual({
      kind: 'applied',
      previous: { id: 1, name: 'a' },
    });
    expect(table.get(key)).toBeNull();
    expect(table.apply(key, { op: 'c', position: p(10), row: { id: 1, name: 'a' } })).toEqual({ kind: 'duplicate' });
    expect(table.get(key)).toBeNull();
    expect(table.entry(key)).toMatchObject({ row: null, position: p(30) });
    // A genuinely newer insert after the delete is applied.
    expect(table.apply(key, { op: 'c', position: p(40), row: { id: 1, name: 'new' } })).toEqual({
      kind: 'applied',
      previous: null,
    });
  });

  it('tombstones disappear after tombstoneTtlMs', async () => {
    table.apply(key, { op: 'c', position: p(10), row: { id: 1, name: 'a' } });
    table.apply(key, { op: 'd', position: p(30), row: null });
    clock.advance(59_999);
    expect(table.apply(key, { op: 'c', position: p(10), row: { id: 1, name: 'a' } })).toEqual({ kind: 'duplicate' });
    clock.advance(1);
    expect(table.entry(key)).toBeUndefined();
    // After expiry the key behaves as never seen: the TTL is the documented replay horizon.
    expect(table.apply(key, { op: 'c', position: p(10), row: { id: 1, name: 'a' } })).toEqual({
      kind: 'applied',
      previous: null,
    });
  });

  it('purgeExpiredTombstones removes expired tombstones of untouched keys from the store', async () => {
    table.apply({ id: 2 }, { op: 'c', position: p(1), row: { id: 2, name: 'keep' } });
    table.apply(key, { op: 'd', position: p(5), row: null });
    await backend.flush();
    clock.advance(60_000);
    expect(await table.purgeExpiredTombstones()).toBe(1);
    const keys: unknown[] = [];
    for await (const k of backend.keys('upsert-table')) keys.push(k);
    expect(keys).toEqual([{ id: 2 }]);
  });

  it('survives flush and reload with the position guard intact', async () => {
    table.apply(key, { op: 'c', position: p(10), row: { id: 1, name: 'a' } });
    table.apply(key, { op: 'd', position: p(11), row: null });
    await backend.flush();
    const again = new KeyedStateBackend({
      store: (backend as unknown as { store: MemoryStore }).store,
      keyGroupRange: { start: 0, end: 127 },
      clock: clock.now,
    });
    const table2 = new UpsertTable<Row>(again, { tombstoneTtlMs: 60_000 });
    await again.prefetch([key]);
    expect(table2.apply(key, { op: 'c', position: p(10), row: { id: 1, name: 'a' } })).toEqual({ kind: 'duplicate' });
  });

  it('orders interleaved transactions by commit (source.sequence), not by change LSN', () => {
    // T1 began first (change LSN 100) but committed second; T2 (change LSN 200) committed first.
    // Debezium streams T2 then T1: T2's changes carry the commit before it (50), T1's carry T2's commit (300).
    expect(table.apply(key, { op: 'u', position: streamPosition(50, 200), row: { id: 1, name: 'T2' } }).kind).toBe(
      'applied',
    );
    expect(table.apply(key, { op: 'u', position: streamPosition(300, 100), row: { id: 1, name: 'T1' } }).kind).toBe(
      'applied',
    );
    expect(table.get(key)).toEqual({ id: 1, name: 'T1' });
    expect(table.apply(key, { op: 'u', position: streamPosition(50, 200), row: { id: 1, name: 'T2' } })).toEqual({
      kind: 'duplicate',
    });
  });

  it('ranks snapshot rows below every streamed change, whatever their LSNs', () => {
    // The snapshot read at LSN 1000; a transaction that began before and committed after it streams
    // with a lower change LSN and no last-commit LSN yet (a fresh connector).
    table.apply(key, { op: 'r', position: snapshotPosition(null, 1000), row: { id: 1, name: 'snap' } });
    expect(table.apply(key, { op: 'd', position: streamPosition(null, 900), row: null }).kind).toBe('applied');
    expect(table.get(key)).toBeNull();
    expect(table.apply(key, { op: 'r', position: snapshotPosition(null, 1000), row: { id: 1, name: 'snap' } })).toEqual(
      { kind: 'duplicate' },
    );
  });
});
