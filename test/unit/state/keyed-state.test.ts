import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { KeyedStateBackend } from '../../../state/keyed-state-backend.ts';
import type { KeyedStateBackendOptions } from '../../../state/backend-options.ts';
import { keyGroupRangeFor } from '../../../state/key-groups.ts';
import { jsonSerializer } from '../../../state/serializers.ts';
import { StateError } from '../../../state/errors.ts';
import { MemoryStore } from '../../../state/memory-store.ts';
import { makeStore, manualClock, TempDirs, type StoreKind } from './helpers.ts';

const dirs = new TempDirs();
afterAll(() => dirs.cleanup());

describe.each<StoreKind>(['memory', 'rocksdb'])('keyed state on %s', (kind) => {
  const open: KeyedStateBackend[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((b) => b.close()));
  });

  async function backend(options: Partial<KeyedStateBackendOptions> = {}): Promise<KeyedStateBackend> {
    const b = new KeyedStateBackend({
      store: await makeStore(kind, dirs),
      keyGroupRange: { start: 0, end: 127 },
      ...options,
    });
    await b.open();
    open.push(b);
    return b;
  }

  it('prefetch then synchronous value, list, map and reducing state; flush persists', async () => {
    const b = await backend({ maxCachedKeys: 1 });
    const count = b.getValueState<number>({ name: 'count' });
    const seen = b.getListState<string>({ name: 'seen' });
    const byDay = b.getMapState<string, bigint>({ name: 'byDay' });
    const total = b.getReducingState<number>({ name: 'total', reduce: (a, v) => a + v });
    await b.prefetch(['k1', 'k2']);
    b.setCurrentKey('k1');
    expect(count.value()).toBeUndefined();
    expect(byDay.isEmpty()).toBe(true);
    count.update(1);
    seen.add('a');
    seen.add('b');
    byDay.put('2024-01-01', 10n);
    byDay.put('2024-01-02', 20n);
    total.add(5);
    total.add(7);
    b.setCurrentKey('k2');
    count.update(2);
    await b.flush();

    // Push k1 and k2 out of the cache (bound 1), so the reads below come from the store.
    await b.prefetch(['other']);
    expect(b.cachedKeyCount).toBe(1);
    await b.prefetch(['k1', 'k2']);
    b.setCurrentKey('k1');
    expect(count.value()).toBe(1);
    expect(seen.get()).toEqual(['a', 'b']);
    expect([...byDay.entries()]).toEqual([
      ['2024-01-01', 10n],
      ['2024-01-02', 20n],
    ]);
    expect(total.get()).toBe(12);
    b.setCurrentKey('k2');
    expect(count.value()).toBe(2);
    expect(seen.get()).toEqual([]);
  });

  it('map remove and clear delete entries from the store', async () => {
    const b = await backend();
    const m = b.getMapState<number, string>({ name: 'm', serializer: jsonSerializer() });
    await b.prefetch([{ id: 1 }]);
    b.setCurrentKey({ id: 1 });
    for (let i = 0; i < 5; i++) m.put(i, `v${i}`);
    await b.flush();
    m.remove(2);
    expect(m.has(2)).toBe(false);
    await b.flush();
    expect([...m.keys()]).toEqual([0, 1, 3, 4]);
    m.clear();
    await b.flush();
    expect(await collect(b.keys('m'))).toEqual([]);
  });

  it('throws a clear StateError for a key that was not prefetched', async () => {
    const b = await backend();
    b.getValueState<number>({ name: 'v' });
    await b.prefetch(['a']);
    expect(() => b.setCurrentKey('b')).toThrow(StateError);
    expect(() => b.setCurrentKey('b')).toThrow(/was not prefetched/);
  });

  it('rejects keys outside the subtask key-group range', async () => {
    const b = await backend({ keyGroupRange: keyGroupRangeFor(0, 2) });
    b.getValueState<number>({ name: 'v' });
    const keys = Array.from({ length: 20 }, (_, i) => `key-${i}`);
    await expect(b.prefetch(keys)).rejects.toThrow(/outside this subtask's range/);
  });

  it('bounds the cache: clean keys beyond maxCachedKeys are evicted, dirty ones never', async () => {
    const b = await backend({ maxCachedKeys: 10 });
    const v = b.getValueState<number>({ name: 'v' });
    for (let batch = 0; batch < 10; batch++) {
      const keys = Array.from({ length: 5 }, (_, i) => batch * 5 + i);
      await b.prefetch(keys);
      for (const k of keys) {
        b.setCurrentKey(k);
        v.update(k * 10);
      }
      expect(b.cachedKeyCount).toBeLessThanOrEqual(15);
      await b.flush();
      expect(b.cachedKeyCount).toBeLessThanOrEqual(10);
    }
    await b.prefetch([0, 49]);
    b.setCurrentKey(0);
    expect(v.value()).toBe(0);
    b.setCurrentKey(49);
    expect(v.value()).toBe(490);
  });

  it('TTL: expired values read as absent, are deleted lazily and skipped by keys()', async () => {
    const clock = manualClock();
    const b = await backend({ clock: clock.now });
    const v = b.getValueState<string>({ name: 'session', ttlMs: 1_000 });
    const m = b.getMapState<string, number>({ name: 'recent', ttlMs: 1_000 });
    await b.prefetch(['u1', 'u2']);
    b.setCurrentKey('u1');
    v.update('s1');
    m.put('old', 1);
    clock.advance(600);
    b.setCurrentKey('u2');
    v.update('s2');
    b.setCurrentKey('u1');
    m.put('new', 2);
    await b.flush();
    clock.advance(500); // u1's value and map entry 'old' are 1100ms old; u2 and 'new' 500ms
    expect(await collect(b.keys('session'))).toEqual(['u2']);
    b.setCurrentKey('u1');
    expect(v.value()).toBeUndefined();
    expect([...m.entries()]).toEqual([['new', 2]]);
    b.setCurrentKey('u2');
    expect(v.value()).toBe('s2');
    v.update('s2b'); // a write refreshes the TTL
    clock.advance(900);
    expect(v.value()).toBe('s2b');
  });

  it('keys() lists each key with state once, including unflushed writes', async () => {
    const b = await backend();
    const m = b.getMapState<string, number>({ name: 'm' });
    const keys = ['a', 'b', 'c'];
    await b.prefetch(keys);
    for (const k of keys) {
      b.setCurrentKey(k);
      m.put('x', 1);
      m.put('y', 2);
    }
    expect((await collect(b.keys('m'))).sort()).toEqual(keys);
  });

  it('rejects registering one name as two kinds', async () => {
    const b = await backend();
    b.getValueState<number>({ name: 'x' });
    expect(() => b.getListState<number>({ name: 'x' })).toThrow(/already registered as value/);
    expect(b.getValueState<number>({ name: 'x' })).toBe(b.getValueState<number>({ name: 'x' }));
  });
});

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('registering a state after keys are cached', () => {
  it('loads the new state on the next prefetch, keeping unflushed writes of the others', async () => {
    const b = new KeyedStateBackend({ store: new MemoryStore(), keyGroupRange: { start: 0, end: 127 } });
    await b.open();
    const first = b.getValueState<number>({ name: 'first' });
    await b.prefetch(['k']);
    b.setCurrentKey('k');
    first.update(1);
    const late = b.getValueState<number>({ name: 'late' });
    expect(() => late.value()).toThrow(/registered after key "k" was prefetched/);
    await b.prefetch(['k']);
    b.setCurrentKey('k');
    expect(late.value()).toBeUndefined();
    expect(first.value()).toBe(1);
    await b.close();
  });
});
