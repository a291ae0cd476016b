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
}

/** A full snapshot's encoded chunks over a view pinned at the barrier; `close` releases the view. */
export interface FullSnapshotSource {
  readonly chunks: AsyncIterable<Buffer>;
  close(): Promise<void>;
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

  constructor(private readonly config: SnapshotterConfig) {}

  record(writes: readonly StoreWrite[]): void {
    for (const write of writes) this.changelog.set(write.key.toString('latin1'), write);
  }

  /** Forget everything (restore); `base` becomes the completed chain new deltas build on. */
  reset(base: readonly SnapshotFileRef[], baseCheckpointId: number): void {
    this.changelog = new Map();
    this.segments = [];
    this.pending.clear();
    this.confirmed = { checkpointId: baseCheckpointId, files: base };
  }

  /**
   * Captures the delta synchronously (call right after flushing), then writes asynchronously.
   * `fullSnapshot` returns the encoded chunks of a full snapshot file; it must pin a consistent
   * view when called synchronously (RocksDB iterators read from the implicit snapshot taken when
   * they are created; the memory store copies its entry list). The promise rejects with a
   * `SnapshotWriteError` when the write fails or is cancelled.
   */
  snapshot(
    checkpointId: number,
    storage: SnapshotStorage,
    range: KeyGroupRange,
    fullSnapshot: () => FullSnapshotSource,
  ): Promise<KeyedStateHandle> {
    this.segments.push({ checkpointId, changes: this.changelog });
    this.changelog = new Map();
    const delta = this.mergedSegments();
    const full = this.shouldWriteFull(delta);
    const source = full ? fullSnapshot() : undefined;
    // The chain this snapshot builds on is the one completed at the barrier, not at the end of the write.
    const base = this.confirmed.files;
    const cancel = new AbortController();
    this.writing.get(checkpointId)?.abort(cancelled(checkpointId, 'a new snapshot with the same checkpoint id started'));
    this.writing.set(checkpointId, cancel);
    const written = this.write({ checkpointId, storage, range, source, delta, base, signal: cancel.signal });
    return written.finally(() => {
      if (this.writing.get(checkpointId) === cancel) this.writing.delete(checkpointId);
    });
  }

  /** Stops every write still running (the backend is closing); their promises reject as cancelled. */
  cancelAll(reason: string): void {
    for (const [id, cancel] of this.writing) cancel.abort(cancelled(id, reason));
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

  private shouldWriteFull(delta: ReadonlyMap<string, StoreWrite>): boolean {
    const chain = this.confirmed.files;
    if (chain.length === 0 || chain[0]?.kind !== 'full') return true;
    if (chain.length + 1 > this.config.maxDeltaChainLength) return true;
    let fullBytes = 0;
    let deltaBytes = 0;
    for (const file of chain) {
      if (file.kind === 'full') fullBytes += file.bytes;
      else deltaBytes += file.bytes;
    }
    let estimate = 0;
    for (const { key, value } of delta.values()) estimate += 8 + key.length + (value?.length ?? 0);
    return deltaBytes + estimate > this.config.maxDeltaToFullRatio * fullBytes;
  }

  private async write(job: SnapshotJob): Promise<KeyedStateHandle> {
    const { checkpointId, storage, range, source, delta, signal } = job;
    const kind = source === undefined ? 'delta' : 'full';
    const name = `${this.config.namePrefix}/chk-${checkpointId}-${kind}-${randomBytes(4).toString('hex')}.bin`;
    let written: { path: string; bytes: number };
    try {
      // Streamed, both: a full snapshot is as big as the state, a delta after a bulk load can be
      // hundreds of MB; neither is ever encoded into one buffer.
      const chunks = source === undefined ? toAsync(encodeDeltaChunks(delta.values())) : source.chunks;
      written = await writeSnapshotChunks(storage, name, untilAborted(chunks, signal));
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
    const file: SnapshotFileRef = {
      path: written.path,
      kind,
      keyGroups: [range.start, range.end],
      bytes: written.bytes,
      checkpointId,
    };
    const files = kind === 'full' ? [file] : [...job.base, file];
    const handle: KeyedStateHandle = { version: 1, maxParallelism: this.config.maxParallelism, checkpointId, files };
    this.pending.set(checkpointId, handle);
    return handle;
  }
}

interface SnapshotJob {
  readonly checkpointId: number;
  readonly storage: SnapshotStorage;
  readonly range: KeyGroupRange;
  /** The full snapshot's chunks; undefined for a delta. */
  readonly source: FullSnapshotSource | undefined;
  readonly delta: ReadonlyMap<string, StoreWrite>;
  /** The completed chain at the barrier, which a delta extends. */
  readonly base: readonly SnapshotFileRef[];
  readonly signal: AbortSignal;
}

function cancelled(checkpointId: number, why: string): SnapshotWriteError {
  return new SnapshotWriteError(checkpointId, `keyed-state snapshot of checkpoint ${checkpointId} cancelled: ${why}`, { cancelled: true });
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
