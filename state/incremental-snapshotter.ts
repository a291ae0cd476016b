import { randomBytes } from 'node:crypto';
import type { KeyGroupRange } from './key-groups.ts';
import type { StoreWrite } from './key-value-store.ts';
import type { KeyedStateHandle, SnapshotFileRef } from './snapshot-handle.ts';
import { encodeSnapshot } from './snapshot-format.ts';
import { writeSnapshotChunks, type SnapshotStorage } from './snapshot-storage.ts';

export interface SnapshotterConfig {
  readonly maxParallelism: number;
  readonly maxDeltaChainLength: number;
  readonly maxDeltaToFullRatio: number;
  readonly namePrefix: string;
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
 */
export class IncrementalSnapshotter {
  private changelog = new Map<string, StoreWrite>();
  private segments: Segment[] = [];
  private confirmed: { checkpointId: number; files: readonly SnapshotFileRef[] } = { checkpointId: -1, files: [] };
  private readonly pending = new Map<number, KeyedStateHandle>();

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
   * view when called synchronously (RocksDB iterators do).
   */
  snapshot(
    checkpointId: number,
    storage: SnapshotStorage,
    range: KeyGroupRange,
    fullSnapshot: () => AsyncIterable<Buffer>,
  ): Promise<KeyedStateHandle> {
    this.segments.push({ checkpointId, changes: this.changelog });
    this.changelog = new Map();
    const delta = this.mergedSegments();
    const full = this.shouldWriteFull(delta);
    const source = full ? fullSnapshot() : undefined;
    return this.write(checkpointId, storage, range, source, delta);
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

  private async write(
    checkpointId: number,
    storage: SnapshotStorage,
    range: KeyGroupRange,
    source: AsyncIterable<Buffer> | undefined,
    delta: ReadonlyMap<string, StoreWrite>,
  ): Promise<KeyedStateHandle> {
    const kind = source === undefined ? 'delta' : 'full';
    const name = `${this.config.namePrefix}/chk-${checkpointId}-${kind}-${randomBytes(4).toString('hex')}.bin`;
    let written: { path: string; bytes: number };
    if (source === undefined) {
      const data = encodeSnapshot(delta.values());
      written = { path: await storage.write(name, data), bytes: data.length };
    } else {
      // Streamed: a full snapshot is as big as the state, so it is never held in memory at once.
      written = await writeSnapshotChunks(storage, name, source);
    }
    const file: SnapshotFileRef = {
      path: written.path,
      kind,
      keyGroups: [range.start, range.end],
      bytes: written.bytes,
      checkpointId,
    };
    const files = kind === 'full' ? [file] : [...this.confirmed.files, file];
    const handle: KeyedStateHandle = { version: 1, maxParallelism: this.config.maxParallelism, checkpointId, files };
    this.pending.set(checkpointId, handle);
    return handle;
  }
}
