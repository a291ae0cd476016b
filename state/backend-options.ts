import { StateError } from './errors.ts';
import { DEFAULT_MAX_PARALLELISM, MAX_MAX_PARALLELISM, type KeyGroupRange } from './key-groups.ts';
import type { KeyValueStore } from './key-value-store.ts';
import type { SnapshotStorage } from './snapshot-storage.ts';

export interface KeyedStateBackendOptions {
  /** The raw store; the backend opens and closes it. */
  readonly store: KeyValueStore;
  /** Key groups this subtask owns; keys outside it are rejected (they were routed wrongly). */
  readonly keyGroupRange: KeyGroupRange;
  /** @default DEFAULT_MAX_PARALLELISM (128) */
  readonly maxParallelism?: number;
  /** Clean keys kept in the batch cache between batches (LRU). @default 10_000 */
  readonly maxCachedKeys?: number;
  /** Time source for TTL. @default Date.now */
  readonly clock?: () => number;
  /** Prefix of snapshot file names, unique per operator subtask. @default 'state' */
  readonly snapshotNamePrefix?: string;
  /** Deltas after a full snapshot before the next snapshot is full again. @default 10 */
  readonly maxDeltaChainLength?: number;
  /** Write a full snapshot once chain deltas + new delta exceed this × the full's bytes. @default 1 */
  readonly maxDeltaToFullRatio?: number;
  /**
   * How a chain past those bounds is compacted. 'background': checkpoints stay deltas while a full
   * file of the state at one barrier is written beside them and later becomes the chain's start
   * (needs a storage with staged writes; the runtime's and `LocalFsSnapshotStorage` have them).
   * 'inline': the checkpoint itself is a full snapshot, as long as the state takes to write.
   * @default 'background'
   */
  readonly snapshotCompaction?: 'background' | 'inline';
  /** Entries per store write while restoring. @default 10_000 */
  readonly restoreBatchSize?: number;
  /** Storage `restore` reads from when none is passed. @default a local-filesystem reader */
  readonly snapshotStorage?: SnapshotStorage;
}

export type ResolvedBackendOptions = Required<Omit<KeyedStateBackendOptions, 'snapshotStorage'>> & {
  readonly snapshotStorage: SnapshotStorage | undefined;
};

function positiveInt(name: string, value: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new StateError(`${name} must be an integer in 1..${max}, got ${value}`, { domain: 'user' });
  }
  return value;
}

/** Validates options and fills defaults. */
export function resolveBackendOptions(options: KeyedStateBackendOptions): ResolvedBackendOptions {
  const maxParallelism = positiveInt(
    'maxParallelism',
    options.maxParallelism ?? DEFAULT_MAX_PARALLELISM,
    MAX_MAX_PARALLELISM,
  );
  const { start, end } = options.keyGroupRange;
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end < start || end >= maxParallelism) {
    throw new StateError(`keyGroupRange [${start}, ${end}] must lie within 0..${maxParallelism - 1}`, {
      domain: 'user',
    });
  }
  const ratio = options.maxDeltaToFullRatio ?? 1;
  if (!(ratio > 0)) throw new StateError(`maxDeltaToFullRatio must be > 0, got ${ratio}`, { domain: 'user' });
  return {
    store: options.store,
    keyGroupRange: { start, end },
    maxParallelism,
    maxCachedKeys: positiveInt('maxCachedKeys', options.maxCachedKeys ?? 10_000),
    clock: options.clock ?? Date.now,
    snapshotNamePrefix: options.snapshotNamePrefix ?? 'state',
    maxDeltaChainLength: positiveInt('maxDeltaChainLength', options.maxDeltaChainLength ?? 10),
    maxDeltaToFullRatio: ratio,
    snapshotCompaction: options.snapshotCompaction ?? 'background',
    restoreBatchSize: positiveInt('restoreBatchSize', options.restoreBatchSize ?? 10_000),
    snapshotStorage: options.snapshotStorage,
  };
}
