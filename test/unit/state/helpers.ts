import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KeyGroupRange } from '../../../state/key-groups.ts';
import type { KeyValueStore } from '../../../state/key-value-store.ts';
import type { KeyedStateBackend } from '../../../state/keyed-state-backend.ts';
import { MemoryStore } from '../../../state/memory-store.ts';
import { RocksDbStore } from '../../../state/rocksdb-store.ts';
import type { KeyedStateHandle } from '../../../state/snapshot-handle.ts';
import type { SnapshotStorage } from '../../../state/snapshot-storage.ts';
import { keyGroupOfStateKey } from '../../../state/state-key-layout.ts';

/** Temp directories created by a test file; remove them in afterAll. */
export class TempDirs {
  private readonly dirs: string[] = [];

  async make(label: string): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), `cdcflow-state-${label}-`));
    this.dirs.push(dir);
    return dir;
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  }
}

export type StoreKind = 'memory' | 'rocksdb';

export async function makeStore(kind: StoreKind, dirs: TempDirs): Promise<KeyValueStore> {
  return kind === 'memory' ? new MemoryStore() : new RocksDbStore({ location: await dirs.make('db') });
}

/** A settable clock for TTL tests. */
export function manualClock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

/**
 * Writes value state `v` and map state `m` (two entries per key) for `keys`, then flushes; a `null`
 * value clears both. The state the restore and recovery tests checkpoint and compare.
 */
export async function putValueAndMap(
  backend: KeyedStateBackend,
  keys: readonly string[],
  value: (key: string) => number | null,
): Promise<void> {
  const v = backend.getValueState<number>({ name: 'v' });
  const m = backend.getMapState<string, number>({ name: 'm' });
  await backend.prefetch(keys);
  for (const key of keys) {
    backend.setCurrentKey(key);
    const x = value(key);
    if (x === null) {
      v.clear();
      m.clear();
    } else {
      v.update(x);
      m.put(`e${x % 3}`, x);
      m.put(`f${x % 5}`, -x);
    }
  }
  await backend.flush();
}

/**
 * Every state entry of `store` (in `range`, default all), as hex pairs: the reference a restore
 * must equal. Local recovery's bookkeeping is not included: scans stop below it.
 */
export async function dumpState(store: KeyValueStore, range?: KeyGroupRange): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const [key, value] of store.scan(Buffer.alloc(0))) {
    const group = keyGroupOfStateKey(key);
    if (range === undefined || (group >= range.start && group <= range.end))
      out.set(key.toString('hex'), value.toString('hex'));
  }
  return out;
}

/** Snapshot `id` and complete it, as the coordinator would once every task acknowledged. */
export async function completedCheckpoint(
  backend: KeyedStateBackend,
  id: number,
  storage: SnapshotStorage,
): Promise<KeyedStateHandle> {
  const handle = await backend.snapshot(id, storage);
  backend.notifyCheckpointComplete(id);
  return handle;
}
