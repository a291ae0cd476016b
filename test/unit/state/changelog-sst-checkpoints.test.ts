import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { KeyGroupRange } from '../../../state/key-groups.ts';
import { KeyedStateBackend } from '../../../state/keyed-state-backend.ts';
import { RocksDbStore, type RocksDbStoreOptions } from '../../../state/rocksdb-store.ts';
import { newBytesOf, type KeyedStateHandle } from '../../../state/snapshot-handle.ts';
import { LocalFsSnapshotStorage, type SnapshotStorage } from '../../../state/snapshot-storage.ts';
import { completedCheckpoint, dumpState, TempDirs } from './helpers.ts';

/**
 * Native binding, 'changelog' mode (the default): every checkpoint writes a delta of the changed
 * keys; a RocksDB checkpoint (materialisation) is taken in the background and becomes the base of
 * a later checkpoint's handle: [SST files of the base at barrier c, deltas after c…, own delta].
 */
const dirs = new TempDirs();
afterAll(() => dirs.cleanup());

const ALL: KeyGroupRange = { start: 0, end: 127 };
const keys = Array.from({ length: 3000 }, (_, i) => `k${i}`);

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
      // Incompressible, so the state's bytes are what RocksDB stores.
      v.update(`${x}:${randomBytes(150).toString('base64')}`);
      m.put(`e${x % 3}`, x);
      if (x % 5 === 0) m.remove('e0');
    }
  }
  await backend.flush();
}

function backendAt(location: string, options: Partial<RocksDbStoreOptions> = {}) {
  const store = new RocksDbStore({ location, binding: 'native', ...options });
  const backend = new KeyedStateBackend({ store, keyGroupRange: ALL, snapshotNamePrefix: 'op/subtask-0' });
  return { store, backend };
}

async function restoreElsewhere(root: string, name: string, handle: KeyedStateHandle, storage: SnapshotStorage) {
  const { store, backend } = backendAt(join(root, name));
  await backend.open();
  await backend.restore([handle], ALL, storage);
  const state = await dumpState(store);
  return { store, backend, state };
}

interface Gate {
  readonly promise: Promise<void>;
  resolve(): void;
  reject(error: Error): void;
}

function newGate(): Gate {
  let resolve: () => void = () => undefined;
  let reject: (error: Error) => void = () => undefined;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

const stateBytes = (handle: KeyedStateHandle): number =>
  handle.files.filter((f) => f.kind === 'sst').reduce((sum, f) => sum + f.bytes, 0);

/** The barrier of the handle's RocksDB base: its newest metadata file (SST files may be older). */
const baseOf = (handle: KeyedStateHandle): number =>
  Math.max(...handle.files.filter((f) => f.kind === 'sst-meta').map((f) => f.checkpointId));

const deltasOf = (handle: KeyedStateHandle): number[] =>
  handle.files.filter((f) => f.kind === 'delta').map((f) => f.checkpointId);

describe('native checkpoints, changelog mode', () => {
  it('writes a delta of the changed keys per checkpoint between materialisations, not SST files', async () => {
    const root = await dirs.make('cl-delta');
    const storage = new LocalFsSnapshotStorage(join(root, 'checkpoints'));
    const { backend } = backendAt(join(root, 'db'));
    await backend.open();
    await put(backend, keys, (k) => Number(k.slice(1)));
    const first = await completedCheckpoint(backend, 1, storage);
    // The first checkpoint of a lineage is its base: the whole database.
    expect(first.format).toBe('rocksdb-checkpoint');
    expect(first.files.every((f) => f.kind === 'sst' || f.kind === 'sst-meta')).toBe(true);
    const state = stateBytes(first);
    expect(state).toBeGreaterThan(400_000);

    for (let id = 2; id <= 6; id++) {
      await put(backend, keys.slice(id * 10, id * 10 + 20), (k) => Number(k.slice(1)) + id);
      const handle = await completedCheckpoint(backend, id, storage);
      expect(handle.format).toBe('rocksdb-checkpoint');
      // [base of checkpoint 1, deltas 2…id]: nothing of RocksDB's was uploaded again.
      expect(handle.files.filter((f) => f.kind !== 'delta').every((f) => f.checkpointId === 1)).toBe(true);
      expect(deltasOf(handle)).toEqual(Array.from({ length: id - 1 }, (_, i) => i + 2));
      // 20 changed keys (a value and map entries each, ~300 B): a few KB, not the state's ~0.6 MB.
      expect(newBytesOf(handle)).toBeLessThan(20 * 2 * 400);
      expect(newBytesOf(handle)).toBeLessThan(state / 50);
    }
    await backend.close();
  });

  it('restores elsewhere from [base + deltas] exactly, with writes before, during and after a materialisation', async () => {
    const root = await dirs.make('cl-restore');
    const storage = new LocalFsSnapshotStorage(join(root, 'checkpoints'));
    // Every checkpoint with changes makes a materialisation due.
    const { store, backend } = backendAt(join(root, 'db'), { materializeDeltaBytes: 1 });
    await backend.open();
    await put(backend, keys, (k) => Number(k.slice(1)));
    await completedCheckpoint(backend, 1, storage);
    await put(backend, keys.slice(0, 300), (k) => Number(k.slice(1)) + 1); // before
    const second = await completedCheckpoint(backend, 2, storage); // starts the materialisation at barrier 2
    expect(backend.rebaseStatus?.checkpointId).toBe(2);
    expect(deltasOf(second)).toEqual([2]);
    // During: updates, deletes, new keys, map entries, while the base of barrier 2 is written.
    await put(backend, keys.slice(100, 200), () => null);
    await put(backend, keys.slice(250, 400), (k) => Number(k.slice(1)) * 3);
    await put(backend, ['new-1', 'new-2', 'new-3'], () => 42);
    await vi.waitFor(() => expect(backend.rebaseStatus?.written).toBe(true), { timeout: 20_000, interval: 10 });
    await put(backend, keys.slice(2000, 2050), () => 9);
    const third = await completedCheckpoint(backend, 3, storage);
    // The first handle that can list it: [base at 2, deltas after 2 (none completed), own delta].
    expect(baseOf(third)).toBe(2);
    expect(deltasOf(third)).toEqual([3]);
    const atThird = await dumpState(store);
    // After: more changes on the new base.
    await put(backend, keys.slice(150, 160), (k) => Number(k.slice(1)) + 5);
    await put(backend, keys.slice(2000, 2010), () => null);
    await put(backend, ['new-2'], () => null);
    const fourth = await completedCheckpoint(backend, 4, storage);
    expect(baseOf(fourth)).toBe(2);
    expect(deltasOf(fourth)).toEqual([3, 4]);
    const atFourth = await dumpState(store);
    await put(backend, keys.slice(0, 500), () => null); // after the checkpoint: must not be restored
    await backend.close();

    const three = await restoreElsewhere(root, 'r3', third, storage);
    expect(three.state).toEqual(atThird);
    await three.backend.close();
    const four = await restoreElsewhere(root, 'r4', fourth, storage);
    expect(four.state).toEqual(atFourth);
    // The restored chain goes on: its next checkpoint is a delta on the same base, and restores.
    await put(four.backend, keys.slice(700, 720), () => 1);
    const fifth = await completedCheckpoint(four.backend, 5, storage);
    expect(baseOf(fifth)).toBe(2);
    expect(deltasOf(fifth)).toEqual([3, 4, 5]);
    const atFifth = await dumpState(four.store);
    await four.backend.close();
    const five = await restoreElsewhere(root, 'r5', fifth, storage);
    expect(five.state).toEqual(atFifth);
    await five.backend.close();
  });

  it('ignores a materialisation in flight at a crash, and one that fails costs only itself', async () => {
    const root = await dirs.make('cl-crash');
    const local = new LocalFsSnapshotStorage(join(root, 'checkpoints'));
    let gate: Gate | undefined;
    const storage: SnapshotStorage = {
      write: (n, d) => local.write(n, d),
      writeChunks: (n, c) => local.writeChunks(n, c),
      read: (p) => local.read(p),
      readChunks: (p) => local.readChunks(p),
      localFile: (p) => local.localFile(p),
      publishStaged: (n, as) => local.publishStaged(n, as),
      discardStaged: (n) => local.discardStaged(n),
      async writeStaged(name, chunks) {
        await gate?.promise;
        await local.writeStaged(name, chunks);
      },
    };
    const { store, backend } = backendAt(join(root, 'db'), { materializeDeltaBytes: 1 });
    await backend.open();
    await put(backend, keys, (k) => Number(k.slice(1)));
    await completedCheckpoint(backend, 1, storage);

    // A materialisation that fails: the checkpoints around it are deltas on the old base.
    gate = newGate();
    await put(backend, keys.slice(0, 100), () => 3);
    await completedCheckpoint(backend, 2, storage);
    expect(backend.rebaseStatus?.checkpointId).toBe(2);
    gate.reject(new Error('disk full'));
    await vi.waitFor(() => expect(backend.rebaseStatus).toBeUndefined(), { timeout: 10_000, interval: 10 });
    await put(backend, keys.slice(100, 200), () => null);
    const third = await completedCheckpoint(backend, 3, storage); // starts another materialisation, at 3
    expect(baseOf(third)).toBe(1);
    expect(deltasOf(third)).toEqual([2, 3]);

    // A crash while the materialisation of barrier 3 is still being written.
    gate = newGate();
    expect(backend.rebaseStatus).toEqual({ checkpointId: 3, written: false });
    await put(backend, keys.slice(200, 300), (k) => Number(k.slice(1)) + 11);
    const fourth = await completedCheckpoint(backend, 4, storage);
    expect(baseOf(fourth)).toBe(1);
    expect(deltasOf(fourth)).toEqual([2, 3, 4]);
    const expected = await dumpState(store);
    await put(backend, keys.slice(0, 1000), () => null); // lost with the crash
    // The killed process's backend is never closed; the handle restores elsewhere without it.
    const restored = await restoreElsewhere(root, 'after-crash', fourth, storage);
    expect(restored.state).toEqual(expected);
    // Nothing the handle lists is in the staging area (where the interrupted upload would be).
    expect(fourth.files.every((f) => !f.path.includes('/staging/'))).toBe(true);
    await restored.backend.close();
    gate.resolve();
    await backend.close();
    const staging = await readdir(join(root, 'checkpoints', 'staging'), { recursive: true }).catch(() => []);
    expect(staging.filter((n) => n.includes('chk-'))).toEqual([]);
  });

  it('recovers locally from a [base + deltas] handle, and its next checkpoint extends the chain', async () => {
    const root = await dirs.make('cl-local');
    const storage = new LocalFsSnapshotStorage(join(root, 'checkpoints'));
    const location = join(root, 'db');
    const options = { localRecovery: true, materializeDeltaBytes: 1 };
    const { store, backend } = backendAt(location, options);
    await backend.open();
    await put(backend, keys, (k) => Number(k.slice(1)));
    await completedCheckpoint(backend, 1, storage);
    await put(backend, keys.slice(0, 100), () => 2);
    await completedCheckpoint(backend, 2, storage);
    await vi.waitFor(() => expect(backend.rebaseStatus?.written).toBe(true), { timeout: 20_000, interval: 10 });
    await put(backend, keys.slice(100, 150), () => null);
    const third = await completedCheckpoint(backend, 3, storage);
    expect(baseOf(third)).toBe(2);
    expect(deltasOf(third)).toEqual([3]);
    const expected = await dumpState(store);
    await put(backend, keys.slice(0, 1000), () => 7); // after the checkpoint: undone by the recovery
    await backend.close();

    const same = backendAt(location, options);
    await same.backend.open();
    await same.backend.restore([third], ALL, storage);
    expect(same.store.localRecovery?.incarnation).toBe(third.localRecovery?.incarnation);
    expect(await dumpState(same.store)).toEqual(expected);
    await put(same.backend, keys.slice(500, 510), () => 1);
    const fourth = await completedCheckpoint(same.backend, 4, storage);
    expect(deltasOf(fourth).slice(0, 1)).toEqual([3]);
    const atFourth = await dumpState(same.store);
    await same.backend.close();
    const elsewhere = await restoreElsewhere(root, 'elsewhere', fourth, storage);
    expect(elsewhere.state).toEqual(atFourth);
    await elsewhere.backend.close();
  });

  it("'sst' mode keeps every checkpoint a RocksDB checkpoint", async () => {
    const root = await dirs.make('cl-sst-mode');
    const storage = new LocalFsSnapshotStorage(join(root, 'checkpoints'));
    const { backend } = backendAt(join(root, 'db'), { nativeCheckpoints: 'sst' });
    await backend.open();
    await put(backend, keys, (k) => Number(k.slice(1)));
    await completedCheckpoint(backend, 1, storage);
    await put(backend, keys.slice(0, 20), () => 1);
    const second = await completedCheckpoint(backend, 2, storage);
    expect(deltasOf(second)).toEqual([]);
    expect(second.files.some((f) => f.kind === 'sst-meta' && f.checkpointId === 2)).toBe(true);
    await backend.close();
  });
});
