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
  /** Whether its claim record exists. A POSIX claimant makes the folder, reads its restore point, then writes it. */
  readonly claimed: boolean;
}

/**
 * Remembers, per partition, since when this process has seen epoch n as the newest with a
 * completed checkpoint. A claimant reads its restore point before its claim becomes visible (on
 * S3 the claim and its restore point are one PUT): one that read while n had completed nothing
 * may still name an epoch older than n. Deleting only once n has been seen complete for longer
 * than any claim takes closes that window.
 */
export class EpochGcGrace {
  private readonly seen = new Map<string, { epoch: number; atMs: number }>();

  constructor(
    private readonly graceMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether `newestCompleted` of `partition` has been seen for at least the grace period. */
  settled(partition: string, newestCompleted: number): boolean {
    const at = this.seen.get(partition);
    if (at?.epoch !== newestCompleted) {
      this.seen.set(partition, { epoch: newestCompleted, atMs: this.now() });
      return this.graceMs === 0;
    }
    return this.now() - at.atMs >= this.graceMs;
  }
}

/** `CDCFLOW_EPOCH_GC_GRACE_MS`, else 5 minutes: far longer than a claim takes, short beside the collection interval's purpose. */
export function epochGcGraceMs(): number {
  const fromEnv = Number(process.env['CDCFLOW_EPOCH_GC_GRACE_MS']);
  return Number.isFinite(fromEnv) && fromEnv >= 0 ? fromEnv : 300_000;
}

/** The newest epoch with a completed checkpoint, if any. */
export function newestCompletedEpoch(facts: readonly EpochFacts[]): number | undefined {
  const completed = facts.filter((f) => f.completed).map((f) => f.epoch);
  return completed.length === 0 ? undefined : Math.max(...completed);
}

/** Epochs that may be deleted, oldest first. */
export function supersededEpochs(facts: readonly EpochFacts[]): number[] {
  const newestCompleted = newestCompletedEpoch(facts) ?? Number.NaN;
  if (!Number.isFinite(newestCompleted)) return [];
  // A claim after n without its record is still choosing its restore point: it may name any epoch.
  if (facts.some((f) => f.epoch > newestCompleted && !f.claimed)) return [];
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
