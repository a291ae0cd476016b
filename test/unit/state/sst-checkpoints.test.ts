import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeKey } from '../../../state/key-encoder.ts';
import { keyGroupFor, type KeyGroupRange } from '../../../state/key-groups.ts';
import { KeyedStateBackend } from '../../../state/keyed-state-backend.ts';
import { RocksDbStore } from '../../../state/rocksdb-store.ts';
import { newBytesOf } from '../../../state/snapshot-handle.ts';
import { LocalFsSnapshotStorage } from '../../../state/snapshot-storage.ts';
import { keyGroupOfStateKey } from '../../../state/state-key-layout.ts';
import { completedCheckpoint, dumpState, TempDirs } from './helpers.ts';

/**
 * Native binding (`state.rocksdb.binding: 'native'`): snapshots hold RocksDB checkpoints whose SST
 * files are uploaded once and listed by later handles; a restore at the same key groups opens the
 * files (no replay), a restore at other key groups copies the entries it owns. These run in the
 * default 'changelog' mode, where checkpoint 2 is [RocksDB checkpoint 1, delta 2] (the deltas are
 * replayed after opening); changelog-sst-checkpoints.test.ts covers materialisations and 'sst' mode.
 */
const dirs = new TempDirs();
afterAll(() => dirs.cleanup());

const ALL: KeyGroupRange = { start: 0, end: 127 };
const keys = Array.from({ length: 3000 }, (_, i) => `k${i}`);
const payload = 'x'.repeat(200);

async function put(backend: KeyedStateBackend, subset: readonly string[], value: (k: string) => number | null) {
  const v = backend.getValueState<string>({ name: 'v' });
  const m = backend.getMapState<string, number>({ name: 'm' });
  await backend.prefetch(subset);
  for (const key of subset) {
    backend.setCurrentKey(key);
    const x = value(key);
    if (x === null) {
      v.clear();
      m.clear();
    } else {
      v.update(`${x}:${payload}`);
      m.put(`e${x % 3}`, x);
    }
  }
  await backend.flush();
}

function own(range: KeyGroupRange): string[] {
  return keys.filter((k) => {
    const g = keyGroupFor(encodeKey(k), 128);
    return g >= range.start && g <= range.end;
  });
}

function nativeBackend(location: string, range: KeyGroupRange, prefix: string, localRecovery = false) {
  const store = new RocksDbStore({ location, binding: 'native', localRecovery });
  const backend = new KeyedStateBackend({ store, keyGroupRange: range, snapshotNamePrefix: prefix });
  return { store, backend };
}

/** A subtask's history over `range`: load, checkpoint 1, small changes, checkpoint 2 (returned), more writes. */
async function history(root: string, name: string, range: KeyGroupRange, storage: LocalFsSnapshotStorage) {
  const { store, backend } = nativeBackend(join(root, name), range, name);
  await backend.open();
  const mine = own(range);
  await put(backend, mine, (k) => Number(k.slice(1)));
  const first = await completedCheckpoint(backend, 1, storage);
  await put(backend, mine.slice(0, 50), (k) => Number(k.slice(1)) + 7);
  await put(backend, mine.slice(50, 60), () => null);
  const second = await completedCheckpoint(backend, 2, storage);
  const expected = await dumpState(store);
  await put(backend, mine.slice(0, 200), () => -1);
  await backend.close();
  return { first, second, expected };
}

describe('native RocksDB checkpoints', () => {
  it('upload only SST files the last completed checkpoint did not, and restore elsewhere by opening them', async () => {
    const root = await dirs.make('sst');
    const storage = new LocalFsSnapshotStorage(join(root, 'checkpoints'));
    const { first, second, expected } = await history(root, 'a', ALL, storage);
    expect(first.format).toBe('rocksdb-checkpoint');
    expect(first.files.some((f) => f.kind === 'sst')).toBe(true);
    // The second checkpoint lists the first's SST files without uploading them again.
    const reused = second.files.filter((f) => f.kind === 'sst' && f.checkpointId === 1);
    expect(reused.length).toBeGreaterThan(0);
    expect(reused.every((f) => first.files.some((g) => g.path === f.path))).toBe(true);
    const total = second.files.reduce((s, f) => s + f.bytes, 0);
    expect(newBytesOf(second)).toBeLessThan(total);

    // Another directory (another machine): no local copy, files opened as they are.
    const { store, backend } = nativeBackend(join(root, 'elsewhere'), ALL, 'a');
    await backend.open();
    await backend.restore([second], ALL, storage);
    expect(await dumpState(store)).toEqual(expected);
    // The restored database's files are the checkpoint's: the next checkpoint reuses them.
    await put(backend, keys.slice(0, 10), () => 5);
    const third = await completedCheckpoint(backend, 3, storage);
    expect(third.files.filter((f) => f.kind === 'sst' && f.checkpointId < 3).length).toBeGreaterThan(0);
    const afterThird = await dumpState(store);
    await backend.close();

    const again = nativeBackend(join(root, 'third'), ALL, 'a');
    await again.backend.open();
    await again.backend.restore([third], ALL, storage);
    expect(await dumpState(again.store)).toEqual(afterThird);
    await again.backend.close();
  });

  it('restores at other key-group ranges (rescale) from two old subtasks', async () => {
    const root = await dirs.make('sst-rescale');
    const storage = new LocalFsSnapshotStorage(join(root, 'checkpoints'));
    const low = await history(root, 'low', { start: 0, end: 63 }, storage);
    const high = await history(root, 'high', { start: 64, end: 127 }, storage);
    const reference = new Map([...low.expected, ...high.expected]);
    for (const range of [ALL, { start: 32, end: 95 }, { start: 64, end: 127 }, { start: 0, end: 10 }]) {
      const { store, backend } = nativeBackend(join(root, `r-${range.start}-${range.end}`), range, 'r');
      await backend.open();
      await backend.restore([low.second, high.second], range, storage);
      const expected = new Map(
        [...reference].filter(([k]) => {
          const g = keyGroupOfStateKey(Buffer.from(k, 'hex'));
          return g >= range.start && g <= range.end;
        }),
      );
      expect(await dumpState(store)).toEqual(expected);
      // Its first checkpoint uploads its own database whole, then restores exactly.
      const handle = await completedCheckpoint(backend, 3, storage);
      expect(handle.files.every((f) => f.checkpointId === 3)).toBe(true);
      await backend.close();
      const next = nativeBackend(join(root, `n-${range.start}-${range.end}`), range, 'r');
      await next.backend.open();
      await next.backend.restore([handle], range, storage);
      expect(await dumpState(next.store)).toEqual(expected);
      await next.backend.close();
    }
  });

  it('works with local recovery: a restart on the same directory recovers, another directory opens the files', async () => {
    const root = await dirs.make('sst-lr');
    const storage = new LocalFsSnapshotStorage(join(root, 'checkpoints'));
    const location = join(root, 'db');
    const { store, backend } = nativeBackend(location, ALL, 'lr', true);
    await backend.open();
    await put(backend, keys, (k) => Number(k.slice(1)));
    const handle = await completedCheckpoint(backend, 1, storage);
    const expected = await dumpState(store);
    await put(backend, keys.slice(0, 100), () => null);
    await backend.close();

    const same = nativeBackend(location, ALL, 'lr', true);
    await same.backend.open();
    await same.backend.restore([handle], ALL, storage);
    expect(await dumpState(same.store)).toEqual(expected);
    await same.backend.close();

    const other = nativeBackend(join(root, 'other'), ALL, 'lr', true);
    await other.backend.open();
    await other.backend.restore([handle], ALL, storage);
    expect(await dumpState(other.store)).toEqual(expected);
    // The old lineage's bookkeeping (marks, undo records) did not come along.
    let bookkeeping = 0;
    for await (const _ of other.store.rawRange({ gte: Buffer.from([0xff, 0xff, 0xff]), lt: Buffer.alloc(8, 0xff) }))
      bookkeeping++;
    expect(bookkeeping).toBe(1); // the new lineage's meta record only
    await other.backend.close();
  });

  it('with checkpointWalBytes, a checkpoint carries the unflushed writes in its WAL copy', async () => {
    const root = await dirs.make('sst-wal');
    const storage = new LocalFsSnapshotStorage(join(root, 'checkpoints'));
    const store = new RocksDbStore({
      location: join(root, 'db'),
      binding: 'native',
      checkpointWalBytes: 64 << 20,
      writeBufferSizeBytes: 32 << 20,
    });
    const backend = new KeyedStateBackend({ store, keyGroupRange: ALL, snapshotNamePrefix: 'w' });
    await backend.open();
    await put(backend, keys, (k) => Number(k.slice(1)));
    const handle = await completedCheckpoint(backend, 1, storage);
    // Nothing was flushed: the state is in the WAL the checkpoint copied.
    expect(handle.files.some((f) => f.kind === 'sst')).toBe(false);
    expect(handle.files.some((f) => f.localName?.endsWith('.log') === true && f.bytes > 0)).toBe(true);
    const expected = await dumpState(store);
    await put(backend, keys.slice(0, 100), () => null);
    await backend.close();
    const { store: other, backend: restored } = nativeBackend(join(root, 'other'), ALL, 'w');
    await restored.open();
    await restored.restore([handle], ALL, storage);
    expect(await dumpState(other)).toEqual(expected);
    await restored.close();
  });

  it('leaves no scratch directories behind', async () => {
    const root = await dirs.make('sst-scratch');
    const storage = new LocalFsSnapshotStorage(join(root, 'checkpoints'));
    await history(root, 'a', ALL, storage);
    const scratch = join(root, 'a.scratch');
    const left = await stat(scratch).then(
      () => readdir(scratch),
      () => [],
    );
    expect(left).toEqual([]);
  });
});
