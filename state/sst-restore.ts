import { randomBytes } from 'node:crypto';
import { copyFile, link, mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { StateError } from './errors.ts';
import { inKeyGroupRange, type KeyGroupRange } from './key-groups.ts';
import type { KeyValueStore, SstCheckpoints, StoreWrite } from './key-value-store.ts';
import type { KeyedStateHandle } from './snapshot-handle.ts';
import type { SnapshotStorage } from './snapshot-storage.ts';
import { keyGroupOfStateKey } from './state-key-layout.ts';
import { replayHandles } from './restore.ts';

/** Bytes per read step when copying another subtask's entries (rescale). */
const RESCALE_BATCH_BYTES = 8 << 20;

/**
 * Restores RocksDB-checkpoint handles. One handle of exactly our key groups (a restart, or a
 * restore on another machine at the same parallelism): its files are put into a fresh directory
 * — hard-linked when the storage has them on this filesystem (SST files are immutable), copied or
 * downloaded otherwise — and that directory is opened as the store: no key is replayed. Returns
 * true then (the handle's SST files may be reused by the next checkpoint). Anything else (a
 * rescale): each handle's checkpoint is opened beside the store and its entries of our key groups
 * are written into the emptied store, key by key; returns false. A handle may end with changelog
 * deltas written after its RocksDB checkpoint (the 'changelog' mode's base): they are replayed, in
 * order, into what the checkpoint restored, for our key groups.
 */
export async function restoreRocksDbCheckpoints(
  sst: SstCheckpoints,
  store: KeyValueStore,
  handles: readonly KeyedStateHandle[],
  range: KeyGroupRange,
  storage: SnapshotStorage,
  options: { readonly maxParallelism: number; readonly batchSize: number },
): Promise<boolean> {
  for (const handle of handles) {
    if (handle.maxParallelism !== options.maxParallelism) {
      throw new StateError(
        `snapshot was taken with maxParallelism ${handle.maxParallelism} but the job runs with ${options.maxParallelism}; ` +
          'max parallelism cannot change for existing state — restore with the original value',
        { domain: 'user' },
      );
    }
  }
  const only = handles.length === 1 ? handles[0] : undefined;
  if (only !== undefined && only.files.every((f) => f.keyGroups[0] === range.start && f.keyGroups[1] === range.end)) {
    const dir = sst.scratchDir(`restore-${randomBytes(4).toString('hex')}`);
    await materialize(only, dir, storage);
    await sst.adopt(dir);
    await replayDeltas(store, only, range, storage, options);
    return true;
  }
  await store.clear();
  for (const handle of handles) {
    const groups = handle.files[0]?.keyGroups;
    if (groups === undefined || groups[1] < range.start || groups[0] > range.end) continue;
    const dir = sst.scratchDir(`rescale-${randomBytes(4).toString('hex')}`);
    try {
      await materialize(handle, dir, storage);
      let writes: StoreWrite[] = [];
      for await (const batch of sst.readDirectory(dir, RESCALE_BATCH_BYTES)) {
        for (const [key, value] of batch) {
          if (inKeyGroupRange(range, keyGroupOfStateKey(key))) writes.push({ key, value });
          if (writes.length >= options.batchSize) {
            await store.write(writes);
            writes = [];
          }
        }
      }
      await store.write(writes);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    await replayDeltas(store, handle, range, storage, options);
  }
  return false;
}

/** The changelog deltas of `handle` (after its RocksDB checkpoint), replayed for `range`. */
async function replayDeltas(
  store: KeyValueStore,
  handle: KeyedStateHandle,
  range: KeyGroupRange,
  storage: SnapshotStorage,
  options: { readonly maxParallelism: number; readonly batchSize: number },
): Promise<void> {
  const deltas = handle.files.filter((f) => f.kind === 'delta');
  if (deltas.length > 0) await replayHandles(store, [{ ...handle, files: deltas }], range, storage, options);
}

/** The handle's RocksDB checkpoint files under their RocksDB names in `dir`. */
async function materialize(handle: KeyedStateHandle, dir: string, storage: SnapshotStorage): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  for (const file of handle.files) {
    if (file.kind !== 'sst' && file.kind !== 'sst-meta') continue;
    if (file.localName === undefined || file.localName.includes('/')) {
      throw new StateError(`RocksDB checkpoint file ${file.path} has no valid local name; the handle is corrupt`);
    }
    const target = join(dir, file.localName);
    const local = await storage.localFile?.(file.path);
    if (local !== undefined) {
      // SST files are never modified, so the working copy may share them; the others RocksDB
      // rewrites or appends to (MANIFEST, WAL) are copied.
      if (file.kind === 'sst') {
        try {
          await link(local, target);
          continue;
        } catch {
          // Another filesystem: copy.
        }
      }
      await copyFile(local, target);
      continue;
    }
    const chunks = storage.readChunks?.(file.path) ?? one(storage.read(file.path));
    const out = await open(target, 'w');
    try {
      for await (const chunk of chunks) await out.write(chunk);
    } finally {
      await out.close();
    }
  }
}

async function* one(data: Promise<Buffer>): AsyncGenerator<Buffer> {
  yield await data;
}
