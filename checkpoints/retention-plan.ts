/**
 * What a retention run keeps and deletes, decided once for every checkpoint storage (local and
 * object store differ only in how they delete).
 */
import { parseCheckpointDirName } from './local-layout.ts';
import { stateFileCheckpointId } from './state-files.ts';
import type { CheckpointListing, RetainOptions, StoredCheckpoint } from './storage.ts';

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
}

export function planRetention(listing: CheckpointListing, keep: number, options: RetainOptions = {}): RetentionPlan {
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
  return {
    retained,
    discarded,
    deadIds,
    kept: [...retained, ...savepoints],
    isInFlight: (path) => (stateFileCheckpointId(path) ?? 0) > newestCompleted,
  };
}
