/**
 * The raw byte store under keyed state. Both backends (RocksDB, memory) implement it and pass
 * the same contract suite (`test/unit/state/store-contract.ts`), so keyed state never needs to
 * know which one it runs on.
 */
export interface KeyValueStore {
  open(): Promise<void>;
  close(): Promise<void>;
  /** One value per key, in key order; `undefined` where the key is absent. */
  getMany(keys: readonly Buffer[]): Promise<(Buffer | undefined)[]>;
  /**
   * Applies all ops atomically; a `null` value deletes the key. `priors`, aligned with `ops`, is
   * what each key held before, when the caller knows it (`null`: absent; `undefined`: not known):
   * local recovery's undo record then needs no read of those keys.
   */
  write(ops: readonly StoreWrite[], priors?: readonly StorePrior[]): Promise<void>;
  /** Entries whose key starts with `prefix`, in ascending byte order. An empty prefix scans all. */
  scan(prefix: Buffer): AsyncIterable<[Buffer, Buffer]>;
  /**
   * The same entries as `scan`, in arrays of about `batchBytes` (for full snapshots: one async
   * step per batch instead of per entry). The view is fixed when this is called, not at the
   * first `next()`, so a caller may write right after calling it (a full snapshot's write runs
   * while processing goes on). Iterate it to the end or call `close()`: an open RocksDB scan pins
   * its snapshot of the database.
   */
  scanBatches(prefix: Buffer, batchBytes: number): StoreScan;
  /** Removes every entry. */
  clear(): Promise<void>;
  /** Present when the store keeps its directory for a restart on the same machine (RocksDB). */
  readonly localRecovery?: LocalRecovery | undefined;
  /** Present when the store can take RocksDB checkpoints (native binding): snapshots are SST files. */
  readonly sstCheckpoints?: SstCheckpoints | undefined;
}

export type NativeCheckpointMode = 'changelog' | 'sst';

/**
 * RocksDB's own checkpoints: the database at one instant as a directory of hard-linked SST files
 * plus MANIFEST/CURRENT/OPTIONS — what Flink's incremental checkpoints upload, and what a restore
 * opens instead of replaying keys.
 */
export interface SstCheckpoints {
  /**
   * How keyed-state checkpoints use them. 'changelog': every checkpoint writes a delta of the
   * changed keys; a RocksDB checkpoint (materialisation) is taken in the background every
   * `materializeIntervalMs` or once the deltas since the last one reach `materializeDeltaBytes`,
   * and a checkpoint's handle is that base plus the deltas after it. 'sst': every checkpoint is
   * a RocksDB checkpoint.
   */
  readonly mode: NativeCheckpointMode;
  readonly materializeIntervalMs: number;
  readonly materializeDeltaBytes: number;
  /** A directory beside the database (same filesystem, so hard links work) for scratch work. */
  scratchDir(name: string): string;
  /** The database as of now into `dir` (must not exist); memtables are flushed first. */
  checkpoint(dir: string): Promise<void>;
  /** Replaces the store's database with the one in `dir` (moved, not copied) and opens it. */
  adopt(dir: string): Promise<void>;
  /** Every entry of the database in `dir`, in batches, without touching the store (rescale). */
  readDirectory(dir: string, batchBytes: number): AsyncIterable<readonly StoreEntry[]>;
}

/**
 * Flink's local recovery for a store that outlives its process: the working directory of the
 * last run is kept, and a restore to a checkpoint this store's lineage took opens it and undoes
 * the writes made after that checkpoint's barrier, instead of replaying the checkpoint's files.
 */
export interface LocalRecovery {
  /** This store's lineage (new on open and on `clear`); checkpoint handles record it. */
  readonly incarnation: string;
  /** At a barrier, after the flush: every write so far belongs to `checkpointId`. */
  markBarrier(checkpointId: number): Promise<void>;
  /** The checkpoint completed: what only a restore to an older one needed is dropped (in the background). */
  checkpointCompleted(checkpointId: number): void;
  /**
   * Makes the store the state at `checkpointId`'s barrier from the previous run's directory, if
   * it belongs to `incarnation`, was written since this machine booted and still has that mark;
   * otherwise leaves the store empty and returns false (the caller replays the checkpoint).
   */
  recover(incarnation: string, checkpointId: number): Promise<boolean>;
}

export type StoreEntry = readonly [key: Buffer, value: Buffer];

/** A fixed view of a key range, read in batches; `close()` releases it also if it was never read. */
export interface StoreScan extends AsyncIterable<readonly StoreEntry[]> {
  close(): Promise<void>;
}

/** A key's value before a write: the bytes, `null` when absent, `undefined` when not known. */
export type StorePrior = Buffer | null | undefined;

export interface StoreWrite {
  readonly key: Buffer;
  readonly value: Buffer | null;
}

/**
 * Smallest key greater than every key starting with `prefix`, or undefined when no such key
 * exists (empty prefix or all 0xff) — the exclusive upper bound of a prefix scan.
 */
export function prefixUpperBound(prefix: Buffer): Buffer | undefined {
  for (let i = prefix.length - 1; i >= 0; i--) {
    const byte = prefix[i] as number;
    if (byte !== 0xff) {
      const bound = Buffer.from(prefix.subarray(0, i + 1));
      bound[i] = byte + 1;
      return bound;
    }
  }
  return undefined;
}
