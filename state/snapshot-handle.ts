/**
 * What a keyed backend's snapshot returns and its restore accepts: the ordered chain of files
 * (one full snapshot, then deltas) that together rebuild the state of `keyGroups`.
 */
export interface SnapshotFileRef {
  readonly path: string;
  readonly kind: 'full' | 'delta';
  /** Inclusive key-group range of the subtask that wrote the file. */
  readonly keyGroups: readonly [number, number];
  readonly bytes: number;
  readonly checkpointId: number;
}

export interface KeyedStateHandle {
  /** Handle format version, for savepoints read by later code. */
  readonly version: 1;
  /** Keys hash into this many groups; restore refuses a different value. */
  readonly maxParallelism: number;
  readonly checkpointId: number;
  readonly files: readonly SnapshotFileRef[];
  /**
   * The lineage of the local working directory that took this checkpoint (RocksDB with local
   * recovery): a restart on the same machine may reopen that directory instead of replaying files.
   */
  readonly localRecovery?: { readonly incarnation: string };
}

/** Bytes written by this checkpoint alone (its last file), for metrics and tests. */
export function newBytesOf(handle: KeyedStateHandle): number {
  const last = handle.files[handle.files.length - 1];
  return last !== undefined && last.checkpointId === handle.checkpointId ? last.bytes : 0;
}
