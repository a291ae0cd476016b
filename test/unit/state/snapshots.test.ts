import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import type { KeyedStateBackendOptions } from '../../../state/backend-options.ts';
import { encodeKey } from '../../../state/key-encoder.ts';
import { inKeyGroupRange, keyGroupFor, keyGroupRangeFor, type KeyGroupRange } from '../../../state/key-groups.ts';
import { KeyedStateBackend } from '../../../state/keyed-state-backend.ts';
import { newBytesOf, type KeyedStateHandle } from '../../../state/snapshot-handle.ts';
import { LocalFsSnapshotStorage } from '../../../state/snapshot-storage.ts';
import type { MapState, ValueState } from '../../../state/descriptors.ts';
import { makeStore, manualClock, TempDirs, type StoreKind } from './helpers.ts';

const dirs = new TempDirs();
afterAll(() => dirs.cleanup());

interface Subject {
  readonly backend: KeyedStateBackend;
  readonly value: ValueState<{ n: number; pad: string }>;
  readonly map: MapState<string, number>;
}

describe.each<StoreKind>(['memory', 'rocksdb'])('incremental snapshots on %s', (kind) => {
  const open: KeyedStateBackend[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((b) => b.close()));
  });

  async function subject(
    range: KeyGroupRange = { start: 0, end: 127 },
    options: Partial<KeyedStateBackendOptions> = {},
  ): Promise<Subject> {
    const backend = new KeyedStateBackend({ store: await makeStore(kind, dirs), keyGroupRange: range, ...options });
    await backend.open();
    open.push(backend);
    return {
      backend,
      value: backend.getValueState({ name: 'value' }),
      map: backend.getMapState({ name: 'map' }),
    };
  }

  async function storage(): Promise<LocalFsSnapshotStorage> {
    return new LocalFsSnapshotStorage(await dirs.make('chk'));
  }

  /** Sets value {n} and map entry 'm' = n for each key, as one batch. */
  async function put(s: Subject, keys: readonly number[], n: number): Promise<void> {
    await s.backend.prefetch(keys);
    for (const k of keys) {
      s.backend.setCurrentKey(k);
      s.value.update({ n, pad: 'x'.repeat(40) });
      s.map.put('m', n);
    }
    await s.backend.flush();
  }

  async function read(s: Subject, keys: readonly number[]): Promise<Map<number, number | undefined>> {
    await s.backend.prefetch(keys);
    const out = new Map<number, number | undefined>();
    for (const k of keys) {
      s.backend.setCurrentKey(k);
      expect(s.map.get('m')).toBe(s.value.value()?.n);
      out.set(k, s.value.value()?.n);
    }
    return out;
  }

  const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

  it('round-trips full and delta snapshots through restore, deletes included', async () => {
    const st = await storage();
    const a = await subject();
    await put(a, range(50), 1);
    const h1 = await a.backend.snapshot(1, st);
    a.backend.notifyCheckpointComplete(1);
    await put(a, [3, 4], 2);
    await a.backend.prefetch([5]);
    a.backend.setCurrentKey(5);
    a.value.clear();
    a.map.remove('m');
    const h2 = await a.backend.snapshot(2, st);
    expect(h1.files.map((f) => f.kind)).toEqual(['full']);
    expect(h2.files.map((f) => f.kind)).toEqual(['full', 'delta']);

    const b = await subject();
    await b.backend.restore([h2], { start: 0, end: 127 }, st);
    const got = await read(b, range(50));
    expect(got.get(0)).toBe(1);
    expect(got.get(3)).toBe(2);
    expect(got.get(5)).toBeUndefined();
  });

  it('the delta after touching 1% of keys is a small fraction of the full snapshot', async () => {
    const st = await storage();
    const a = await subject();
    const keys = range(2_000);
    await put(a, keys, 1);
    const full = await a.backend.snapshot(1, st);
    a.backend.notifyCheckpointComplete(1);
    await put(
      a,
      keys.filter((k) => k % 100 === 0),
      2,
    );
    const delta = await a.backend.snapshot(2, st);
    expect(delta.files.map((f) => f.kind)).toEqual(['full', 'delta']);
    const ratio = newBytesOf(delta) / newBytesOf(full);
    expect(ratio).toBeGreaterThan(0.005);
    expect(ratio).toBeLessThan(0.02);
  });

  it('compacts inline: a full snapshot when the chain is too long or the deltas outweigh the full', async () => {
    const st = await storage();
    const a = await subject(undefined, { maxDeltaChainLength: 3, snapshotCompaction: 'inline' });
    await put(a, range(100), 0);
    const kinds: string[][] = [];
    for (let id = 1; id <= 5; id++) {
      await put(a, [id], id);
      const h = await a.backend.snapshot(id, st);
      a.backend.notifyCheckpointComplete(id);
      kinds.push(h.files.map((f) => f.kind));
    }
    expect(kinds).toEqual([['full'], ['full', 'delta'], ['full', 'delta', 'delta'], ['full'], ['full', 'delta']]);
  });

  it('compacts inline when the chain deltas outweigh the last full snapshot', async () => {
    const st = await storage();
    const a = await subject(undefined, { snapshotCompaction: 'inline' });
    await put(a, range(100), 0);
    await a.backend.snapshot(1, st);
    a.backend.notifyCheckpointComplete(1);
    const kinds: string[][] = [];
    for (const [id, keys] of [
      [2, range(100)],
      [3, range(60)],
      [4, [1]],
    ] as const) {
      await put(a, keys, id);
      const h = await a.backend.snapshot(id, st);
      a.backend.notifyCheckpointComplete(id);
      kinds.push(h.files.map((f) => f.kind));
    }
    // chk 2 rewrites every key (delta ≈ full); chk 3's delta pushes the chain past the full's size.
    expect(kinds).toEqual([['full', 'delta'], ['full'], ['full', 'delta']]);
  });

  it('compacts in the background: every checkpoint stays a delta; a rebase of the state at one barrier becomes the chain start', async () => {
    const st = await storage();
    const a = await subject(undefined, { maxDeltaChainLength: 3 });
    await put(a, range(100), 0);
    const handles: KeyedStateHandle[] = [];
    for (let id = 1; id <= 6; id++) {
      await put(a, [id], id);
      const { done } = await a.backend.beginSnapshot(id, st);
      // Changes while the rebase (started at checkpoint 4's barrier) is written belong to later checkpoints only.
      if (id === 4) {
        expect(a.backend.rebaseStatus).toEqual({ checkpointId: 4, written: false });
        await put(a, [50, 51], 40);
        await a.backend.prefetch([52]);
        a.backend.setCurrentKey(52);
        a.value.clear();
        a.map.clear();
        await a.backend.flush();
      }
      handles.push(await done);
      a.backend.notifyCheckpointComplete(id);
      if (id === 4)
        await vi.waitFor(() => expect(a.backend.rebaseStatus?.written).toBe(true), { timeout: 10_000, interval: 10 });
    }
    const chains = handles.map((h) => h.files.map((f) => `${f.kind}${f.checkpointId}`));
    expect(chains).toEqual([
      ['full1'],
      ['full1', 'delta2'],
      ['full1', 'delta2', 'delta3'],
      ['full1', 'delta2', 'delta3', 'delta4'],
      ['full4', 'delta5'],
      ['full4', 'delta5', 'delta6'],
    ]);
    expect(handles.slice(1).every((h) => h.files.at(-1)?.kind === 'delta')).toBe(true);
    const b = await subject();
    await b.backend.restore([handles[5] as KeyedStateHandle], { start: 0, end: 127 }, st);
    const values = await read(b, range(100));
    for (let k = 0; k < 100; k++) {
      const expected = k === 52 ? undefined : k === 50 || k === 51 ? 40 : k >= 1 && k <= 6 ? k : 0;
      expect(values.get(k)).toBe(expected);
    }
  });

  it('an aborted checkpoint loses nothing: the next snapshot still carries its changes', async () => {
    const st = await storage();
    const a = await subject();
    await put(a, range(20), 1);
    await a.backend.snapshot(1, st);
    a.backend.notifyCheckpointComplete(1);
    await put(a, [7], 2);
    await a.backend.snapshot(2, st);
    a.backend.notifyCheckpointAborted(2);
    await put(a, [8], 3);
    const h3 = await a.backend.snapshot(3, st);
    a.backend.notifyCheckpointComplete(3);
    expect(h3.files.map((f) => f.checkpointId)).toEqual([1, 3]); // chk 2's file is not referenced

    const b = await subject();
    await b.backend.restore([h3], { start: 0, end: 127 }, st);
    const got = await read(b, [6, 7, 8]);
    expect([...got.values()]).toEqual([1, 2, 3]);
  });

  it('a snapshot captures the state at the call; later writes go to the next one', async () => {
    const st = await storage();
    const a = await subject();
    await put(a, range(10), 1);
    const { done } = await a.backend.beginSnapshot(1, st);
    await put(a, [0], 99); // processing goes on while the snapshot file is written
    const h1 = await done;
    const b = await subject();
    await b.backend.restore([h1], { start: 0, end: 127 }, st);
    expect((await read(b, [0])).get(0)).toBe(1);
  });

  it('full snapshots leave out TTL-expired values', async () => {
    const st = await storage();
    const clock = manualClock();
    const a = await subject(undefined, { clock: clock.now });
    const session = a.backend.getValueState<string>({ name: 'session', ttlMs: 1_000 });
    await a.backend.prefetch(range(10));
    for (const k of range(10)) {
      a.backend.setCurrentKey(k);
      session.update(`s${k}`);
    }
    await a.backend.flush();
    clock.advance(1_000);
    const h = await a.backend.snapshot(1, st);
    const b = await subject();
    b.backend.getValueState<string>({ name: 'session', ttlMs: 1_000 });
    await b.backend.restore([h], { start: 0, end: 127 }, st);
    expect(await collect(b.backend.keys('session'))).toEqual([]);
  });

  it('redistributes: snapshots of 2 subtasks restore into 1 and into 3', async () => {
    const st = await storage();
    const keys = range(300);
    const handles: KeyedStateHandle[] = [];
    for (let i = 0; i < 2; i++) {
      const r = keyGroupRangeFor(i, 2);
      const mine = keys.filter((k) => inKeyGroupRange(r, keyGroupFor(encodeKey(k))));
      const s = await subject(r, { snapshotNamePrefix: `op/subtask-${i}` });
      await put(s, mine, 1);
      await s.backend.snapshot(1, st);
      s.backend.notifyCheckpointComplete(1);
      await put(
        s,
        mine.filter((k) => k % 10 === 0),
        2,
      ); // a delta on top, so chains are replayed
      handles.push(await s.backend.snapshot(2, st));
    }
    const expected = new Map(keys.map((k) => [k, k % 10 === 0 ? 2 : 1]));

    const one = await subject();
    await one.backend.restore(handles, { start: 0, end: 127 }, st);
    expect(await read(one, keys)).toEqual(expected);

    const seen = new Map<number, number | undefined>();
    const rescaled: KeyedStateHandle[] = [];
    for (let i = 0; i < 3; i++) {
      const r = keyGroupRangeFor(i, 3);
      const s = await subject(r, { snapshotNamePrefix: `op/rescaled-${i}` });
      await s.backend.restore(handles, r, st);
      const listed = (await collect(s.backend.keys('value'))) as number[];
      for (const k of listed) expect(inKeyGroupRange(r, keyGroupFor(encodeKey(k)))).toBe(true);
      for (const [k, v] of await read(s, listed)) seen.set(k, v);
      // The rescaled subtask builds on the old subtasks' chains, each file narrowed to its share
      // of our key groups: its next snapshot is a delta, not a full copy of its state.
      await put(
        s,
        listed.filter((k) => k % 7 === 0),
        3,
      );
      const next = await s.backend.snapshot(3, st);
      expect(next.files.at(-1)?.kind).toBe('delta');
      expect(next.files.filter((f) => f.kind === 'full').length).toBeGreaterThan(0);
      for (const f of next.files) expect(f.keyGroups[0] >= r.start && f.keyGroups[1] <= r.end).toBe(true);
      rescaled.push(next);
    }
    expect(new Map([...seen].sort((x, y) => x[0] - y[0]))).toEqual(expected);

    // Back to 1 and to 2: subtasks 0 and 1 of 3 both list subtask 0's old full; each restores only
    // its share of it, so neither undoes the other's deltas.
    const after = new Map(keys.map((k) => [k, k % 7 === 0 ? 3 : k % 10 === 0 ? 2 : 1]));
    const merged = await subject();
    await merged.backend.restore(rescaled, { start: 0, end: 127 }, st);
    expect(await read(merged, keys)).toEqual(after);
    const again = new Map<number, number | undefined>();
    for (let i = 0; i < 2; i++) {
      const r = keyGroupRangeFor(i, 2);
      const s = await subject(r);
      await s.backend.restore(rescaled, r, st);
      for (const [k, v] of await read(s, (await collect(s.backend.keys('value'))) as number[])) again.set(k, v);
    }
    expect(new Map([...again].sort((x, y) => x[0] - y[0]))).toEqual(after);
  });

  it('refuses to restore a snapshot taken with another maxParallelism', async () => {
    const st = await storage();
    const a = await subject();
    await put(a, [1], 1);
    const h = await a.backend.snapshot(1, st);
    const b = await subject({ start: 0, end: 63 }, { maxParallelism: 64 });
    await expect(b.backend.restore([h], { start: 0, end: 63 }, st)).rejects.toThrow(/maxParallelism 128/);
  });
});

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}
