import type { StoreEntry } from './key-value-store.ts';

/**
 * The calls `RocksDbStore` makes on a RocksDB binding. Two implementations: the `rocksdb` npm
 * package (default) and cdcflow's own addon (`state/native`, experimental), which adds native
 * checkpoints. Each is loaded on first use; never both in one process (the npm package's
 * statically linked RocksDB answered the addon's calls into librocksdb and aborted).
 */
export interface RocksDbEngine {
  open(options: RocksDbEngineOptions): Promise<void>;
  close(): Promise<void>;
  getMany(keys: readonly Buffer[]): Promise<(Buffer | undefined)[]>;
  /** One atomic batch; a `null` value deletes. */
  batch(ops: readonly EngineWrite[]): Promise<void>;
  /** Deletes `[gte, lt)`; an absent bound is open. */
  clearRange(range: EngineRange): Promise<void>;
  /** An ordered view of `range` fixed now (a RocksDB snapshot), read in batches of about `batchBytes`. */
  iterator(range: EngineRange & { readonly reverse?: boolean }, batchBytes: number): EngineIterator;
}

export interface RocksDbEngineOptions {
  readonly cacheSize: number;
  readonly writeBufferSize: number;
  readonly maxOpenFiles: number;
}

export interface EngineWrite {
  readonly key: Buffer;
  readonly value: Buffer | null;
}

export interface EngineRange {
  readonly gte?: Buffer | undefined;
  readonly lt?: Buffer | undefined;
}

export interface EngineIterator {
  /** The next entries in scan order; `finished` once the range is exhausted. */
  next(): Promise<{ entries: StoreEntry[]; finished: boolean }>;
  end(): Promise<void>;
}

/** What only the native binding offers: RocksDB checkpoints and SST ingestion. */
export interface NativeCheckpoints {
  /**
   * RocksDB's checkpoint into `dir` (must not exist): SST files hard-linked; memtables flushed
   * first unless the WAL is smaller than `walBytes` (default 0: always), which is copied then.
   */
  checkpoint(dir: string, walBytes?: number): Promise<void>;
  /** Adds SST files written elsewhere; `move` hard-links (or moves) them instead of copying. */
  ingest(files: readonly string[], move: boolean): Promise<void>;
  compactRange(range: EngineRange): Promise<void>;
}

export type RocksDbBinding = 'npm' | 'native';
