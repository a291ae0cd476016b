import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KeyedStateBackend } from '../../../state/keyed-state-backend.ts';
import { MemoryStore } from '../../../state/memory-store.ts';
import { RocksDbStore } from '../../../state/rocksdb-store.ts';
import type { KeyedStateHandle } from '../../../state/snapshot-handle.ts';
import { LocalFsSnapshotStorage } from '../../../state/snapshot-storage.ts';
import { UpsertTable } from '../../../state/upsert-table.ts';
import { streamPosition } from '../../../state/change-position.ts';
import { putValueAndMap, TempDirs } from './helpers.ts';

const dirs = new TempDirs();
afterAll(() => dirs.cleanup());

const ALL = { start: 0, end: 127 } as const;

async function open(
  location: string,
  localRecovery = true,
  range: { start: number; end: number } = ALL,
): Promise<KeyedStateBackend> {
  const backend = new KeyedStateBackend({ store: new RocksDbStore({ location, localRecovery }), keyGroupRange: range });
  await backend.open();
  return backend;
}

async function read(backend: KeyedStateBackend, keys: readonly string[]): Promise<Record<string, unknown>> {
  const v = backend.getValueState<number>({ name: 'v' });
  const m = backend.getMapState<string, number>({ name: 'm' });
  await backend.prefetch(keys);
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    backend.setCurrentKey(key);
    out[key] = [v.value(), Object.fromEntries(m.entries())];
  }
  return out;
}

const keys = Array.from({ length: 300 }, (_, i) => `k${i}`);

/** A run: checkpoint 1 completed, then updates, deletes and new keys, barrier 2 (never completed), more writes. */
async function run(
  location: string,
  storage: LocalFsSnapshotStorage,
): Promise<{ handle: KeyedStateHandle; expected: Record<string, unknown> }> {
  const backend = await open(location);
  await putValueAndMap(backend, keys.slice(0, 200), (k) => Number(k.slice(1)));
  await putValueAndMap(backend, keys.slice(0, 50), (k) => Number(k.slice(1)) + 1000);
  const handle = await backend.snapshot(1, storage);
  backend.notifyCheckpointComplete(1);
  const expected = await read(backend, keys);
  await putValueAndMap(backend, keys.slice(0, 100), (k) => Number(k.slice(1)) + 2000);
  await putValueAndMap(backend, keys.slice(100, 150), () => null);
  await putValueAndMap(backend, keys.slice(200), (k) => Number(k.slice(1)));
  await backend.beginSnapshot(2, storage).then(({ done }) => done.catch(() => undefined));
  await putValueAndMap(backend, keys.slice(0, 20), () => 7);
  await putValueAndMap(backend, keys.slice(0, 20), () => null);
  // Closing writes nothing a killed process would not have left: every write above reached RocksDB's log.
  await backend.close();
  return { handle, expected };
}

describe('local recovery of the RocksDB working directory', () => {
  it('a restart restores the last run’s directory to the checkpoint without reading its files', async () => {
    const root = await dirs.make('local-recovery');
    const storage = new LocalFsSnapshotStorage(join(root, 'chk'));
    const location = join(root, 'db');
    const { handle, expected } = await run(location, storage);
    expect(handle.localRecovery?.incarnation).toMatch(/[0-9a-f-]{36}/);

    // Without the files a replay would fail: the state must come from the kept directory.
    await rm(join(root, 'chk'), { recursive: true, force: true });
    const again = await open(location);
    await again.restore([handle], ALL, storage);
    expect(await read(again, keys)).toEqual(expected);

    // It goes on as after any restore: the next delta builds on the restored checkpoint's chain.
    await putValueAndMap(again, keys.slice(0, 10), () => 5);
    const next = await again.snapshot(handle.checkpointId + 1, new LocalFsSnapshotStorage(join(root, 'chk')));
    expect(next.files.map((f) => f.kind)).toEqual(['full', 'delta']);
    const after = await read(again, keys);
    await again.close();

    // The recovered directory is a lineage of its own again: a second kill and restart works too.
    const third = await open(location);
    await third.restore([next], ALL, storage);
    expect(await read(third, keys)).toEqual(after);
    await third.close();
  });

  it('replays the files when the directory cannot prove it holds the checkpoint', async () => {
    const root = await dirs.make('local-recovery-fallback');
    const storage = new LocalFsSnapshotStorage(join(root, 'chk'));
    const location = join(root, 'db');
    const { handle, expected } = await run(location, storage);

    // Another lineage: the handle names an incarnation this directory was not written by.
    const foreign: KeyedStateHandle = {
      ...handle,
      localRecovery: { incarnation: '00000000-0000-0000-0000-000000000000' },
    };
    const first = await open(location);
    await first.restore([foreign], ALL, storage);
    expect(await read(first, keys)).toEqual(expected);
    await first.close();

    // A checkpoint older than the directory's last completed one: its mark was dropped.
    const older = await open(location);
    await older.restore([handle], ALL, storage);
    const h1 = await older.snapshot(5, storage);
    older.notifyCheckpointComplete(5);
    await putValueAndMap(older, keys, () => 1);
    const h2 = await older.snapshot(6, storage);
    older.notifyCheckpointComplete(6);
    await older.close();
    const reopened = await open(location);
    await reopened.restore([h1], ALL, storage);
    expect(await read(reopened, keys)).toEqual(expected);
    await reopened.close();

    // Rescaled: the handle covers other key groups than the restoring subtask.
    const half = { start: 0, end: 63 };
    const rescaled = await open(location, true, half);
    await rescaled.restore([h2], half, storage);
    const reference = new KeyedStateBackend({ store: new MemoryStore(), keyGroupRange: half });
    await reference.open();
    await reference.restore([h2], half, storage);
    reference.getValueState<number>({ name: 'v' });
    rescaled.getValueState<number>({ name: 'v' });
    const collect = async (b: KeyedStateBackend): Promise<string[]> => {
      const out: string[] = [];
      for await (const k of b.keys('v')) out.push(k as string);
      return out.sort();
    };
    const inHalf = await collect(reference);
    expect(inHalf.length).toBeGreaterThan(0);
    expect(inHalf.length).toBeLessThan(keys.length);
    expect(await collect(rescaled)).toEqual(inHalf);
    await rescaled.close();
    await reference.close();
  });

  it('undo records built from the cache (a lazily decoding serializer: the upsert table) rewind exactly', async () => {
    const root = await dirs.make('local-recovery-upsert');
    const storage = new LocalFsSnapshotStorage(join(root, 'chk'));
    const location = join(root, 'db');
    let lsn = 0;
    const write = async (b: KeyedStateBackend, ks: readonly string[], row: (k: string) => unknown): Promise<void> => {
      const table = new UpsertTable<unknown>(b);
      await b.withKeys(ks, () => {
        for (const k of ks) {
          const r = row(k);
          lsn += 1;
          table.apply(k, { op: r === null ? 'd' : 'u', position: streamPosition(lsn, lsn), row: r });
        }
      });
    };
    const rows = async (b: KeyedStateBackend): Promise<Record<string, unknown>> => {
      const table = new UpsertTable<unknown>(b);
      return b.withKeys(keys, () => Object.fromEntries(keys.map((k) => [k, table.get(k)])));
    };
    const backend = await open(location);
    await write(backend, keys.slice(0, 200), (k) => ({ k, v: 1 }));
    await write(backend, keys.slice(0, 50), (k) => ({ k, v: 2 }));
    const handle = await backend.snapshot(1, storage);
    backend.notifyCheckpointComplete(1);
    const expected = await rows(backend);
    await write(backend, keys.slice(0, 100), (k) => ({ k, v: 3 }));
    await write(backend, keys.slice(100, 150), () => null);
    await write(backend, keys.slice(200), (k) => ({ k, v: 4 }));
    await backend.beginSnapshot(2, storage).then(({ done }) => done.catch(() => undefined));
    await write(backend, keys.slice(0, 20), (k) => ({ k, v: 5 }));
    await write(backend, keys.slice(0, 20), () => null);
    await backend.close();

    await rm(join(root, 'chk'), { recursive: true, force: true });
    const again = await open(location);
    await again.restore([handle], ALL, storage);
    expect(await rows(again)).toEqual(expected);
    await again.close();
  });

  it('a start without restore begins empty, and the old directory is dropped at the first barrier', async () => {
    const root = await dirs.make('local-recovery-fresh');
    const storage = new LocalFsSnapshotStorage(join(root, 'chk'));
    const location = join(root, 'db');
    await run(location, storage);
    const fresh = await open(location);
    expect(await read(fresh, keys.slice(0, 3))).toEqual({
      k0: [undefined, {}],
      k1: [undefined, {}],
      k2: [undefined, {}],
    });
    await fresh.snapshot(1, storage);
    await fresh.close();
    const { stat } = await import('node:fs/promises');
    await expect(stat(`${location}.recovery`)).rejects.toThrow(/ENOENT/);
  });
});
