import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeKey } from '../../../state/key-encoder.ts';
import { keyGroupFor, type KeyGroupRange } from '../../../state/key-groups.ts';
import { KeyedStateBackend } from '../../../state/keyed-state-backend.ts';
import { MemoryStore } from '../../../state/memory-store.ts';
import { RocksDbStore } from '../../../state/rocksdb-store.ts';
import type { KeyedStateHandle } from '../../../state/snapshot-handle.ts';
import { LocalFsSnapshotStorage } from '../../../state/snapshot-storage.ts';
import { keyGroupOfStateKey } from '../../../state/state-key-layout.ts';
import { dumpState, putValueAndMap, TempDirs } from './helpers.ts';

/**
 * A restore that is not a local recovery (another machine, another working directory, another
 * parallelism) replays the checkpoint's files into the store. The restored store must equal the
 * state at the checkpoint, byte for byte.
 */
const dirs = new TempDirs();
afterAll(() => dirs.cleanup());

const ALL: KeyGroupRange = { start: 0, end: 127 };
const keys = Array.from({ length: 400 }, (_, i) => `k${i}`);

function ownKeys(range: KeyGroupRange): string[] {
  return keys.filter((k) => {
    const group = keyGroupFor(encodeKey(k), 128);
    return group >= range.start && group <= range.end;
  });
}

/**
 * A subtask's history over `range`: a full checkpoint, then deltas with updates, deletes, new keys
 * and map entries; every checkpoint completes. Returns the last handle and the store's entries at
 * its barrier, then writes more (which the restore must not see).
 */
async function history(
  root: string,
  name: string,
  range: KeyGroupRange,
  storage: LocalFsSnapshotStorage,
): Promise<{ handle: KeyedStateHandle; expected: Map<string, string> }> {
  const store = new RocksDbStore({ location: join(root, name) });
  const backend = new KeyedStateBackend({ store, keyGroupRange: range, snapshotNamePrefix: name });
  await backend.open();
  const own = ownKeys(range);
  await putValueAndMap(backend, own.slice(0, 250), (k) => Number(k.slice(1)));
  let handle = await backend.snapshot(1, storage);
  backend.notifyCheckpointComplete(1);
  await putValueAndMap(backend, own.slice(0, 80), (k) => Number(k.slice(1)) + 1000);
  await putValueAndMap(backend, own.slice(80, 140), () => null);
  handle = await backend.snapshot(2, storage);
  backend.notifyCheckpointComplete(2);
  await putValueAndMap(backend, own.slice(250), (k) => Number(k.slice(1)) + 3);
  await putValueAndMap(backend, own.slice(100, 120), (k) => Number(k.slice(1)) + 7);
  await putValueAndMap(backend, own.slice(0, 10), () => null);
  handle = await backend.snapshot(3, storage);
  backend.notifyCheckpointComplete(3);
  const expected = await dumpState(store);
  await putValueAndMap(backend, own, () => 42);
  await backend.close();
  expect(handle.files.map((f) => f.kind)).toEqual(['full', 'delta', 'delta']);
  return { handle, expected };
}

function union(...maps: Map<string, string>[]): Map<string, string> {
  return new Map(maps.flatMap((m) => [...m]));
}

function restrict(entries: Map<string, string>, range: KeyGroupRange): Map<string, string> {
  return new Map(
    [...entries].filter(([key]) => {
      const group = keyGroupOfStateKey(Buffer.from(key, 'hex'));
      return group >= range.start && group <= range.end;
    }),
  );
}

describe('restore by replaying files (not a local recovery)', () => {
  it('equals the state at the checkpoint, replacing whatever the store held, and goes on checkpointing from it', async () => {
    const root = await dirs.make('restore-elsewhere');
    const storage = new LocalFsSnapshotStorage(join(root, 'chk'));
    const { handle, expected } = await history(root, 'source', ALL, storage);

    // Another working directory that already holds state (an in-process restart): it must be replaced.
    const store = new RocksDbStore({ location: join(root, 'elsewhere'), localRecovery: true });
    const backend = new KeyedStateBackend({
      store,
      keyGroupRange: ALL,
      snapshotNamePrefix: 'elsewhere',
      restoreBatchSize: 3,
    });
    await backend.open();
    await putValueAndMap(backend, keys, () => 99);
    await backend.restore([handle], ALL, storage);
    expect(await dumpState(store)).toEqual(expected);

    // The restored store keeps working: writes, a delta on the restored chain, a restore of it.
    await putValueAndMap(backend, keys.slice(0, 30), (k) => Number(k.slice(1)) + 500);
    const next = await backend.snapshot(4, storage);
    backend.notifyCheckpointComplete(4);
    expect(next.files.map((f) => f.kind)).toEqual(['full', 'delta', 'delta', 'delta']);
    const expectedNext = await dumpState(store);
    await putValueAndMap(backend, keys, () => 1);
    await backend.close();

    const third = new RocksDbStore({ location: join(root, 'third') });
    const again = new KeyedStateBackend({ store: third, keyGroupRange: ALL, restoreBatchSize: 5 });
    await again.open();
    await again.restore([next], ALL, storage);
    expect(await dumpState(third)).toEqual(expectedNext);
    await again.close();
  }, 60_000);

  it('after a replay, a restart on the same directory recovers locally to a checkpoint taken since', async () => {
    const root = await dirs.make('replay-then-local');
    const storage = new LocalFsSnapshotStorage(join(root, 'chk'));
    const { handle } = await history(root, 'source', ALL, storage);
    const location = join(root, 'db');
    const first = new KeyedStateBackend({
      store: new RocksDbStore({ location, localRecovery: true }),
      keyGroupRange: ALL,
    });
    await first.open();
    await first.restore([handle], ALL, storage);
    await putValueAndMap(first, keys.slice(0, 60), (k) => Number(k.slice(1)) + 9000);
    const taken = await first.snapshot(4, storage);
    first.notifyCheckpointComplete(4);
    expect(taken.localRecovery?.incarnation).toMatch(/[0-9a-f-]{36}/);
    const reference = new MemoryStore();
    const check = new KeyedStateBackend({ store: reference, keyGroupRange: ALL });
    await check.open();
    await check.restore([taken], ALL, storage);
    const expected = await dumpState(reference);
    await putValueAndMap(first, keys.slice(0, 60), () => null);
    await first.close();

    // Files gone: only the kept directory can provide checkpoint 4.
    await rm(join(root, 'chk'), { recursive: true, force: true });
    const store = new RocksDbStore({ location, localRecovery: true });
    const second = new KeyedStateBackend({ store, keyGroupRange: ALL });
    await second.open();
    await second.restore([taken], ALL, storage);
    expect(await dumpState(store)).toEqual(expected);
    await second.close();
    await check.close();
  }, 60_000);

  it('at another parallelism: each subtask gets exactly its key groups from the handles of the old ones', async () => {
    const root = await dirs.make('replay-rescale');
    const storage = new LocalFsSnapshotStorage(join(root, 'chk'));
    const left = await history(root, 'left', { start: 0, end: 63 }, storage);
    const right = await history(root, 'right', { start: 64, end: 127 }, storage);
    const all = union(left.expected, right.expected);
    for (const range of [ALL, { start: 32, end: 95 }, { start: 0, end: 40 }, { start: 100, end: 127 }]) {
      const store = new RocksDbStore({ location: join(root, `to-${range.start}-${range.end}`), localRecovery: true });
      const backend = new KeyedStateBackend({ store, keyGroupRange: range, restoreBatchSize: 4 });
      await backend.open();
      await backend.restore([left.handle, right.handle], range, storage);
      expect(await dumpState(store)).toEqual(restrict(all, range));
      await backend.close();
    }
  }, 60_000);

  it('after a rescale, checkpoints are deltas on the old files and a restart recovers them locally', async () => {
    const root = await dirs.make('rescale-then-local');
    const storage = new LocalFsSnapshotStorage(join(root, 'chk'));
    const left = await history(root, 'left', { start: 0, end: 63 }, storage);
    const right = await history(root, 'right', { start: 64, end: 127 }, storage);
    const location = join(root, 'db');
    const store = new RocksDbStore({ location, localRecovery: true });
    const first = new KeyedStateBackend({ store, keyGroupRange: ALL, snapshotNamePrefix: 'merged' });
    await first.open();
    await first.restore([left.handle, right.handle], ALL, storage);
    await putValueAndMap(first, keys.slice(0, 40), (k) => Number(k.slice(1)) + 4000);
    const taken = await first.snapshot(4, storage);
    first.notifyCheckpointComplete(4);
    expect(taken.files.at(-1)?.kind).toBe('delta');
    expect(taken.files.length).toBe(left.handle.files.length + right.handle.files.length + 1);
    const expected = await dumpState(store);
    await putValueAndMap(first, keys.slice(0, 40), () => null);
    await first.close();

    await rm(join(root, 'chk'), { recursive: true, force: true });
    const again = new RocksDbStore({ location, localRecovery: true });
    const second = new KeyedStateBackend({ store: again, keyGroupRange: ALL });
    await second.open();
    await second.restore([taken], ALL, storage);
    expect(await dumpState(again)).toEqual(expected);
    await second.close();
  }, 60_000);

  it('refuses a RocksDB checkpoint (native binding) on the npm binding, naming the binding to use', async () => {
    const store = new RocksDbStore({ location: join(await dirs.make('npm-sst'), 'db') });
    const backend = new KeyedStateBackend({ store, keyGroupRange: ALL });
    await backend.open();
    const handle: KeyedStateHandle = {
      version: 1,
      maxParallelism: 128,
      checkpointId: 3,
      format: 'rocksdb-checkpoint',
      files: [
        { path: 'x/000009.sst', kind: 'sst', keyGroups: [0, 127], bytes: 1, checkpointId: 3, localName: '000009.sst' },
      ],
    };
    await expect(backend.restore([handle], ALL)).rejects.toThrow(/binding 'native'/);
    await backend.close();
  });
});
