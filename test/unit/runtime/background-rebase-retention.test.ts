/**
 * A background rebase may take longer than many checkpoints, and checkpoint retention deletes
 * every file under `shared/` that no retained checkpoint lists. Through the runtime's checkpoint
 * snapshot storage, with retention run after every completed checkpoint (as the coordinator does,
 * keeping only the newest), the rebase must survive in staging, be published by the checkpoint
 * that adopts it, and every retained checkpoint must restore exactly.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { deleteUnreferenced } from '../../../checkpoints/garbage-collect.ts';
import { checkpointSnapshotStorage } from '../../../runtime/state-storage.ts';
import { KeyedStateBackend } from '../../../state/keyed-state-backend.ts';
import type { KeyedStateHandle } from '../../../state/snapshot-handle.ts';
import { makeStore, TempDirs, type StoreKind } from '../state/helpers.ts';

const dirs = new TempDirs();
afterAll(() => dirs.cleanup());

describe.each<StoreKind>(['memory', 'rocksdb'])('background rebase under checkpoint retention (%s)', (kind) => {
  it('is staged out of retention’s reach, adopted, and every retained checkpoint restores', async () => {
    const root = await dirs.make('job');
    const storage = checkpointSnapshotStorage(root);
    const backend = new KeyedStateBackend({
      store: await makeStore(kind, dirs),
      keyGroupRange: { start: 0, end: 127 },
      maxDeltaChainLength: 3,
    });
    await backend.open();
    const value = backend.getValueState<number>({ name: 'v' });
    const expected = new Map<number, number>();
    const put = async (keys: readonly number[], n: number): Promise<void> => {
      await backend.prefetch(keys);
      for (const k of keys) {
        backend.setCurrentKey(k);
        value.update(n);
        expected.set(k, n);
      }
      await backend.flush();
    };
    await put(
      Array.from({ length: 2000 }, (_, i) => i),
      0,
    );
    let last: KeyedStateHandle | undefined;
    let adopted = 0;
    for (let id = 1; id <= 12; id++) {
      await put([id, id + 100, id + 1000], id);
      last = await backend.snapshot(id, storage);
      backend.notifyCheckpointComplete(id);
      // Retention keeping the newest checkpoint: everything in shared/ it does not list goes.
      await deleteUnreferenced(join(root, 'shared'), new Set(last.files.map((f) => join(root, f.path))), root);
      if (last.files[0]?.checkpointId !== id && last.files[0]?.kind === 'full' && last.files[0].checkpointId > 1)
        adopted += 1;
      const rebase = backend.rebaseStatus;
      if (rebase !== undefined && !rebase.written)
        await vi.waitFor(() => expect(backend.rebaseStatus?.written).toBe(true), { timeout: 10_000, interval: 10 });
      expect(last.files.at(-1)?.kind).toBe(id === 1 ? 'full' : 'delta');
    }
    expect(adopted).toBeGreaterThan(0);
    expect(last?.files.length).toBeLessThanOrEqual(4);
    await backend.close();

    const restored = new KeyedStateBackend({
      store: await makeStore(kind, dirs),
      keyGroupRange: { start: 0, end: 127 },
    });
    await restored.open();
    await restored.restore([last as KeyedStateHandle], { start: 0, end: 127 }, storage);
    const v = restored.getValueState<number>({ name: 'v' });
    const keys = [...expected.keys()];
    await restored.prefetch(keys);
    for (const k of keys) {
      restored.setCurrentKey(k);
      expect(v.value()).toBe(expected.get(k));
    }
    await restored.close();
  });
});
