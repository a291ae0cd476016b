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
  /** Applies all ops atomically; a `null` value deletes the key. */
  write(ops: readonly StoreWrite[]): Promise<void>;
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
}

export type StoreEntry = readonly [key: Buffer, value: Buffer];

/** A fixed view of a key range, read in batches; `close()` releases it also if it was never read. */
export interface StoreScan extends AsyncIterable<readonly StoreEntry[]> {
  close(): Promise<void>;
}

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
