/**
 * What a keyed backend's snapshot returns and its restore accepts: the ordered chain of files
 * (one full snapshot, then deltas) that together rebuild the state of `keyGroups`.
 */
export interface SnapshotFileRef {
  readonly path: string;
  /**
   * 'full'/'delta': cdcflow's entry files (CDST), replayed key by key. 'sst'/'sst-meta': a RocksDB
   * checkpoint (native binding): SST files, immutable and shared by later checkpoints while the
   * database still uses them, and the checkpoint's own MANIFEST/CURRENT/OPTIONS/WAL.
   */
  readonly kind: 'full' | 'delta' | 'sst' | 'sst-meta';
  /** For 'sst'/'sst-meta': the file's name in the RocksDB directory. */
  readonly localName?: string;
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
  /** 'rocksdb-checkpoint': `files` are a RocksDB checkpoint (native binding); absent: CDST files. */
  readonly format?: 'rocksdb-checkpoint';
}

/** True for a handle whose files are a RocksDB checkpoint, restored by opening them. */
export function isRocksDbCheckpoint(handle: KeyedStateHandle): boolean {
  return handle.format === 'rocksdb-checkpoint';
}

/** Bytes written by this checkpoint alone (its last file), for metrics and tests. */
export function newBytesOf(handle: KeyedStateHandle): number {
  if (isRocksDbCheckpoint(handle)) {
    return handle.files.reduce((sum, f) => sum + (f.checkpointId === handle.checkpointId ? f.bytes : 0), 0);
  }
  const last = handle.files[handle.files.length - 1];
  return last !== undefined && last.checkpointId === handle.checkpointId ? last.bytes : 0;
}
