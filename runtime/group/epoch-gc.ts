/**
 * Which owner epochs of a partition are superseded and may be deleted (their claim, checkpoints
 * and state files), decided from the claims alone so every store applies the same rule.
 *
 * A new owner copies the state files of the checkpoint it restores from into its own epoch
 * (`adoptFiles` at restore), so once an epoch has a completed checkpoint nothing newer needs an
 * older epoch's files — except through claims: a claimant restores from the newest claimed epoch's
 * latest completed checkpoint, or, when that epoch completed none (its owner died first), from that
 * epoch's own restore point, which names an older epoch. So, with n the newest epoch that completed
 * a checkpoint, every epoch older than n is superseded unless the restore point of a claim after n
 * names it. Never n itself or anything newer; nothing at all while no epoch completed one.
 */
export interface EpochFacts {
  readonly epoch: number;
  /** Whether the epoch's folder holds a completed checkpoint. */
  readonly completed: boolean;
  /** The epoch its claim's restore point lies in; undefined for a fresh start or no claim record yet. */
  readonly restoresFromEpoch: number | undefined;
}

/** Epochs that may be deleted, oldest first. */
export function supersededEpochs(facts: readonly EpochFacts[]): number[] {
  const newestCompleted = Math.max(...facts.filter((f) => f.completed).map((f) => f.epoch));
  if (!Number.isFinite(newestCompleted)) return [];
  // Only claims after n can still restore through a restore point: n restores from its own checkpoints.
  const named = new Set(facts.filter((f) => f.epoch > newestCompleted).flatMap((f) => f.restoresFromEpoch ?? []));
  return facts
    .map((f) => f.epoch)
    .filter((e) => e < newestCompleted && !named.has(e))
    .sort((a, b) => a - b);
}

/** The epoch a restore location lies in (`…/epoch-000003/…`), if any. */
export function epochOfLocation(location: string | null | undefined): number | undefined {
  const m = location == null ? null : /\/epoch-(\d+)\//.exec(location);
  return m === null ? undefined : Number(m[1]);
}
