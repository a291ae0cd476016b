import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KeyedStateBackend } from '../../../state/keyed-state-backend.ts';
import { MemoryStore } from '../../../state/memory-store.ts';
import { UpsertTable } from '../../../state/upsert-table.ts';
import { manualClock } from './helpers.ts';

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
    backend = new KeyedStateBackend({ store: new MemoryStore(), keyGroupRange: { start: 0, end: 127 }, clock: clock.now });
    await backend.open();
    table = new UpsertTable<Row>(backend, { tombstoneTtlMs: 60_000 });
    await backend.prefetch([key, { id: 2 }]);
  });
  afterEach(() => backend.close());

  it('applies inserts and updates in LSN order and reports the previous row', () => {
    expect(table.apply(key, { op: 'r', lsn: 10, row: { id: 1, name: 'a' } })).toEqual({ kind: 'applied', previous: null });
    expect(table.apply(key, { op: 'u', lsn: 20, row: { id: 1, name: 'b' } })).toEqual({
      kind: 'applied',
      previous: { id: 1, name: 'a' },
    });
    expect(table.get(key)).toEqual({ id: 1, name: 'b' });
    expect(table.get({ id: 2 })).toBeNull();
  });

  it('drops replayed events whose LSN is not newer as duplicates', () => {
    table.apply(key, { op: 'c', lsn: 10, row: { id: 1, name: 'a' } });
    table.apply(key, { op: 'u', lsn: 20, row: { id: 1, name: 'b' } });
    expect(table.apply(key, { op: 'c', lsn: 10, row: { id: 1, name: 'a' } })).toEqual({ kind: 'duplicate' });
    expect(table.apply(key, { op: 'u', lsn: 20, row: { id: 1, name: 'b' } })).toEqual({ kind: 'duplicate' });
    expect(table.get(key)).toEqual({ id: 1, name: 'b' });
  });

  it('a delete tombstone stops a replayed older insert from resurrecting the row', () => {
    table.apply(key, { op: 'c', lsn: 10, row: { id: 1, name: 'a' } });
    expect(table.apply(key, { op: 'd', lsn: 30, row: null })).toEqual({ kind: 'applied', previous: { id: 1, name: 'a' } });
    expect(table.get(key)).toBeNull();
    expect(table.apply(key, { op: 'c', lsn: 10, row: { id: 1, name: 'a' } })).toEqual({ kind: 'duplicate' });
    expect(table.get(key)).toBeNull();
    expect(table.entry(key)).toMatchObject({ row: null, lsn: 30 });
    // A genuinely newer insert after the delete is applied.
    expect(table.apply(key, { op: 'c', lsn: 40, row: { id: 1, name: 'new' } })).toEqual({ kind: 'applied', previous: null });
  });

  it('tombstones disappear after tombstoneTtlMs', async () => {
    table.apply(key, { op: 'c', lsn: 10, row: { id: 1, name: 'a' } });
    table.apply(key, { op: 'd', lsn: 30, row: null });
    clock.advance(59_999);
    expect(table.apply(key, { op: 'c', lsn: 10, row: { id: 1, name: 'a' } })).toEqual({ kind: 'duplicate' });
    clock.advance(1);
    expect(table.entry(key)).toBeUndefined();
    // After expiry the key behaves as never seen: the TTL is the documented replay horizon.
    expect(table.apply(key, { op: 'c', lsn: 10, row: { id: 1, name: 'a' } })).toEqual({ kind: 'applied', previous: null });
  });

  it('purgeExpiredTombstones removes expired tombstones of untouched keys from the store', async () => {
    table.apply({ id: 2 }, { op: 'c', lsn: 1, row: { id: 2, name: 'keep' } });
    table.apply(key, { op: 'd', lsn: 5, row: null });
    await backend.flush();
    clock.advance(60_000);
    expect(await table.purgeExpiredTombstones()).toBe(1);
    const keys: unknown[] = [];
    for await (const k of backend.keys('upsert-table')) keys.push(k);
    expect(keys).toEqual([{ id: 2 }]);
  });

  it('survives flush and reload with the LSN guard intact', async () => {
    table.apply(key, { op: 'c', lsn: 10, row: { id: 1, name: 'a' } });
    table.apply(key, { op: 'd', lsn: 11, row: null });
    await backend.flush();
    const again = new KeyedStateBackend({
      store: (backend as unknown as { store: MemoryStore }).store,
      keyGroupRange: { start: 0, end: 127 },
      clock: clock.now,
    });
    const table2 = new UpsertTable<Row>(again, { tombstoneTtlMs: 60_000 });
    await again.prefetch([key]);
    expect(table2.apply(key, { op: 'c', lsn: 10, row: { id: 1, name: 'a' } })).toEqual({ kind: 'duplicate' });
  });
});
