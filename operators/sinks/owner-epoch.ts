/**
 * The owner epoch of a partition task (group mode, runtime/group/): which claim of a source
 * partition this process holds. Registered by the group runner under the task's job name before
 * the task's pipeline opens; two-phase sinks read it to fence older owners (a paused process that
 * lost the partition and woke up) in the same transaction as their writes.
 */
import { causedBy, CdcflowError } from '../../state/errors.ts';

export interface OwnerEpoch {
  /** Strictly increasing per partition over every claim ever made. */
  readonly epoch: number;
  /** Who holds it (`<host> pid <pid>`), recorded beside each commit. */
  readonly owner: string;
  /**
   * The claim that followed this one, if any, read from the claim store. Sinks without a fence of
   * their own in the external system (Kafka) ask it before they begin or commit a transaction.
   */
  readonly successor?: () => Promise<SuccessorClaim | undefined>;
}

/** A newer owner's claim: its epoch and, once known, the checkpoint it restored from. */
export interface SuccessorClaim {
  readonly epoch: number;
  /** undefined while the claimant is still choosing (its record is not written yet). */
  readonly restore: { readonly checkpointId: number | undefined } | undefined;
}

/**
 * What an older owner may still do with checkpoint `checkpointId`'s transaction once a newer owner
 * exists: `commit` when the newer owner restored from that checkpoint or a later one (its restore
 * commits the same transaction; committing it twice is harmless), `abort` when it restored from
 * an earlier one (the checkpoint is void: the newer owner replays its records), `leave` while the
 * newer claim's restore point is not known yet (the newer owner's restore aborts what is open).
 */
export function fateAfterSuccessor(checkpointId: number, successor: SuccessorClaim): 'commit' | 'abort' | 'leave' {
  if (successor.restore === undefined) return 'leave';
  const restored = successor.restore.checkpointId;
  return restored !== undefined && restored >= checkpointId ? 'commit' : 'abort';
}

const epochs = new Map<string, OwnerEpoch>();

export function registerOwnerEpoch(jobName: string, epoch: OwnerEpoch): () => void {
  epochs.set(jobName, epoch);
  return () => {
    if (epochs.get(jobName) === epoch) epochs.delete(jobName);
  };
}

/** The epoch of the partition task `jobName`, or undefined outside group mode. */
export function ownerEpochOf(jobName: string): OwnerEpoch | undefined {
  return epochs.get(jobName);
}

/**
 * Each owner epoch numbers its checkpoints from `epoch × 2^32` (the coordinator's
 * `firstCheckpointId`): two owners restored from the same checkpoint never name a checkpoint, a
 * sink transaction or a commit marker alike, and a transaction's epoch is read off its id.
 */
const EPOCH_CHECKPOINT_STRIDE = 2 ** 32;

export function firstCheckpointIdOfEpoch(epoch: number): number {
  return epoch * EPOCH_CHECKPOINT_STRIDE;
}

/** The owner epoch whose range `checkpointId` is in (0 for ids below every epoch's range). */
export function epochOfCheckpointId(checkpointId: number): number {
  return Math.floor(checkpointId / EPOCH_CHECKPOINT_STRIDE);
}

/** A newer owner claimed the partition: this process must not commit for it any more. */
export class OwnershipLostError extends CdcflowError {
  constructor(
    readonly instance: string,
    readonly epoch: number,
    readonly newerEpoch: number | undefined,
    options: { cause?: unknown } = {},
  ) {
    super(
      `sink instance '${instance}' was fenced: this process holds owner epoch ${epoch} but the partition was claimed again${newerEpoch === undefined ? '' : ` (epoch ${newerEpoch})`}; ` +
        'another process owns it now. Nothing is committed; the partition task is dropped (a rebalance moved it while this process was paused or cut off).',
      { domain: 'external', retriable: false, ...options },
    );
  }
}

/** Whether `error` or one of its causes is an OwnershipLostError. */
export function isOwnershipLost(error: unknown): boolean {
  return causedBy(error, OwnershipLostError);
}
