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
