import { randomBytes } from 'node:crypto';
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { SnapshotWriteError } from './errors.ts';
import type { KeyGroupRange } from './key-groups.ts';
import type { KeyedStateHandle, SnapshotFileRef } from './snapshot-handle.ts';
import { readFileChunks, writeSnapshotChunks, type SnapshotStorage } from './snapshot-storage.ts';

export interface SstSnapshotterConfig {
  readonly maxParallelism: number;
  /** Prefix of uploaded file names, unique per operator subtask. */
  readonly namePrefix: string;
}

/**
 * Incremental snapshots from RocksDB checkpoints (Flink's incremental RocksDB checkpoints). At
 * the barrier the database is checkpointed into a scratch directory (memtables flushed, SST files
 * hard-linked: cheap whatever the state size). The asynchronous part uploads the SST files the
 * last *completed* checkpoint did not already upload — SST files are immutable, so a file of the
 * same name in the same database is the same bytes — plus the checkpoint's small MANIFEST,
 * CURRENT, OPTIONS and WAL files. The handle lists every file the checkpoint needs; shared files
 * are kept by checkpoint retention as long as a retained handle lists them (reference counting
 * by listing), so nothing is rewritten periodically: bytes uploaded follow what RocksDB wrote
 * (flushes and compactions) since the last checkpoint.
 */
export class SstSnapshotter {
  /** Uploaded SST files of the last completed checkpoint, by name in the database directory. */
  private confirmed = new Map<string, SnapshotFileRef>();
  private readonly pending = new Map<number, Map<string, SnapshotFileRef>>();
  private readonly writing = new Map<number, AbortController>();

  constructor(private readonly config: SstSnapshotterConfig) {}

  /** After a restore: files of `handle` (the database now open) may be reused; none otherwise. */
  reset(handle: KeyedStateHandle | undefined): void {
    this.pending.clear();
    this.confirmed = new Map();
    for (const file of handle?.files ?? []) {
      if (file.kind === 'sst' && file.localName !== undefined) this.confirmed.set(file.localName, file);
    }
  }

  get writesInFlight(): number {
    return this.writing.size;
  }

  /** Uploads the checkpoint in `dir` (then deletes it); rejects with a `SnapshotWriteError`. */
  async write(
    checkpointId: number,
    dir: string,
    storage: SnapshotStorage,
    range: KeyGroupRange,
  ): Promise<KeyedStateHandle> {
    const cancel = new AbortController();
    this.writing.get(checkpointId)?.abort();
    this.writing.set(checkpointId, cancel);
    const reusable = this.confirmed;
    const keyGroups: [number, number] = [range.start, range.end];
    try {
      const files: SnapshotFileRef[] = [];
      const uploaded = new Map<string, SnapshotFileRef>();
      const names = (await readdir(dir)).sort();
      for (const name of names) {
        if (cancel.signal.aborted) throw cancelled(checkpointId);
        const bytes = (await stat(join(dir, name))).size;
        const sst = name.endsWith('.sst');
        const previous = sst ? reusable.get(name) : undefined;
        if (previous !== undefined && previous.bytes === bytes) {
          files.push({ ...previous, keyGroups });
          uploaded.set(name, previous);
          continue;
        }
        const kind = sst ? 'sst' : 'sst-meta';
        const target = `${this.config.namePrefix}/chk-${checkpointId}-${kind}-${randomBytes(4).toString('hex')}-${name}`;
        const written = await writeSnapshotChunks(storage, target, readFileChunks(join(dir, name)));
        const ref: SnapshotFileRef = { path: written.path, kind, keyGroups, bytes, checkpointId, localName: name };
        files.push(ref);
        if (sst) uploaded.set(name, ref);
      }
      if (cancel.signal.aborted) throw cancelled(checkpointId);
      this.pending.set(checkpointId, uploaded);
      return {
        version: 1,
        maxParallelism: this.config.maxParallelism,
        checkpointId,
        files,
        format: 'rocksdb-checkpoint',
      };
    } catch (error) {
      if (error instanceof SnapshotWriteError) throw error;
      throw new SnapshotWriteError(
        checkpointId,
        `uploading the RocksDB checkpoint ${checkpointId} failed: ${(error as Error).message}; ` +
          'the checkpoint is aborted and the next one uploads its files again',
        { cause: error },
      );
    } finally {
      if (this.writing.get(checkpointId) === cancel) this.writing.delete(checkpointId);
      await rm(dir, { recursive: true, force: true });
    }
  }

  notifyCheckpointComplete(checkpointId: number): void {
    const uploaded = this.pending.get(checkpointId);
    if (uploaded !== undefined) this.confirmed = uploaded;
    for (const id of this.pending.keys()) if (id <= checkpointId) this.pending.delete(id);
  }

  notifyCheckpointAborted(checkpointId: number): void {
    this.pending.delete(checkpointId);
    this.writing.get(checkpointId)?.abort();
  }

  cancelAll(): void {
    for (const cancel of this.writing.values()) cancel.abort();
  }
}

function cancelled(checkpointId: number): SnapshotWriteError {
  return new SnapshotWriteError(checkpointId, `the upload of RocksDB checkpoint ${checkpointId} was cancelled`, {
    cancelled: true,
  });
}
