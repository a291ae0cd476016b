import type { KeyValueStore, StoreEntry, StoreScan, StoreWrite } from './key-value-store.ts';

/**
 * In-memory store for tests and small jobs. Keys are held as latin1 strings: latin1 maps every
 * byte to one UTF-16 code unit, so plain string order equals byte order and scans come out sorted
 * like RocksDB's. The sorted key list is rebuilt lazily after writes, so the usual pattern
 * (one write per batch, then many prefix scans) sorts once per batch.
 */
export class MemoryStore implements KeyValueStore {
  private readonly entries = new Map<string, Buffer>();
  private sorted: string[] | undefined;

  async open(): Promise<void> {}

  async close(): Promise<void> {}

  async getMany(keys: readonly Buffer[]): Promise<(Buffer | undefined)[]> {
    return keys.map((key) => this.entries.get(key.toString('latin1')));
  }

  async write(ops: readonly StoreWrite[]): Promise<void> {
    for (const op of ops) {
      const key = op.key.toString('latin1');
      // Copy so a caller reusing its buffer cannot change what we stored.
      if (op.value === null) this.entries.delete(key);
      else this.entries.set(key, Buffer.from(op.value));
    }
    if (ops.length > 0) this.sorted = undefined;
  }

  async *scan(prefix: Buffer): AsyncIterable<[Buffer, Buffer]> {
    // Collect first: the view is fixed at scan start, as with a RocksDB iterator.
    for (const [key, value] of this.matches(prefix)) yield [Buffer.from(key, 'latin1'), value];
  }

  scanBatches(prefix: Buffer, batchBytes: number): StoreScan {
    // The view is a copy of the entry list, taken now: values are never mutated in place (a write
    // replaces the Buffer), so later writes cannot reach it. One array of references per scan.
    const matches = this.matches(prefix);
    const batches = (async function* batches() {
      let batch: StoreEntry[] = [];
      let bytes = 0;
      for (const [key, value] of matches) {
        batch.push([Buffer.from(key, 'latin1'), value]);
        bytes += key.length + value.length;
        if (bytes >= batchBytes) {
          yield batch;
          batch = [];
          bytes = 0;
        }
      }
      if (batch.length > 0) yield batch;
    })();
    return {
      [Symbol.asyncIterator]: () => batches,
      close: async () => void (await batches.return(undefined)),
    };
  }

  private matches(prefix: Buffer): [string, Buffer][] {
    const start = prefix.toString('latin1');
    const keys = this.sortedKeys();
    const matches: [string, Buffer][] = [];
    for (let i = lowerBound(keys, start); i < keys.length; i++) {
      const key = keys[i] as string;
      if (!key.startsWith(start)) break;
      matches.push([key, this.entries.get(key) as Buffer]);
    }
    return matches;
  }

  async clear(): Promise<void> {
    this.entries.clear();
    this.sorted = undefined;
  }

  /** Number of entries; for tests and metrics. */
  get size(): number {
    return this.entries.size;
  }

  private sortedKeys(): string[] {
    this.sorted ??= [...this.entries.keys()].sort();
    return this.sorted;
  }
}

/** Index of the first key >= `target`. */
function lowerBound(keys: readonly string[], target: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((keys[mid] as string) < target) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
