import { join } from 'node:path';
import type { CheckpointMetadata } from './checkpoint-metadata.ts';

/** A completed checkpoint or savepoint as found in storage. */
export interface StoredCheckpoint {
  readonly metadata: CheckpointMetadata;
  /** Directory holding the `_metadata` file. */
  readonly location: string;
  /** Directory the metadata's file paths (`sharedFiles`, handle `files[].path`) are relative to. */
  readonly fileRoot: string;
  /**
   * Object stores only: URL of the folder in the store the file paths are relative to (the job
   * folder for checkpoints, the savepoint's own folder for savepoints). Files are fetched from
   * there into `fileRoot` when read; local storage leaves it unset.
   */
  readonly remoteFileRoot?: string;
}

/** A checkpoint directory that exists but cannot be used (no `_metadata` yet, or corrupt). */
export interface InvalidCheckpoint {
  readonly location: string;
  readonly reason: string;
}

export interface CheckpointListing {
  /** Completed checkpoints, ascending by id. */
  readonly checkpoints: readonly StoredCheckpoint[];
  /** Completed savepoints, ascending by id. */
  readonly savepoints: readonly StoredCheckpoint[];
  /** Incomplete or corrupt directories; never used for restore. */
  readonly invalid: readonly InvalidCheckpoint[];
}

export interface RetentionResult {
  readonly retainedCheckpointIds: readonly number[];
  readonly deletedCheckpointIds: readonly number[];
  /** Deleted state files, relative to the job directory. */
  readonly deletedFiles: readonly string[];
}

/**
 * Where to restore from: a checkpoint id, a savepoint name (in this job's `savepoints/` folder),
 * or a path to a checkpoint/savepoint directory or its `_metadata` file (e.g. a moved savepoint).
 */
export type CheckpointRef = number | string;

/**
 * Durable home of one job's checkpoints and savepoints: the local filesystem
 * (`LocalCheckpointStorage`) or an S3-compatible object store (`S3CheckpointStorage`), chosen by
 * URL in `checkpoint-storage-for.ts`.
 */
export interface CheckpointStorage {
  readonly jobName: string;
  /** Where state backends write files for new checkpoints; handle paths are relative to it. */
  readonly fileRoot: string;
  /**
   * Durably marks `checkpointId` as used before its barrier goes out, so that after a crash
   * `highestCheckpointId` is above it and the id (and the sink transaction names derived from it)
   * is never reused.
   */
  reserve(checkpointId: number): Promise<void>;
  /**
   * Durably writes the metadata of a completed checkpoint; refuses to overwrite an existing one.
   * If it throws, nothing restorable is left behind (the caller tells sinks to roll back).
   */
  writeCheckpoint(metadata: CheckpointMetadata): Promise<StoredCheckpoint>;
  /** Copies the referenced files into the savepoint, then durably writes its metadata. Same failure rule. */
  writeSavepoint(metadata: CheckpointMetadata, name: string): Promise<StoredCheckpoint>;
  /** Highest-id completed checkpoint or savepoint; incomplete and corrupt ones are skipped. */
  latestCompleted(): Promise<StoredCheckpoint | undefined>;
  /** Throws `CheckpointNotFoundError` if `ref` names nothing complete. */
  load(ref: CheckpointRef): Promise<StoredCheckpoint>;
  list(): Promise<CheckpointListing>;
  /** Highest id ever used in storage, complete or not (0 if none): new ids must exceed it. */
  highestCheckpointId(): Promise<number>;
  /**
   * Keeps the newest `keep` completed checkpoints (and every one from `keepFrom` on) and deletes
   * older ones plus every state file no retained checkpoint or savepoint references — except files
   * named after a checkpoint newer than the newest completed one (`chk-<id>-…`, see
   * state-files.ts): those belong to checkpoints in flight, not referenced by any metadata yet.
   */
  retain(keep: number, options?: RetainOptions): Promise<RetentionResult>;
  /**
   * Makes the state files of `stored` (a savepoint, a moved checkpoint) part of this job's own
   * files before a restore from it, so later incremental checkpoints can keep referencing them.
   * Optional: without it the runtime copies them into `fileRoot` on the local filesystem.
   */
  adoptFiles?(stored: StoredCheckpoint): Promise<void>;
}

export interface RetainOptions {
  /** Completed checkpoints with this id or higher are kept too: a checkpoint in flight may build on them. */
  readonly keepFrom?: number;
}

/** Absolute location of a state file referenced by `stored`'s metadata or handles. */
export function resolveStateFile(stored: StoredCheckpoint, path: string): string {
  return join(stored.fileRoot, path);
}
