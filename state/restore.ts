import { StateError } from './errors.ts';
import type { KeyGroupRange } from './key-groups.ts';
import type { KeyValueStore } from './key-value-store.ts';
import type { KeyedStateHandle, SnapshotFileRef } from './snapshot-handle.ts';
import { decodeSnapshotChunks } from './snapshot-stream-reader.ts';
import type { SnapshotStorage } from './snapshot-storage.ts';

/** Bytes of writes handed to the store at once while restoring, whatever the entry count. */
const RESTORE_BATCH_BYTES = 16 << 20;

/**
 * Replays handles into an empty store: per handle its chain in order (full, then deltas), keeping
 * only key groups in `range`. Handles of different subtasks cover disjoint key groups, so their
 * order does not matter — that is what makes rescaling a filter rather than a merge.
 */
export async function replayHandles(
  store: KeyValueStore,
  handles: readonly KeyedStateHandle[],
  range: KeyGroupRange,
  storage: SnapshotStorage,
  options: { readonly maxParallelism: number; readonly batchSize: number },
): Promise<number> {
  let applied = 0;
  for (const handle of handles) {
    if (handle.maxParallelism !== options.maxParallelism) {
      throw new StateError(
        `snapshot was taken with maxParallelism ${handle.maxParallelism} but the job runs with ${options.maxParallelism}; ` +
          'max parallelism cannot change for existing state — restore with the original value',
        { domain: 'user' },
      );
    }
    for (const file of handle.files) {
      // A file's key groups may be narrower than what it holds (a chain continued after rescaling
      // lists the old subtasks' files with their share of groups): read only that share.
      const wanted = intersect(range, file.keyGroups);
      if (wanted === undefined) continue;
      // Streamed: a file may exceed memory and the 2 GiB a single read can return.
      const chunks = storage.readChunks?.(file.path) ?? wholeFile(storage, file.path);
      const limits = { maxEntries: options.batchSize, maxBytes: RESTORE_BATCH_BYTES };
      for await (const batch of decodeSnapshotChunks(chunks, wanted, file.path, limits)) {
        await store.write(batch);
        applied += batch.length;
      }
    }
  }
  return applied;
}

/** A storage without streaming reads: its `read` is the only chunk. */
async function* wholeFile(storage: SnapshotStorage, path: string): AsyncGenerator<Buffer> {
  yield await storage.read(path);
}

/**
 * The chain a restored backend keeps building deltas on, so its first checkpoint is a delta
 * whatever the parallelism before: every restored file that holds some of our key groups, its
 * `keyGroups` narrowed to them. A later restore reads each file only for the groups its ref
 * names, so two subtasks listing the same old file never both restore its groups (a later
 * subtask's copy of a group would undo the other's deltas). Full files first: a chain starts
 * with a full, and moving one ahead of another subtask's deltas is harmless — files of different
 * old chains hold disjoint groups, and no chain has a delta of a group before its full.
 */
export function reusableChain(
  handles: readonly KeyedStateHandle[],
  range: KeyGroupRange,
): { files: readonly SnapshotFileRef[]; checkpointId: number } {
  const only = handles.length === 1 ? handles[0] : undefined;
  if (only !== undefined && only.files.every((f) => f.keyGroups[0] >= range.start && f.keyGroups[1] <= range.end)) {
    return { files: only.files, checkpointId: only.checkpointId };
  }
  const files: SnapshotFileRef[] = [];
  for (const handle of handles) {
    for (const file of handle.files) {
      const share = intersect(range, file.keyGroups);
      if (share !== undefined) files.push({ ...file, keyGroups: [share.start, share.end] });
    }
  }
  if (files.length === 0) return { files: [], checkpointId: -1 };
  const ordered = [...files.filter((f) => f.kind === 'full'), ...files.filter((f) => f.kind !== 'full')];
  return { files: ordered, checkpointId: Math.max(...handles.map((h) => h.checkpointId)) };
}

/** The key groups in both, or undefined if none. */
function intersect(range: KeyGroupRange, groups: readonly [number, number]): KeyGroupRange | undefined {
  const start = Math.max(range.start, groups[0]);
  const end = Math.min(range.end, groups[1]);
  return start <= end ? { start, end } : undefined;
}
