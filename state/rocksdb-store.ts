import { createRequire } from 'node:module';
import { mkdir } from 'node:fs/promises';
import { StateError } from './errors.ts';
import { prefixUpperBound, type KeyValueStore, type StoreEntry, type StoreScan, type StoreWrite } from './key-value-store.ts';

/** The slice of the `rocksdb` npm package (abstract-leveldown callback API) we use. */
type Callback<T = void> = (err: Error | null | undefined, value?: T) => void;

interface NativeIterator {
  next(cb: (err: Error | null | undefined, key?: Buffer, value?: Buffer) => void): void;
  end(cb: Callback): void;
  /** The binding's handle (rocksdb 5.x `iterator.js`), for `iterator_next`. */
  readonly context: unknown;
}

/**
 * The binding's own batched step: up to 1000 entries or `highWaterMark` bytes per call, as an
 * array in descending order (`[..., v2, k2, v1, k1]`, made for `pop()`); `finished` once the
 * range is exhausted. The package's iterator wraps it with one `process.nextTick` per entry,
 * which is what a full snapshot of 100k entries spent its time on.
 */
interface NativeBinding {
  iterator_next(context: unknown, cb: (err: Error | null | undefined, array?: Buffer[], finished?: boolean) => void): void;
}

interface NativeDb {
  open(options: Record<string, unknown>, cb: Callback): void;
  close(cb: Callback): void;
  getMany(keys: Buffer[], options: { asBuffer: boolean }, cb: Callback<(Buffer | undefined)[]>): void;
  batch(ops: NativeOp[], options: { sync: boolean }, cb: Callback): void;
  clear(options: Record<string, unknown>, cb: Callback): void;
  iterator(options: Record<string, unknown>): NativeIterator;
}

type NativeOp = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer };

const require = createRequire(import.meta.url);
const rocksdb = require('rocksdb') as (location: string) => NativeDb;
const binding = require('rocksdb/binding') as NativeBinding;

export interface RocksDbStoreOptions {
  /** Directory of the database; created if missing. */
  readonly location: string;
  /** Block cache size in bytes. @default 8 MiB */
  readonly cacheSizeBytes?: number;
  /** Memtable size in bytes before a flush to disk (RocksDB keeps up to two). @default 4 MiB */
  readonly writeBufferSizeBytes?: number;
  /**
   * Files RocksDB keeps open. Each open SST file holds its index and bloom filter in memory
   * (outside the block cache, about 7 bytes per key), so this also bounds that memory. @default 1000
   */
  readonly maxOpenFiles?: number;
}

/** The memory knobs of the RocksDB store, as jobs configure them (`state.rocksdb`). */
export type RocksDbMemoryOptions = Omit<RocksDbStoreOptions, 'location'>;

function call<T = void>(what: string, fn: (cb: Callback<T>) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    fn((err, value) => {
      // Disk full, I/O errors, a lock another process holds: the environment's, and it may clear.
      if (err) reject(new StateError(`RocksDB ${what} failed: ${err.message}`, { domain: 'external', retriable: true, cause: err }));
      else resolve(value as T);
    });
  });
}

/**
 * The default store: RocksDB through the `rocksdb` package's native binding. Writes are not
 * synced: the local database is a working copy, durability comes from checkpoint snapshots.
 */
export class RocksDbStore implements KeyValueStore {
  private readonly db: NativeDb;
  private opened = false;

  constructor(private readonly options: RocksDbStoreOptions) {
    this.db = rocksdb(options.location);
  }

  async open(): Promise<void> {
    await mkdir(this.options.location, { recursive: true });
    const options = {
      createIfMissing: true,
      cacheSize: this.options.cacheSizeBytes ?? 8 * 1024 * 1024,
      writeBufferSize: this.options.writeBufferSizeBytes ?? 4 * 1024 * 1024,
      maxOpenFiles: this.options.maxOpenFiles ?? 1000,
    };
    await call(`open of ${this.options.location}`, (cb) => this.db.open(options, cb));
    this.opened = true;
  }

  async close(): Promise<void> {
    if (!this.opened) return;
    this.opened = false;
    await call('close', (cb) => this.db.close(cb));
  }

  async getMany(keys: readonly Buffer[]): Promise<(Buffer | undefined)[]> {
    if (keys.length === 0) return [];
    return call('getMany', (cb) => this.db.getMany([...keys], { asBuffer: true }, cb));
  }

  async write(ops: readonly StoreWrite[]): Promise<void> {
    if (ops.length === 0) return;
    const native: NativeOp[] = ops.map((op) =>
      op.value === null ? { type: 'del', key: op.key } : { type: 'put', key: op.key, value: op.value },
    );
    await call('batch write', (cb) => this.db.batch(native, { sync: false }, cb));
  }

  async *scan(prefix: Buffer): AsyncIterable<[Buffer, Buffer]> {
    const it = this.db.iterator(rangeOptions(prefix));
    try {
      for (;;) {
        const entry = await new Promise<[Buffer, Buffer] | undefined>((resolve, reject) => {
          it.next((err, key, value) => {
            if (err) reject(new StateError(`RocksDB scan failed: ${err.message}`, { cause: err }));
            else resolve(key === undefined || value === undefined ? undefined : [key, value]);
          });
        });
        if (entry === undefined) return;
        yield entry;
      }
    } finally {
      // Always end the iterator, also when the consumer breaks early: it pins native memory.
      await call('iterator end', (cb) => it.end(cb));
    }
  }

  scanBatches(prefix: Buffer, batchBytes: number): StoreScan {
    // Created now: the binding's iterator takes a RocksDB snapshot in its constructor, so it reads
    // the database as it was at this call, whatever is written while it is read.
    const it = this.db.iterator({ ...rangeOptions(prefix), highWaterMark: batchBytes });
    let ended: Promise<void> | undefined;
    const end = (): Promise<void> => (ended ??= call('iterator end', (cb) => it.end(cb)));
    type Step = { array: Buffer[]; finished: boolean };
    const step = (): Promise<Step> =>
      new Promise<Step>((resolve, reject) => {
        binding.iterator_next(it.context, (err, array, done) => {
          if (err) reject(new StateError(`RocksDB scan failed: ${err.message}`, { cause: err }));
          else resolve({ array: array ?? [], finished: done === true });
        });
      });
    const batches = (async function* batches() {
      // One step read ahead: the binding reads the next ≤ 1000 entries in libuv's pool while this
      // batch is consumed, so a full snapshot written beside the task loop waits less per turn.
      // Marked handled at once: a failed read-ahead rejects while this generator waits at a yield;
      // the error is thrown by the `await` that takes the step.
      const readAhead = (): Promise<Step> => {
        const next = step();
        next.catch(() => undefined);
        return next;
      };
      let ahead: Promise<Step> | undefined = readAhead();
      try {
        while (ahead !== undefined) {
          const { array, finished }: Step = await ahead;
          ahead = finished ? undefined : readAhead();
          const batch: StoreEntry[] = [];
          for (let i = array.length - 1; i > 0; i -= 2) batch.push([array[i] as Buffer, array[i - 1] as Buffer]);
          if (batch.length > 0) yield batch;
        }
      } finally {
        await ahead?.catch(() => undefined);
        await end();
      }
    })();
    return {
      [Symbol.asyncIterator]: () => batches,
      // A generator that never started skips its finally: end the iterator here too.
      close: async () => {
        await batches.return(undefined);
        await end();
      },
    };
  }

  async clear(): Promise<void> {
    await call('clear', (cb) => this.db.clear({}, cb));
  }
}

function rangeOptions(prefix: Buffer): Record<string, unknown> {
  const upper = prefixUpperBound(prefix);
  const range: Record<string, unknown> = { keyAsBuffer: true, valueAsBuffer: true };
  if (prefix.length > 0) range['gte'] = prefix;
  if (upper !== undefined) range['lt'] = upper;
  return range;
}
