/**
 * What a retention run keeps and deletes, decided once for every checkpoint storage (local and
 * object store differ only in how they delete).
 */
import { CheckpointConfigError } from './errors.ts';
import { parseCheckpointDirName } from './local-layout.ts';
import { stateFileCheckpointId } from './state-files.ts';
import type { CheckpointListing, RetainOptions, RetentionResult, StoredCheckpoint } from './storage.ts';

export interface RetentionPlan {
  readonly retained: readonly StoredCheckpoint[];
  readonly discarded: readonly StoredCheckpoint[];
  /** Ids of incomplete checkpoint folders older than the newest retained one: aborted, not in flight. */
  readonly deadIds: readonly number[];
  /** Checkpoints and savepoints retention keeps, whose state files must survive. */
  readonly kept: readonly StoredCheckpoint[];
  /**
   * A state file written by a checkpoint still in flight: ids only grow, so its id is above every
   * completed checkpoint and savepoint, and no metadata lists the file yet.
   */
  isInFlight(path: string): boolean;
  /**
   * Whether retention must leave a state file alone: a kept checkpoint references it, or it is in
   * flight. `locate` names a kept checkpoint's shared file the way the caller will ask about it
   * (absolute path, object key…), or `undefined` where that checkpoint's files live elsewhere.
   */
  keepsFile(
    locate: (checkpoint: StoredCheckpoint, sharedFile: string) => string | undefined,
  ): (path: string) => boolean;
  /** What `retain` reports once the storage has deleted `deletedFiles`. */
  result(deletedFiles: string[]): RetentionResult;
}

/** Checked before a storage lists anything, so a bad count is a config error and never an I/O one. */
export function assertRetainCount(keep: number): void {
  if (!Number.isSafeInteger(keep) || keep < 1)
    throw new CheckpointConfigError(`retain(keep) needs an integer >= 1, got ${keep}`);
}

export function planRetention(listing: CheckpointListing, keep: number, options: RetainOptions = {}): RetentionPlan {
  assertRetainCount(keep);
  const { checkpoints, savepoints, invalid } = listing;
  const keepFrom = options.keepFrom ?? Number.POSITIVE_INFINITY;
  const cut = Math.max(0, checkpoints.length - keep);
  const retained = checkpoints.filter((s, i) => i >= cut || s.metadata.checkpointId >= keepFrom);
  const discarded = checkpoints.filter((s, i) => i < cut && s.metadata.checkpointId < keepFrom);
  const newestRetained = retained.at(-1)?.metadata.checkpointId ?? 0;
  const newestCompleted = Math.max(newestRetained, ...savepoints.map((s) => s.metadata.checkpointId));
  // Incomplete folders newer than the newest completed checkpoint may be in flight and are left alone.
  const deadIds = invalid
    .map((i) => parseCheckpointDirName(i.location.split(/[\\/]/).at(-1) ?? ''))
    .filter((id): id is number => id !== undefined && id < newestRetained);
  const kept = [...retained, ...savepoints];
  const isInFlight = (path: string): boolean => (stateFileCheckpointId(path) ?? 0) > newestCompleted;
  return {
    retained,
    discarded,
    deadIds,
    kept,
    isInFlight,
    keepsFile(locate) {
      const files = new Set<string>();
      for (const s of kept)
        for (const file of s.metadata.sharedFiles) {
          const located = locate(s, file);
          if (located !== undefined) files.add(located);
        }
      return (path) => files.has(path) || isInFlight(path);
    },
    result: (deletedFiles) => ({
      retainedCheckpointIds: retained.map((s) => s.metadata.checkpointId),
      deletedCheckpointIds: discarded.map((s) => s.metadata.checkpointId),
      deletedFiles,
    }),
  };
}
