import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import type {
  EngineIterator,
  EngineRange,
  EngineWrite,
  NativeCheckpoints,
  RocksDbBinding,
  RocksDbEngine,
  RocksDbEngineOptions,
} from './rocksdb-engine.ts';
import { StateError } from './errors.ts';
import { dirname, join } from 'node:path';
import { NativeRocksDbEngine, loadNativeRocksDb } from './rocksdb-native-engine.ts';
import { NpmRocksDbEngine, preloadNpmRocksDb } from './rocksdb-npm-engine.ts';
import {
  prefixUpperBound,
  type KeyValueStore,
  type LocalRecovery,
  type NativeCheckpointMode,
  type SstCheckpoints,
  type StoreEntry,
  type StorePrior,
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
  /**
   * Which RocksDB binding: 'npm' (the `rocksdb` package) or 'native' (cdcflow's own addon,
   * built with `npm run build:native` against librocksdb-dev; experimental) — the latter adds
   * RocksDB checkpoints, so snapshots can upload SST files instead of entries. @default 'npm'
   */
  readonly binding?: RocksDbBinding;
  /**
   * With the native binding: a checkpoint copies the write-ahead log instead of flushing the
   * memtables while the log is smaller than this (an upload of the log instead of a new SST file
   * per checkpoint, fewer compactions with larger memtables). @default 0 (always flush)
   */
  readonly checkpointWalBytes?: number;
  /**
   * With the native binding: 'changelog' — every checkpoint writes a delta of the changed keys,
   * and RocksDB checkpoints (materialisations) are taken in the background, at most every
   * `materializeIntervalMs` or once the deltas since the last one reach `materializeDeltaBytes`;
   * a restore opens the last materialisation's SST files and replays the deltas after it. 'sst' —
   * every checkpoint is a RocksDB checkpoint (bytes follow RocksDB's compactions). @default 'changelog'
   */
  readonly nativeCheckpoints?: NativeCheckpointMode;
  /** @default 10000 (10 s) */
  readonly materializeIntervalMs?: number;
  /** @default 64 MiB */
  readonly materializeDeltaBytes?: number;
}

/** The memory knobs of the RocksDB store, as jobs configure them (`state.rocksdb`). */
export type RocksDbMemoryOptions = Omit<RocksDbStoreOptions, 'location'>;

/**
 * Loads a RocksDB binding in this thread (the main thread of a parallel job, before its workers
 * start): the `rocksdb` package's addon registers only in the first thread that loads it. Never
 * both bindings in one process: their RocksDB libraries interfere.
 */
export function preloadRocksDbBinding(binding: RocksDbBinding = 'npm'): void {
  if (binding === 'native') loadNativeRocksDb();
  else preloadNpmRocksDb();
}

/** Bytes per iterator step of `scan` (one thread-pool round trip per step, not per entry). */
const SCAN_STEP_BYTES = 64 << 10;

/**
 * The default store: RocksDB through a native binding (the `rocksdb` package, or cdcflow's own
 * addon with `binding: 'native'`). Writes are not synced: the local database is a working copy,
 * durability comes from checkpoint snapshots.
 */
export class RocksDbStore implements KeyValueStore {
  private engine: RocksDbEngine;
  private opened = false;
  readonly localRecovery: LocalRecovery | undefined;
  readonly sstCheckpoints: SstCheckpoints | undefined;
  private recovery: RecoveryLog | undefined;

  constructor(private readonly options: RocksDbStoreOptions) {
    this.engine = this.newEngine();
    if (options.binding === 'native') this.sstCheckpoints = new NativeSstCheckpoints(this, options);
    if (options.localRecovery === true) {
      this.recovery = new RecoveryLog(this, `${options.location}.recovery`);
      this.localRecovery = this.recovery;
    }
  }

  private newEngine(): RocksDbEngine {
    return this.options.binding === 'native'
      ? new NativeRocksDbEngine(this.options.location)
      : new NpmRocksDbEngine(this.options.location);
  }

  get location(): string {
    return this.options.location;
  }

  get checkpointWalBytes(): number {
    return this.options.checkpointWalBytes ?? 0;
  }

  get binding(): RocksDbBinding {
    return this.options.binding ?? 'npm';
  }

  /** RocksDB checkpoints and ingestion, with the native binding only (open store). */
  get native(): NativeCheckpoints | undefined {
    return this.engine instanceof NativeRocksDbEngine ? this.engine : undefined;
  }

  /** The engine's options from the store's (memory bounds). */
  engineOptions(): RocksDbEngineOptions {
    return {
      cacheSize: this.options.cacheSizeBytes ?? 8 * 1024 * 1024,
      writeBufferSize: this.options.writeBufferSizeBytes ?? 4 * 1024 * 1024,
      maxOpenFiles: this.options.maxOpenFiles ?? 1000,
    };
  }

  /** For SST restores: the database in `dir` becomes this store's (a fresh lineage). */
  async adoptDirectory(dir: string): Promise<void> {
    await this.recovery?.settle();
    if (this.opened) {
      this.opened = false;
      await this.engine.close();
    }
    await rm(this.options.location, { recursive: true, force: true });
    await rename(dir, this.options.location);
    await this.openAt();
    // A checkpoint taken with local recovery on holds that lineage's bookkeeping: not ours.
    await this.engine.clearRange({ gte: RECOVERY_PREFIX });
    await this.recovery?.startLineage();
  }

  async open(): Promise<void> {
    // A killed process's checkpoint directories hard-link SST files RocksDB has deleted since:
    // they would hold that disk space for good.
    if (this.sstCheckpoints !== undefined)
      await rm(`${this.options.location}.scratch`, { recursive: true, force: true });
    if (this.recovery !== undefined) await this.recovery.keepPreviousRun();
    await this.openAt();
    await this.recovery?.startLineage();
  }

  /** Opens `location` as it is on disk (a fresh one is created). */
  async openAt(): Promise<void> {
    await mkdir(this.options.location, { recursive: true });
    this.engine = this.newEngine();
    await this.engine.open(this.engineOptions());
    this.opened = true;
  }

  async close(): Promise<void> {
    await this.recovery?.settle();
    if (!this.opened) return;
    this.opened = false;
    await this.engine.close();
  }

  async getMany(keys: readonly Buffer[]): Promise<(Buffer | undefined)[]> {
    if (keys.length === 0) return [];
    return this.engine.getMany(keys);
  }

  async write(ops: readonly StoreWrite[], priors?: readonly StorePrior[]): Promise<void> {
    if (ops.length === 0) return;
    const undo = await this.recovery?.undoFor(ops, priors);
    await this.rawBatch(undo === undefined ? ops : [...ops, undo]);
  }

  /** For the recovery log: a batch as given (bookkeeping keys included). */
  async rawBatch(ops: readonly EngineWrite[]): Promise<void> {
    await this.engine.batch(ops);
  }

  /** For the recovery log: entries of a bookkeeping range, one at a time. */
  async *rawRange(range: { gte: Buffer; lt: Buffer }, reverse = false): AsyncGenerator<StoreEntry> {
    yield* this.entries(this.engine.iterator({ ...range, reverse }, SCAN_STEP_BYTES));
  }

  async rawClear(range: { gte: Buffer; lt: Buffer }): Promise<void> {
    await this.engine.clearRange(range);
  }

  async *scan(prefix: Buffer): AsyncIterable<[Buffer, Buffer]> {
    for await (const [k, v] of this.entries(this.engine.iterator(rangeOf(prefix), SCAN_STEP_BYTES))) yield [k, v];
  }

  private async *entries(it: EngineIterator): AsyncGenerator<StoreEntry> {
    try {
      for (;;) {
        const { entries, finished } = await it.next();
        yield* entries;
        if (finished) return;
      }
    } finally {
      // Always end the iterator, also when the consumer breaks early: it pins native memory.
      await it.end();
    }
  }

  scanBatches(prefix: Buffer, batchBytes: number): StoreScan {
    // Created now: the iterator holds a RocksDB snapshot from its creation, so it reads the
    // database as it was at this call, whatever is written while it is read.
    const it = this.engine.iterator(rangeOf(prefix), batchBytes);
    type Step = { entries: StoreEntry[]; finished: boolean };
    const batches = (async function* batches() {
      // One step read ahead: the binding reads the next batch in libuv's pool while this one is
      // consumed, so a full snapshot written beside the task loop waits less per turn.
      // Marked handled at once: a failed read-ahead rejects while this generator waits at a yield;
      // the error is thrown by the `await` that takes the step.
      const readAhead = (): Promise<Step> => {
        const next = it.next();
        next.catch(() => undefined);
        return next;
      };
      let ahead: Promise<Step> | undefined = readAhead();
      try {
        while (ahead !== undefined) {
          const { entries, finished }: Step = await ahead;
          ahead = finished ? undefined : readAhead();
          if (entries.length > 0) yield entries;
        }
      } finally {
        await ahead?.catch(() => undefined);
        await it.end();
      }
    })();
    return {
      [Symbol.asyncIterator]: () => batches,
      // A generator that never started skips its finally: end the iterator here too.
      close: async () => {
        await batches.return(undefined);
        await it.end();
      },
    };
  }

  async clear(): Promise<void> {
    await this.engine.clearRange({});
    await this.recovery?.startLineage();
  }
}

/** RocksDB checkpoints of a store on the native binding. */
class NativeSstCheckpoints implements SstCheckpoints {
  readonly mode: NativeCheckpointMode;
  readonly materializeIntervalMs: number;
  readonly materializeDeltaBytes: number;

  constructor(
    private readonly store: RocksDbStore,
    options: RocksDbStoreOptions,
  ) {
    this.mode = options.nativeCheckpoints ?? 'changelog';
    if (this.mode !== 'changelog' && this.mode !== 'sst') {
      throw new StateError(`state.rocksdb.nativeCheckpoints must be 'changelog' or 'sst', got '${String(this.mode)}'`, {
        domain: 'user',
      });
    }
    this.materializeIntervalMs = positive('materializeIntervalMs', options.materializeIntervalMs ?? 10_000);
    this.materializeDeltaBytes = positive('materializeDeltaBytes', options.materializeDeltaBytes ?? 64 << 20);
  }

  scratchDir(name: string): string {
    return join(`${this.store.location}.scratch`, name);
  }

  async checkpoint(dir: string): Promise<void> {
    const native = this.store.native;
    if (native === undefined) throw new StateError('RocksDB checkpoint: the store is not open', { domain: 'internal' });
    await mkdir(dirname(dir), { recursive: true });
    await rm(dir, { recursive: true, force: true });
    await native.checkpoint(dir, this.store.checkpointWalBytes);
  }

  adopt(dir: string): Promise<void> {
    return this.store.adoptDirectory(dir);
  }

  async *readDirectory(dir: string, batchBytes: number): AsyncGenerator<readonly StoreEntry[]> {
    const engine = new NativeRocksDbEngine(dir);
    await engine.open(this.store.engineOptions());
    try {
      const it = engine.iterator({ lt: RECOVERY_PREFIX }, batchBytes);
      try {
        for (;;) {
          const { entries, finished } = await it.next();
          if (entries.length > 0) yield entries;
          if (finished) return;
        }
      } finally {
        await it.end();
      }
    } finally {
      await engine.close();
    }
  }
}

/** Scans of state stop below the recovery bookkeeping. */
function rangeOf(prefix: Buffer): EngineRange {
  const upper = prefixUpperBound(prefix);
  return {
    gte: prefix.length > 0 ? prefix : undefined,
    lt: upper === undefined || Buffer.compare(upper, RECOVERY_PREFIX) > 0 ? RECOVERY_PREFIX : upper,
  };
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
    await this.store.rawBatch([{ key: metaKey(), value: Buffer.from(JSON.stringify(meta)) }]);
  }

  /** The undo record of a write: the given priors, and one read of the keys whose prior is not known. */
  async undoFor(ops: readonly StoreWrite[], priors?: readonly StorePrior[]): Promise<EngineWrite | undefined> {
    if (!this.marked) return undefined;
    const unknown: number[] = [];
    for (let i = 0; i < ops.length; i++) if (priors?.[i] === undefined) unknown.push(i);
    const read = unknown.length === 0 ? [] : await this.store.getMany(unknown.map((i) => (ops[i] as StoreWrite).key));
    const entries = ops.map((op, i) => ({ key: op.key, value: priors?.[i] ?? undefined }));
    unknown.forEach((at, i) => ((entries[at] as { value: Buffer | undefined }).value = read[i]));
    return { key: undoKey(++this.seq), value: encodeUndo(entries) };
  }

  async markBarrier(checkpointId: number): Promise<void> {
    this.marked = true;
    this.marks.set(checkpointId, this.seq);
    await this.store.rawBatch([{ key: markKey(checkpointId), value: encodeSeq(this.seq) }]);
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
      const ops = decodeUndo(value).map(({ key, value: prior }): EngineWrite => ({ key, value: prior ?? null }));
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

function positive(name: string, value: number): number {
  if (!(value > 0) || !Number.isFinite(value)) {
    throw new StateError(`state.rocksdb.${name} must be a positive number, got ${value}`, { domain: 'user' });
  }
  return value;
}
