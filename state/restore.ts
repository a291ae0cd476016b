import { StateError } from './errors.ts';
import { rangesOverlap, type KeyGroupRange } from './key-groups.ts';
import type { KeyValueStore, StoreWrite } from './key-value-store.ts';
import type { KeyedStateHandle, SnapshotFileRef } from './snapshot-handle.ts';
import { decodeSnapshotChunks } from './snapshot-stream-reader.ts';
import type { SnapshotStorage } from './snapshot-storage.ts';

/** Bytes of writes handed to the store at once while restoring, whatever the entry count. */
const RESTORE_BATCH_BYTES = 16 << 20;
/**
 * Store writes in flight while the next batch is parsed. RocksDB's writes run in libuv's pool,
 * so parsing (main thread) and writing overlap instead of taking turns.
 */
const WRITES_IN_FLIGHT = 2;

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
      if (!rangesOverlap(range, { start: file.keyGroups[0], end: file.keyGroups[1] })) continue;
      // Streamed: a file may exceed memory and the 2 GiB a single read can return.
      const chunks = storage.readChunks?.(file.path) ?? wholeFile(storage, file.path);
      const limits = { maxEntries: options.batchSize, maxBytes: RESTORE_BATCH_BYTES };
      const writes = new WriteQueue(store, WRITES_IN_FLIGHT);
      try {
        for await (const batch of decodeSnapshotChunks(chunks, range, file.path, limits)) {
          await writes.push(batch);
          applied += batch.length;
        }
      } finally {
        // Drained at every file: writes in flight together may land in any order, which is fine
        // within a file (each key appears once) but not across files (a later delta overrides).
        await writes.drain();
      }
    }
  }
  return applied;
}

/** Up to `depth` store writes running at once; the first failure is thrown by `push` or `drain`. */
class WriteQueue {
  private readonly running: Promise<void>[] = [];
  constructor(
    private readonly store: KeyValueStore,
    private readonly depth: number,
  ) {}

  async push(batch: readonly StoreWrite[]): Promise<void> {
    if (this.running.length >= this.depth) await this.running.shift();
    const write = this.store.write(batch);
    // Handled here, thrown where awaited: a rejection while another write is awaited is not lost.
    write.catch(() => undefined);
    this.running.push(write);
  }

  async drain(): Promise<void> {
    const all = this.running.splice(0);
    await Promise.all(all);
  }
}

/** A storage without streaming reads: its `read` is the only chunk. */
async function* wholeFile(storage: SnapshotStorage, path: string): AsyncGenerator<Buffer> {
  yield await storage.read(path);
}

/**
 * The chain a restored backend can keep building deltas on: only when one handle was restored
 * and all its files lie inside our range. Otherwise (rescaling) the next snapshot must be full,
 * or two subtasks' chains would both claim the same key groups.
 */
export function reusableChain(
  handles: readonly KeyedStateHandle[],
  range: KeyGroupRange,
): { files: readonly SnapshotFileRef[]; checkpointId: number } {
  const only = handles.length === 1 ? handles[0] : undefined;
  if (only === undefined) return { files: [], checkpointId: -1 };
  const inside = only.files.every((f) => f.keyGroups[0] >= range.start && f.keyGroups[1] <= range.end);
  return inside ? { files: only.files, checkpointId: only.checkpointId } : { files: [], checkpointId: -1 };
}
