import type { CheckpointListing, StoredCheckpoint } from './storage.ts';

/**
 * The checkpoint or savepoint with the highest id. Savepoints count: sinks committed at a savepoint,
 * so restoring an older checkpoint would replay records whose effects are already visible.
 */
export function latestCompleted({ checkpoints, savepoints }: CheckpointListing): StoredCheckpoint | undefined {
  return [...checkpoints, ...savepoints].reduce<StoredCheckpoint | undefined>(
    (best, s) => (best === undefined || s.metadata.checkpointId > best.metadata.checkpointId ? s : best),
    undefined,
  );
}

/** The highest id in use: checkpoint folders (`ids`, complete or not) and savepoints alike. */
export function highestUsedId(ids: readonly number[], { savepoints }: CheckpointListing): number {
  return Math.max(0, ...ids, ...savepoints.map((s) => s.metadata.checkpointId));
}
