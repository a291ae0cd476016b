import { randomBytes } from 'node:crypto';
import { SnapshotWriteError, StateError } from './errors.ts';
import type { KeyGroupRange } from './key-groups.ts';
import type { StoreWrite } from './key-value-store.ts';
import type { KeyedStateHandle, SnapshotFileRef } from './snapshot-handle.ts';
import { encodeDeltaChunks } from './snapshot-format.ts';
import { writeSnapshotChunks, type SnapshotStorage } from './snapshot-storage.ts';

export interface SnapshotterConfig {
  readonly maxParallelism: number;
  readonly maxDeltaChainLength: number;
  readonly maxDeltaToFullRatio: number;
  readonly namePrefix: string;
  /**
   * How a chain that grew too long is compacted. 'background': checkpoints keep writing deltas
   * while a full file of the state at one barrier is written beside them (a rebase); a later
   * checkpoint's handle then starts from it. 'inline': that checkpoint itself is a full snapshot
   * (its duration grows with the state). Background needs a storage with staged writes; without
   * them it is inline.
   */
  readonly compaction: 'background' | 'inline';
  /** Hears of background work (rebases), which closing must wait for. */
  readonly track?: (work: Promise<unknown>) => void;
  /**
   * Replaces the chain-length rules (a changelog over RocksDB checkpoints): a new base is due once
   * `intervalMs` passed since the last one started and the chain has deltas, or once the chain's
   * deltas reach `deltaBytes`. Chains are then long (tens of deltas) and bounded by these instead.
   */
  readonly materialize?: MaterializePolicy;
}

export interface MaterializePolicy {
  readonly intervalMs: number;
  readonly deltaBytes: number;
  readonly now: () => number;
}

/** A base of the state at `checkpointId`'s barrier, written in the background. */
interface Rebase {
  readonly checkpointId: number;
  readonly storage: SnapshotStorage;
  readonly cancel: AbortController;
  /** Set once the staged base is durable: the next snapshot may adopt it. */
  staged: StagedBase | undefined;
}

/** A full snapshot's encoded chunks over a view pinned at the barrier; `close` releases the view. */
export interface FullSnapshotSource {
  readonly chunks: AsyncIterable<Buffer>;
  close(): Promise<void>;
}

/** Where and as what a base is written. */
export interface BaseTarget {
  readonly checkpointId: number;
  readonly storage: SnapshotStorage;
  readonly range: KeyGroupRange;
  readonly namePrefix: string;
  readonly signal: AbortSignal;
}

/**
 * The state at one barrier, pinned there, from which a chain starts: a full entry file (CDST) or
 * a RocksDB checkpoint (SST files). Written inline, as the checkpoint's own files, or staged in
 * the background and published by the first checkpoint that lists it.
 */
export interface BaseSource {
  /** Settles once the view is pinned; the barrier waits for it when it is asynchronous. */
  readonly pinned?: Promise<void>;
  /** Written as this checkpoint's own files (inline). */
  write(target: BaseTarget): Promise<SnapshotFileRef[]>;
  /** Written where retention does not look (it may outlast many checkpoints); resolves once durable. */
  stage(target: BaseTarget): Promise<StagedBase>;
  /** Releases the pinned view, also if it was never written. */
  close(): Promise<void>;
}

/** A durable staged base. */
export interface StagedBase {
  readonly bytes: number;
  /** Moves it where checkpoints' files live, named for `asCheckpointId` (which lists it first); its refs. */
  publish(asCheckpointId: number): Promise<SnapshotFileRef[]>;
  /** Removes it (a cancelled or superseded base). */
  discard(): Promise<void>;
}

/** Files a chain starts with: one full entry file, or a RocksDB checkpoint's files. */
export function isBaseFile(file: SnapshotFileRef): boolean {
  return file.kind !== 'delta';
}

/** The barrier of the chain's base: its newest file (a RocksDB base reuses older SST files, its metadata is new). */
function baseCheckpointOf(chain: readonly SnapshotFileRef[]): number {
  let id = Number.NEGATIVE_INFINITY;
  for (const file of chain) if (isBaseFile(file)) id = Math.max(id, file.checkpointId);
  return id === Number.NEGATIVE_INFINITY ? Number.POSITIVE_INFINITY : id;
}

/** A full entry file (CDST) over a pinned store scan. */
export function entryFileBase(source: FullSnapshotSource): BaseSource {
  return {
    async write({ checkpointId, storage, range, namePrefix, signal }) {
      const name = `${namePrefix}/chk-${checkpointId}-full-${randomBytes(4).toString('hex')}.bin`;
      const written = await writeSnapshotChunks(storage, name, untilAborted(source.chunks, signal));
      return [
        { path: written.path, kind: 'full', keyGroups: [range.start, range.end], bytes: written.bytes, checkpointId },
      ];
    },
    async stage({ checkpointId, storage, range, namePrefix, signal }) {
      const name = `${namePrefix}/chk-${checkpointId}-base-${randomBytes(4).toString('hex')}.bin`;
      let bytes = 0;
      const counted = (async function* count(chunks: AsyncIterable<Buffer>) {
        for await (const chunk of chunks) {
          bytes += chunk.length;
          yield chunk;
        }
      })(untilAborted(source.chunks, signal));
      try {
        await (storage.writeStaged as NonNullable<SnapshotStorage['writeStaged']>)(name, counted);
        if (signal.aborted) throw signal.reason;
      } catch (error) {
        await storage.discardStaged?.(name).catch(() => undefined);
        throw error;
      }
      return {
        bytes,
        async publish(asCheckpointId) {
          // Published under the listing checkpoint's id: retention may run while it is in flight,
          // and keeps files of checkpoints newer than the newest completed.
          const as = `${namePrefix}/chk-${asCheckpointId}-rebase-${checkpointId}-${randomBytes(4).toString('hex')}.bin`;
          const path = await (storage.publishStaged as NonNullable<SnapshotStorage['publishStaged']>)(name, as);
          return [{ path, kind: 'full', keyGroups: [range.start, range.end], bytes, checkpointId }];
        },
        discard: async () => {
          await storage.discardStaged?.(name);
        },
      };
    },
    close: () => source.close(),
  };
}

/** Changes captured at one snapshot and not yet covered by a completed checkpoint. */
interface Segment {
  readonly checkpointId: number;
  readonly changes: ReadonlyMap<string, StoreWrite>;
}

/**
 * Changelog-style incremental snapshots. Every flushed write is recorded; a snapshot writes the
 * changes not yet covered by a *completed* checkpoint as one delta file and returns the last
 * completed chain plus that file. Because each delta covers everything since the last completed
 * checkpoint, an aborted checkpoint loses nothing: its changes ride along in the next delta.
 * When the chain grows too long or its deltas outweigh the last full snapshot, the snapshot is a
 * full scan instead and the chain restarts, keeping restore time bounded.
 *
 * A snapshot has a synchronous part (capture the delta, open the full scan, fix the chain it
 * builds on) and an asynchronous part (write the file) that runs while records are processed.
 * Two snapshots in flight cannot break the chain: every delta is relative to the last *completed*
 * checkpoint as of its barrier, and a snapshot's handle is recorded only if its checkpoint was not
 * aborted meanwhile. Aborting a checkpoint cancels its write (the file is never finished).
 */
export class IncrementalSnapshotter {
  private changelog = new Map<string, StoreWrite>();
  private segments: Segment[] = [];
  private confirmed: { checkpointId: number; files: readonly SnapshotFileRef[] } = { checkpointId: -1, files: [] };
  private readonly pending = new Map<number, KeyedStateHandle>();
  /** Writes still running, by checkpoint id: aborting that checkpoint (or closing) cancels them. */
  private readonly writing = new Map<number, AbortController>();
  private rebase: Rebase | undefined;
  /** When the last base (inline or background) was started; the materialisation interval counts from it. */
  private lastBaseAt: number;

  constructor(private readonly config: SnapshotterConfig) {
    this.lastBaseAt = config.materialize?.now() ?? 0;
  }

  record(writes: readonly StoreWrite[]): void {
    for (const write of writes) this.changelog.set(write.key.toString('latin1'), write);
  }

  /** Forget everything (restore); `base` becomes the completed chain new deltas build on. */
  reset(base: readonly SnapshotFileRef[], baseCheckpointId: number): void {
    this.dropRebase('the state was restored');
    this.changelog = new Map();
    this.segments = [];
    this.pending.clear();
    this.confirmed = { checkpointId: baseCheckpointId, files: base };
    this.lastBaseAt = this.config.materialize?.now() ?? 0;
  }

  /** Files of the last completed checkpoint's handle (the chain new deltas extend). */
  get confirmedFiles(): readonly SnapshotFileRef[] {
    return this.confirmed.files;
  }

  /**
   * Captures the delta synchronously (call right after flushing), then writes asynchronously.
   * `baseSnapshot` returns a base of the whole state (a full file's chunks, a RocksDB checkpoint);
   * it must pin a consistent view when called synchronously (RocksDB iterators read from the
   * implicit snapshot taken when they are created; the memory store copies its entry list), or
   * return a `pinned` promise the caller awaits before writing again (a RocksDB checkpoint). The
   * promise rejects with a `SnapshotWriteError` when the write fails or is cancelled.
   */
  snapshot(
    checkpointId: number,
    storage: SnapshotStorage,
    range: KeyGroupRange,
    baseSnapshot: () => BaseSource,
  ): Promise<KeyedStateHandle> {
    this.segments.push({ checkpointId, changes: this.changelog });
    this.changelog = new Map();
    const delta = this.mergedSegments();
    const chain = this.confirmed.files;
    const noBase = chain.length === 0 || !isBaseFile(chain[0] as SnapshotFileRef);
    const compact = !noBase && this.baseDue(chain, delta);
    const background = this.config.compaction === 'background' && supportsStaging(storage);
    const full = noBase || (compact && !background);
    if (full) this.dropRebase('a full snapshot replaces it');
    const adopted = full ? undefined : this.adoptRebase(storage, chain);
    if (compact && background && this.rebase === undefined && adopted === undefined)
      this.startRebase(checkpointId, storage, range, baseSnapshot());
    if (full) this.lastBaseAt = this.config.materialize?.now() ?? 0;
    const source = full ? baseSnapshot() : undefined;
    // The chain this snapshot builds on is the one completed at the barrier, not at the end of the write.
    const base =
      adopted === undefined ? chain : chain.filter((f) => !isBaseFile(f) && f.checkpointId > adopted.checkpointId);
    const cancel = new AbortController();
    this.writing
      .get(checkpointId)
      ?.abort(cancelled(checkpointId, 'a new snapshot with the same checkpoint id started'));
    this.writing.set(checkpointId, cancel);
    const written = this.write({ checkpointId, storage, range, source, delta, base, adopted, signal: cancel.signal });
    return written.finally(() => {
      if (this.writing.get(checkpointId) === cancel) this.writing.delete(checkpointId);
    });
  }

  /** Stops every write still running (the backend is closing); their promises reject as cancelled. */
  cancelAll(reason: string): void {
    for (const [id, cancel] of this.writing) cancel.abort(cancelled(id, reason));
    this.dropRebase(reason);
  }

  /** The background rebase: the checkpoint whose state it holds, and whether its file is written (awaiting adoption). */
  get rebaseStatus(): { readonly checkpointId: number; readonly written: boolean } | undefined {
    const rebase = this.rebase;
    return rebase === undefined
      ? undefined
      : { checkpointId: rebase.checkpointId, written: rebase.staged !== undefined };
  }

  /**
   * Starts writing the state at this barrier as a staged base, beside the checkpoints. The view
   * is pinned now (`baseSnapshot` is called synchronously); the write shares the event loop with
   * processing but no checkpoint waits for it.
   */
  private startRebase(checkpointId: number, storage: SnapshotStorage, range: KeyGroupRange, source: BaseSource): void {
    const rebase: Rebase = { checkpointId, storage, cancel: new AbortController(), staged: undefined };
    this.rebase = rebase;
    this.lastBaseAt = this.config.materialize?.now() ?? 0;
    const target = { checkpointId, storage, range, namePrefix: this.config.namePrefix, signal: rebase.cancel.signal };
    const work = source
      .stage(target)
      .then(async (staged) => {
        if (rebase.cancel.signal.aborted || this.rebase !== rebase) {
          await staged.discard().catch(() => undefined);
          return;
        }
        rebase.staged = staged;
      })
      .catch(() => {
        // A failed or cancelled rebase costs nothing but its time: the chain stays as it was.
        if (this.rebase === rebase) this.rebase = undefined;
      })
      .finally(() => source.close().catch(() => undefined));
    this.config.track?.(work);
  }

  /**
   * The finished rebase, if this snapshot can start its chain from it: the rebase holds the state
   * at checkpoint c, and every chain file after c — plus this snapshot's delta, which covers the
   * changes since the last completed checkpoint — covers every change since c (each delta covers
   * the changes since the file before it, whose checkpoint is at most c). Not when the chain's full
   * is newer than c (an inline full replaced the state since).
   */
  private adoptRebase(storage: SnapshotStorage, chain: readonly SnapshotFileRef[]): Rebase | undefined {
    const rebase = this.rebase;
    if (rebase === undefined || rebase.staged === undefined || rebase.storage !== storage) return undefined;
    this.rebase = undefined;
    if (baseCheckpointOf(chain) > rebase.checkpointId) {
      void rebase.staged.discard().catch(() => undefined);
      return undefined;
    }
    return rebase;
  }

  private dropRebase(reason: string): void {
    const rebase = this.rebase;
    if (rebase === undefined) return;
    this.rebase = undefined;
    rebase.cancel.abort(
      new SnapshotWriteError(rebase.checkpointId, `background rebase cancelled: ${reason}`, { cancelled: true }),
    );
    if (rebase.staged !== undefined) void rebase.staged.discard().catch(() => undefined);
  }

  /** Number of snapshot files still being written; for tests and metrics. */
  get writesInFlight(): number {
    return this.writing.size;
  }

  notifyCheckpointComplete(checkpointId: number): void {
    const handle = this.pending.get(checkpointId);
    if (handle !== undefined && checkpointId > this.confirmed.checkpointId) {
      this.confirmed = { checkpointId, files: handle.files };
      this.segments = this.segments.filter((s) => s.checkpointId > checkpointId);
    }
    for (const id of this.pending.keys()) if (id <= checkpointId) this.pending.delete(id);
  }

  /** The aborted checkpoint's changes stay in their segment and go into the next delta. */
  notifyCheckpointAborted(checkpointId: number): void {
    this.pending.delete(checkpointId);
    this.writing.get(checkpointId)?.abort(cancelled(checkpointId, `checkpoint ${checkpointId} was aborted`));
  }

  /** Number of changed keys not yet covered by a completed checkpoint; for metrics. */
  get unconfirmedChanges(): number {
    return this.mergedSegments().size + this.changelog.size;
  }

  private mergedSegments(): Map<string, StoreWrite> {
    const last = this.segments[this.segments.length - 1];
    if (this.segments.length === 1 && last !== undefined) return new Map(last.changes);
    const merged = new Map<string, StoreWrite>();
    for (const segment of this.segments) for (const [id, write] of segment.changes) merged.set(id, write);
    return merged;
  }

  /** A new base is due: by the materialisation policy, or the chain-length rules. */
  private baseDue(chain: readonly SnapshotFileRef[], delta: ReadonlyMap<string, StoreWrite>): boolean {
    const policy = this.config.materialize;
    if (policy === undefined) return this.chainTooLong(chain, delta);
    let deltaBytes = 0;
    for (const file of chain) if (!isBaseFile(file)) deltaBytes += file.bytes;
    if (deltaBytes > 0 && policy.now() - this.lastBaseAt >= policy.intervalMs) return true;
    return deltaBytes + estimateBytes(delta) >= policy.deltaBytes;
  }

  /** The chain (with this delta) is too long, or its deltas outweigh its full file. */
  private chainTooLong(chain: readonly SnapshotFileRef[], delta: ReadonlyMap<string, StoreWrite>): boolean {
    if (chain.length + 1 > this.config.maxDeltaChainLength) return true;
    let fullBytes = 0;
    let deltaBytes = 0;
    for (const file of chain) {
      if (file.kind === 'full') fullBytes += file.bytes;
      else deltaBytes += file.bytes;
    }
    return deltaBytes + estimateBytes(delta) > this.config.maxDeltaToFullRatio * fullBytes;
  }

  private async write(job: SnapshotJob): Promise<KeyedStateHandle> {
    const { checkpointId, storage, range, source, delta, signal, adopted } = job;
    const kind = source === undefined ? 'delta' : 'full';
    let files: SnapshotFileRef[];
    try {
      if (source !== undefined) {
        files = await source.write({ checkpointId, storage, range, namePrefix: this.config.namePrefix, signal });
      } else {
        // Published here, in the checkpoint that first lists it, under that checkpoint's id: retention
        // may run while this checkpoint is in flight, and keeps files of checkpoints newer than the newest completed.
        const rebased = adopted?.staged === undefined ? [] : await adopted.staged.publish(checkpointId);
        // Streamed: a delta after a bulk load can be hundreds of MB; never encoded into one buffer.
        const name = `${this.config.namePrefix}/chk-${checkpointId}-delta-${randomBytes(4).toString('hex')}.bin`;
        const chunks = untilAborted(toAsync(encodeDeltaChunks(delta.values())), signal);
        const written = await writeSnapshotChunks(storage, name, chunks);
        const file: SnapshotFileRef = {
          path: written.path,
          kind,
          keyGroups: [range.start, range.end],
          bytes: written.bytes,
          checkpointId,
        };
        files = [...rebased, ...job.base, file];
      }
    } catch (error) {
      await source?.close().catch(() => undefined);
      if (signal.aborted) throw signal.reason;
      // Our own storage errors already say what to check; anything else gets the usual suspects.
      const hint = error instanceof StateError ? '' : ' (check disk space and permissions of the checkpoint storage)';
      throw new SnapshotWriteError(
        checkpointId,
        `writing the ${kind} keyed-state snapshot of checkpoint ${checkpointId} failed: ${messageOf(error)}; ` +
          `the checkpoint is declined and its changes go into the next one${hint}`,
        { cause: error },
      );
    }
    await source?.close();
    // Aborted while the last bytes were written: the file stays unreferenced (retention removes it).
    if (signal.aborted) throw signal.reason;
    const rocksDb = files.some((f) => f.kind === 'sst' || f.kind === 'sst-meta');
    const handle: KeyedStateHandle = {
      version: 1,
      maxParallelism: this.config.maxParallelism,
      checkpointId,
      files,
      ...(rocksDb ? { format: 'rocksdb-checkpoint' as const } : {}),
    };
    this.pending.set(checkpointId, handle);
    return handle;
  }
}

interface SnapshotJob {
  readonly checkpointId: number;
  readonly storage: SnapshotStorage;
  readonly range: KeyGroupRange;
  /** The inline base (a full snapshot); undefined for a delta. */
  readonly source: BaseSource | undefined;
  readonly delta: ReadonlyMap<string, StoreWrite>;
  /** The completed chain at the barrier, which a delta extends (without the files a rebase replaces). */
  readonly base: readonly SnapshotFileRef[];
  /** A finished rebase this snapshot's chain starts from. */
  readonly adopted: Rebase | undefined;
  readonly signal: AbortSignal;
}

/** Bytes a delta of these changes takes, roughly. */
function estimateBytes(delta: ReadonlyMap<string, StoreWrite>): number {
  let estimate = 0;
  for (const { key, value } of delta.values()) estimate += 8 + key.length + (value?.length ?? 0);
  return estimate;
}

function supportsStaging(storage: SnapshotStorage): boolean {
  return storage.writeStaged !== undefined && storage.publishStaged !== undefined;
}

function cancelled(checkpointId: number, why: string): SnapshotWriteError {
  return new SnapshotWriteError(checkpointId, `keyed-state snapshot of checkpoint ${checkpointId} cancelled: ${why}`, {
    cancelled: true,
  });
}

/** Stops between two chunks once `signal` fires; leaving the loop ends the store scan (its iterator). */
async function* untilAborted(chunks: AsyncIterable<Buffer>, signal: AbortSignal): AsyncGenerator<Buffer> {
  for await (const chunk of chunks) {
    if (signal.aborted) throw signal.reason;
    yield chunk;
  }
}

async function* toAsync<T>(items: Iterable<T>): AsyncGenerator<T> {
  yield* items;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
