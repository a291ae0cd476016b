import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { StateError } from './errors.ts';
import {
  prefixUpperBound,
  type KeyValueStore,
  type LocalRecovery,
  type StoreEntry,
  type StoreScan,
  type StoreWrite,
} from './key-value-store.ts';
import {
  RECOVERY_PREFIX,
  decodeSeq,
  decodeUndo,
  encodeSeq,
  encodeUndo,
  markKey,
  markRange,
  metaKey,
  undoKey,
  undoRange,
  type RecoveryMeta,
} from './local-recovery-log.ts';

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
  iterator_next(
    context: unknown,
    cb: (err: Error | null | undefined, array?: Buffer[], finished?: boolean) => void,
  ): void;
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
  /**
   * Keep the directory of the previous run (moved to `<location>.recovery` on open) so a restore
   * to a checkpoint this lineage took opens it and undoes the writes after that checkpoint's
   * barrier instead of replaying files (Flink's local recovery). Costs one read of the written
   * keys per write and their old values in an undo record, dropped when a checkpoint completes.
   * @default false (the state backend factory turns it on)
   */
  readonly localRecovery?: boolean;
}

/** The memory knobs of the RocksDB store, as jobs configure them (`state.rocksdb`). */
export type RocksDbMemoryOptions = Omit<RocksDbStoreOptions, 'location'>;

function call<T = void>(what: string, fn: (cb: Callback<T>) => void): Promise<T> {
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

/**
 * The default store: RocksDB through the `rocksdb` package's native binding. Writes are not
 * synced: the local database is a working copy, durability comes from checkpoint snapshots.
 */
export class RocksDbStore implements KeyValueStore {
  private db: NativeDb;
  private opened = false;
  readonly localRecovery: LocalRecovery | undefined;
  private recovery: RecoveryLog | undefined;

  constructor(private readonly options: RocksDbStoreOptions) {
    this.db = rocksdb(options.location);
    if (options.localRecovery === true) {
      this.recovery = new RecoveryLog(this, `${options.location}.recovery`);
      this.localRecovery = this.recovery;
    }
  }

  get location(): string {
    return this.options.location;
  }

  async open(): Promise<void> {
    if (this.recovery !== undefined) await this.recovery.keepPreviousRun();
    await this.openAt();
    await this.recovery?.startLineage();
  }

  /** Opens `location` as it is on disk (a fresh one is created). */
  async openAt(): Promise<void> {
    await mkdir(this.options.location, { recursive: true });
    this.db = rocksdb(this.options.location);
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
    await this.recovery?.settle();
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
    const undo = await this.recovery?.undoFor(ops);
    if (undo !== undefined) native.push(undo);
    await this.rawBatch(native);
  }

  /** For the recovery log: a batch as given (bookkeeping keys included). */
  async rawBatch(native: NativeOp[]): Promise<void> {
    await call('batch write', (cb) => this.db.batch(native, { sync: false }, cb));
  }

  /** For the recovery log: entries of a bookkeeping range, one at a time. */
  async *rawRange(range: { gte: Buffer; lt: Buffer }, reverse = false): AsyncGenerator<StoreEntry> {
    const it = this.db.iterator({ ...range, reverse, keyAsBuffer: true, valueAsBuffer: true });
    try {
      for (;;) {
        const entry = await new Promise<StoreEntry | undefined>((resolve, reject) => {
          it.next((err, key, value) => {
            if (err) reject(new StateError(`RocksDB scan failed: ${err.message}`, { cause: err }));
            else resolve(key === undefined || value === undefined ? undefined : [key, value]);
          });
        });
        if (entry === undefined) return;
        yield entry;
      }
    } finally {
      await call('iterator end', (cb) => it.end(cb));
    }
  }

  async rawClear(range: { gte: Buffer; lt: Buffer }): Promise<void> {
    await call('clear', (cb) => this.db.clear(range, cb));
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
    await this.recovery?.startLineage();
  }
}

/** Scans of state stop below the recovery bookkeeping. */
function rangeOptions(prefix: Buffer): Record<string, unknown> {
  const upper = prefixUpperBound(prefix);
  const range: Record<string, unknown> = { keyAsBuffer: true, valueAsBuffer: true };
  if (prefix.length > 0) range['gte'] = prefix;
  range['lt'] = upper === undefined || Buffer.compare(upper, RECOVERY_PREFIX) > 0 ? RECOVERY_PREFIX : upper;
  return range;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Changes with every boot of the machine: a copy written before a reboot may lack unsynced writes. */
async function bootId(): Promise<string | undefined> {
  try {
    return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
  } catch {
    return undefined;
  }
}

/**
 * The undo log that makes the working directory a local recovery copy. Each write stores, in the
 * same atomic batch, the values its keys had before it (one undo record, numbered); each barrier
 * stores the undo number it was taken at. The directory of a killed process then holds the state
 * at any marked barrier: the current state with the undo records after that mark applied, newest
 * first. Writes are not fsynced, which survives a killed process (the OS has them) but not a
 * crash of the machine: the copy is used only on the boot that wrote it.
 */
class RecoveryLog implements LocalRecovery {
  incarnation = '';
  private seq = 0;
  /** Undo is needed only after the first barrier of the lineage (a restore targets a barrier). */
  private marked = false;
  private readonly marks = new Map<number, number>();
  private background: Promise<void> = Promise.resolve();
  private previousRun = false;

  constructor(
    private readonly store: RocksDbStore,
    private readonly recoveryDir: string,
  ) {}

  /** Before open: the last run's directory becomes the recovery copy; the store starts empty. */
  async keepPreviousRun(): Promise<void> {
    await rm(this.recoveryDir, { recursive: true, force: true });
    this.previousRun = await exists(this.store.location);
    if (this.previousRun) await rename(this.store.location, this.recoveryDir);
  }

  async startLineage(): Promise<void> {
    this.incarnation = randomUUID();
    this.seq = 0;
    this.marked = false;
    this.marks.clear();
    const meta: RecoveryMeta = { incarnation: this.incarnation, bootId: (await bootId()) ?? '' };
    await this.store.rawBatch([{ type: 'put', key: metaKey(), value: Buffer.from(JSON.stringify(meta)) }]);
  }

  async undoFor(ops: readonly StoreWrite[]): Promise<NativeOp | undefined> {
    if (!this.marked) return undefined;
    const prior = await this.store.getMany(ops.map((op) => op.key));
    const entries = ops.map((op, i) => ({ key: op.key, value: prior[i] }));
    return { type: 'put', key: undoKey(++this.seq), value: encodeUndo(entries) };
  }

  async markBarrier(checkpointId: number): Promise<void> {
    this.marked = true;
    this.marks.set(checkpointId, this.seq);
    await this.store.rawBatch([{ type: 'put', key: markKey(checkpointId), value: encodeSeq(this.seq) }]);
    if (this.previousRun) {
      // Not restored from: the old directory is dead weight now.
      this.previousRun = false;
      this.inBackground(() => rm(this.recoveryDir, { recursive: true, force: true }));
    }
  }

  checkpointCompleted(checkpointId: number): void {
    const seq = this.marks.get(checkpointId);
    if (seq === undefined) return;
    for (const id of this.marks.keys()) if (id < checkpointId) this.marks.delete(id);
    // Marks first: an undo record gone while its mark remains would make that mark lie.
    this.inBackground(async () => {
      await this.store.rawClear({ gte: markRange.gte, lt: markKey(checkpointId) });
      await this.store.rawClear({ gte: undoRange.gte, lt: undoKey(seq + 1) });
    });
  }

  async recover(incarnation: string, checkpointId: number): Promise<boolean> {
    await this.settle();
    if (!this.previousRun || !(await exists(this.recoveryDir))) return false;
    this.previousRun = false;
    await this.store.close();
    await rm(this.store.location, { recursive: true, force: true });
    await rename(this.recoveryDir, this.store.location);
    try {
      await this.store.openAt();
      if (await this.rewind(incarnation, checkpointId)) return true;
    } catch {
      // An unreadable copy is no worse than none: the caller replays the checkpoint's files.
    }
    await this.store.close();
    await rm(this.store.location, { recursive: true, force: true });
    await this.store.openAt();
    await this.startLineage();
    return false;
  }

  /** Undo every write after `checkpointId`'s barrier; false if this copy cannot prove it holds that state. */
  private async rewind(incarnation: string, checkpointId: number): Promise<boolean> {
    const [meta] = await this.store.getMany([metaKey()]);
    if (meta === undefined) return false;
    const parsed = JSON.parse(meta.toString('utf8')) as RecoveryMeta;
    const boot = await bootId();
    if (parsed.incarnation !== incarnation || boot === undefined || parsed.bootId !== boot) return false;
    const [mark] = await this.store.getMany([markKey(checkpointId)]);
    if (mark === undefined) return false;
    const at = decodeSeq(mark);
    // Newest first, one record (one past write) at a time: each key ends with the value it had
    // before its first write after the mark, and memory holds one record, however many there are.
    for await (const [, value] of this.store.rawRange({ gte: undoKey(at + 1), lt: undoRange.lt }, true)) {
      const ops = decodeUndo(value).map(({ key, value: prior }): NativeOp =>
        prior === undefined ? { type: 'del', key } : { type: 'put', key, value: prior },
      );
      await this.store.rawBatch(ops);
    }
    await this.store.rawClear({ gte: undoKey(at + 1), lt: undoRange.lt });
    await this.store.rawClear({ gte: markKey(checkpointId + 1), lt: markRange.lt });
    this.incarnation = incarnation;
    this.seq = at;
    this.marked = true;
    this.marks.clear();
    this.marks.set(checkpointId, at);
    return true;
  }

  /** Waits for background bookkeeping (before close and recovery). */
  async settle(): Promise<void> {
    await this.background;
  }

  private inBackground(work: () => Promise<unknown>): void {
    // Best effort: a failed cleanup only leaves old records, which no restore reads.
    this.background = this.background.then(work).then(
      () => undefined,
      () => undefined,
    );
  }
}
