import { createRequire } from 'node:module';
import { StateError } from './errors.ts';
import type { StoreEntry } from './key-value-store.ts';
import type {
  EngineIterator,
  EngineRange,
  EngineWrite,
  RocksDbEngine,
  RocksDbEngineOptions,
} from './rocksdb-engine.ts';

/** The slice of the `rocksdb` npm package (abstract-leveldown callback API) we use. */
type Callback<T = void> = (err: Error | null | undefined, value?: T) => void;

interface NpmIterator {
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
interface NpmBinding {
  iterator_next(
    context: unknown,
    cb: (err: Error | null | undefined, array?: Buffer[], finished?: boolean) => void,
  ): void;
}

interface NpmDb {
  open(options: Record<string, unknown>, cb: Callback): void;
  close(cb: Callback): void;
  getMany(keys: Buffer[], options: { asBuffer: boolean }, cb: Callback<(Buffer | undefined)[]>): void;
  batch(ops: NpmOp[], options: { sync: boolean }, cb: Callback): void;
  clear(options: Record<string, unknown>, cb: Callback): void;
  iterator(options: Record<string, unknown>): NpmIterator;
}

type NpmOp = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer };

let loaded: { rocksdb: (location: string) => NpmDb; binding: NpmBinding } | undefined;
/**
 * The package, loaded on first use — not at import: with the native binding it must not be
 * loaded at all (its statically linked RocksDB, built with assertions, then answered the addon's
 * calls into librocksdb and aborted the process). Its addon registers itself once per process,
 * so a parallel job loads it in the main thread before starting workers (`preloadRocksDbBinding`).
 */
function load(): NonNullable<typeof loaded> {
  const require = createRequire(import.meta.url);
  return (loaded ??= {
    rocksdb: require('rocksdb') as (location: string) => NpmDb,
    binding: require('rocksdb/binding') as NpmBinding,
  });
}

/**
 * Loads the chosen binding in this thread. Call it in the main thread before worker threads open
 * stores: the npm package's addon registers only in the first thread that loads it, and a worker
 * that loads it first and exits leaves later workers with "Module did not self-register".
 */
export function preloadNpmRocksDb(): void {
  load();
}

export function callback<T = void>(what: string, fn: (cb: Callback<T>) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    fn((err, value) => {
      // Disk full, I/O errors, a lock another process holds: the environment's, and it may clear.
      if (err)
        reject(
          new StateError(`RocksDB ${what} failed: ${err.message}`, { domain: 'external', retriable: true, cause: err }),
        );
      else resolve(value as T);
    });
  });
}

function bounds(range: EngineRange): Record<string, unknown> {
  const out: Record<string, unknown> = { keyAsBuffer: true, valueAsBuffer: true };
  if (range.gte !== undefined) out['gte'] = range.gte;
  if (range.lt !== undefined) out['lt'] = range.lt;
  return out;
}

/** RocksDB through the `rocksdb` npm package (5.x, its own statically linked RocksDB). */
export class NpmRocksDbEngine implements RocksDbEngine {
  private readonly db: NpmDb;

  constructor(private readonly location: string) {
    this.db = load().rocksdb(location);
  }

  open(options: RocksDbEngineOptions): Promise<void> {
    return callback(`open of ${this.location}`, (cb) => this.db.open({ createIfMissing: true, ...options }, cb));
  }

  close(): Promise<void> {
    return callback('close', (cb) => this.db.close(cb));
  }

  getMany(keys: readonly Buffer[]): Promise<(Buffer | undefined)[]> {
    return callback('getMany', (cb) => this.db.getMany([...keys], { asBuffer: true }, cb));
  }

  batch(ops: readonly EngineWrite[]): Promise<void> {
    const native: NpmOp[] = ops.map((op) =>
      op.value === null ? { type: 'del', key: op.key } : { type: 'put', key: op.key, value: op.value },
    );
    return callback('batch write', (cb) => this.db.batch(native, { sync: false }, cb));
  }

  clearRange(range: EngineRange): Promise<void> {
    const options: Record<string, unknown> = {};
    if (range.gte !== undefined) options['gte'] = range.gte;
    if (range.lt !== undefined) options['lt'] = range.lt;
    return callback('clear', (cb) => this.db.clear(options, cb));
  }

  iterator(range: EngineRange & { readonly reverse?: boolean }, batchBytes: number): EngineIterator {
    // The binding's iterator takes a RocksDB snapshot in its constructor: the view is fixed here.
    const it = this.db.iterator({ ...bounds(range), reverse: range.reverse === true, highWaterMark: batchBytes });
    const { binding } = load();
    let ended: Promise<void> | undefined;
    return {
      next: () =>
        new Promise((resolve, reject) => {
          binding.iterator_next(it.context, (err, array, done) => {
            if (err) {
              reject(new StateError(`RocksDB scan failed: ${err.message}`, { cause: err }));
              return;
            }
            const entries: StoreEntry[] = [];
            const a = array ?? [];
            for (let i = a.length - 1; i > 0; i -= 2) entries.push([a[i] as Buffer, a[i - 1] as Buffer]);
            resolve({ entries, finished: done === true });
          });
        }),
      end: () => (ended ??= callback('iterator end', (cb) => it.end(cb))),
    };
  }
}
