/**
 * Native RocksDB checkpoints (`binding: 'native'`) under checkpoint retention, through the
 * runtime's checkpoint snapshot storage. 'sst' mode: SST files are shared by consecutive
 * checkpoints until compaction replaces them. 'changelog' mode: the SST files of a
 * materialisation and the deltas after it are shared by the checkpoints that list them, until a
 * newer materialisation replaces them. Either way retention (keeping the newest checkpoint, as
 * after every completed one) deletes exactly the files no retained handle lists, and the last
 * checkpoint restores in another directory.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { deleteUnreferenced } from '../../../checkpoints/garbage-collect.ts';
import { checkpointSnapshotStorage } from '../../../runtime/state-storage.ts';
import { KeyedStateBackend } from '../../../state/keyed-state-backend.ts';
import { RocksDbStore } from '../../../state/rocksdb-store.ts';
import type { KeyedStateHandle } from '../../../state/snapshot-handle.ts';
import { TempDirs } from '../state/helpers.ts';

const dirs = new TempDirs();
afterAll(() => dirs.cleanup());

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

describe.each(['sst', 'changelog'] as const)('native RocksDB checkpoints (%s mode) under retention', (mode) => {
  it('share files between checkpoints, lose only unreferenced ones to retention, and restore', async () => {
    const root = await dirs.make('native-job');
    const storage = checkpointSnapshotStorage(root);
    const range = { start: 0, end: 127 };
    // Small memtables: every checkpoint flushes a file and compactions replace older ones.
    const store = new RocksDbStore({
      location: await dirs.make('db'),
      binding: 'native',
      writeBufferSizeBytes: 64 << 10,
      nativeCheckpoints: mode,
      // A materialisation once the deltas since the last one reach ~4 checkpoints' worth.
      materializeDeltaBytes: 400 * 320 * 4,
    });
    const backend = new KeyedStateBackend({ store, keyGroupRange: range, snapshotNamePrefix: 'job/op/subtask-0' });
    await backend.open();
    const value = backend.getValueState<string>({ name: 'v' });
    const expected = new Map<number, string>();
    const put = async (keys: readonly number[], n: number): Promise<void> => {
      await backend.prefetch(keys);
      for (const k of keys) {
        backend.setCurrentKey(k);
        const v = `${n}:${'y'.repeat(300)}`;
        value.update(v);
        expected.set(k, v);
      }
      await backend.flush();
    };
    await put(
      Array.from({ length: 5000 }, (_, i) => i),
      0,
    );
    let last: KeyedStateHandle | undefined;
    let shared = 0;
    let sharedDeltas = 0;
    const bases = new Set<number>();
    const deleted: string[] = [];
    for (let id = 1; id <= 15; id++) {
      // Changelog mode: let a running materialisation finish, so later checkpoints adopt it.
      if (backend.rebaseStatus !== undefined)
        await vi.waitFor(() => expect(backend.rebaseStatus?.written).toBe(true), { timeout: 20_000, interval: 10 });
      await put(
        Array.from({ length: 400 }, (_, i) => (i * 13 + id * 101) % 5000),
        id,
      );
      const previous = last;
      last = await backend.snapshot(id, storage);
      backend.notifyCheckpointComplete(id);
      expect(last.format).toBe('rocksdb-checkpoint');
      if (previous !== undefined) {
        const before = new Set(previous.files.map((f) => f.path));
        shared += last.files.filter((f) => f.kind === 'sst' && before.has(f.path)).length;
        sharedDeltas += last.files.filter((f) => f.kind === 'delta' && before.has(f.path)).length;
      }
      bases.add(Math.max(...last.files.filter((f) => f.kind === 'sst-meta').map((f) => f.checkpointId)));
      const keep = new Set(last.files.map((f) => join(root, f.path)));
      deleted.push(...(await deleteUnreferenced(join(root, 'shared'), keep, root)));
      // What retention left is exactly what the newest checkpoint lists.
      expect((await filesUnder(join(root, 'shared'))).sort()).toEqual([...keep].sort());
    }
    expect(shared).toBeGreaterThan(0);
    expect(deleted.some((p) => p.endsWith('.sst'))).toBe(true);
    if (mode === 'changelog') {
      // Several materialisations, deltas listed by more than one checkpoint, and superseded ones deleted.
      expect(bases.size).toBeGreaterThan(2);
      expect(sharedDeltas).toBeGreaterThan(0);
      expect(deleted.some((p) => p.includes('-delta-'))).toBe(true);
      expect(last?.files.at(-1)?.kind).toBe('delta');
    }
    await backend.close();

    const restored = new KeyedStateBackend({
      store: new RocksDbStore({ location: await dirs.make('elsewhere'), binding: 'native' }),
      keyGroupRange: range,
    });
    await restored.open();
    await restored.restore([last as KeyedStateHandle], range, storage);
    const v = restored.getValueState<string>({ name: 'v' });
    const keys = [...expected.keys()];
    await restored.prefetch(keys);
    for (const k of keys) {
      restored.setCurrentKey(k);
      expect(v.value()).toBe(expected.get(k));
    }
    await restored.close();
  });
});
