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
    this.confirmed = sstFilesByName(handle?.files ?? []);
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
    try {
      const files = await uploadRocksDbCheckpoint({
        checkpointId,
        dir,
        storage,
        range,
        namePrefix: this.config.namePrefix,
        reusable: this.confirmed,
        signal: cancel.signal,
      });
      if (cancel.signal.aborted) throw cancelled(checkpointId);
      this.pending.set(checkpointId, sstFilesByName(files));
      return {
        version: 1,
        maxParallelism: this.config.maxParallelism,
        checkpointId,
        files,
        format: 'rocksdb-checkpoint',
      };
    } catch (error) {
      throw asWriteError(checkpointId, error);
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

/** Uploaded SST files among `files`, by their name in the database directory. */
export function sstFilesByName(files: readonly SnapshotFileRef[]): Map<string, SnapshotFileRef> {
  const byName = new Map<string, SnapshotFileRef>();
  for (const file of files) if (file.kind === 'sst' && file.localName !== undefined) byName.set(file.localName, file);
  return byName;
}

export interface RocksDbCheckpointUpload {
  readonly checkpointId: number;
  /** The RocksDB checkpoint directory (hard-linked SST files, MANIFEST, CURRENT, OPTIONS, WAL). */
  readonly dir: string;
  readonly storage: SnapshotStorage;
  readonly range: KeyGroupRange;
  readonly namePrefix: string;
  /** SST files a retained checkpoint lists, by name: listed again, not uploaded. */
  readonly reusable: ReadonlyMap<string, SnapshotFileRef>;
  readonly signal: AbortSignal;
  /**
   * Writes each new file into the staging area instead (a background materialisation): `path` is
   * then the staged name, to be published by the checkpoint that first lists it.
   */
  readonly staged?: boolean;
  /** Hears of each staged file as soon as it is written (to discard them if a later one fails). */
  readonly onStaged?: (name: string) => void;
}

/**
 * The files of a RocksDB checkpoint as snapshot refs: SST files in `reusable` (same name and size
 * — SST files are immutable and numbered once per database) are listed as they are, every other
 * file is written through the storage. Stops between files once `signal` fires.
 */
export async function uploadRocksDbCheckpoint(upload: RocksDbCheckpointUpload): Promise<SnapshotFileRef[]> {
  const { checkpointId, dir, storage, range, signal } = upload;
  const keyGroups: [number, number] = [range.start, range.end];
  const files: SnapshotFileRef[] = [];
  const names = (await readdir(dir)).sort();
  for (const name of names) {
    if (signal.aborted) throw cancelled(checkpointId);
    const bytes = (await stat(join(dir, name))).size;
    const sst = name.endsWith('.sst');
    const previous = sst ? upload.reusable.get(name) : undefined;
    if (previous !== undefined && previous.bytes === bytes) {
      files.push({ ...previous, keyGroups });
      continue;
    }
    const kind = sst ? 'sst' : 'sst-meta';
    const target = `${upload.namePrefix}/chk-${checkpointId}-${kind}-${randomBytes(4).toString('hex')}-${name}`;
    let path: string;
    if (upload.staged === true) {
      upload.onStaged?.(target);
      await (storage.writeStaged as NonNullable<SnapshotStorage['writeStaged']>)(
        target,
        readFileChunks(join(dir, name)),
      );
      path = target;
    } else {
      path = (await writeSnapshotChunks(storage, target, readFileChunks(join(dir, name)))).path;
    }
    files.push({ path, kind, keyGroups, bytes, checkpointId, localName: name });
  }
  return files;
}

export function asWriteError(checkpointId: number, error: unknown): SnapshotWriteError {
  if (error instanceof SnapshotWriteError) return error;
  return new SnapshotWriteError(
    checkpointId,
    `uploading the RocksDB checkpoint ${checkpointId} failed: ${(error as Error).message}; ` +
      'the checkpoint is aborted and the next one uploads its files again',
    { cause: error },
  );
}

function cancelled(checkpointId: number): SnapshotWriteError {
  return new SnapshotWriteError(checkpointId, `the upload of RocksDB checkpoint ${checkpointId} was cancelled`, {
    cancelled: true,
  });
}
