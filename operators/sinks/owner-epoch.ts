/**
 * The owner epoch of a partition task (group mode, runtime/group/): which claim of a source
 * partition this process holds. Registered by the group runner under the task's job name before
 * the task's pipeline opens; two-phase sinks read it to fence older owners (a paused process that
 * lost the partition and woke up) in the same transaction as their writes.
 */
import { CdcflowError } from '../../state/errors.ts';

export interface OwnerEpoch {
  /** Strictly increasing per partition over every claim ever made. */
  readonly epoch: number;
  /** Who holds it (`<host> pid <pid>`), recorded beside each commit. */
  readonly owner: string;
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

/** A newer owner claimed the partition: this process must not commit for it any more. */
export class OwnershipLostError extends CdcflowError {
  constructor(
    readonly instance: string,
    readonly epoch: number,
    readonly newerEpoch: number | undefined,
  ) {
    super(
      `sink instance '${instance}' was fenced: this process holds owner epoch ${epoch} but the partition was claimed again${newerEpoch === undefined ? '' : ` (epoch ${newerEpoch})`}; ` +
        'another process owns it now. Nothing is committed; the partition task is dropped (a rebalance moved it while this process was paused or cut off).',
      { domain: 'external', retriable: false },
    );
  }
}

/** Whether `error` or one of its causes is an OwnershipLostError. */
export function isOwnershipLost(error: unknown): boolean {
  let e: unknown = error;
  for (let depth = 0; e instanceof Error && depth < 8; depth++) {
    if (e instanceof OwnershipLostError) return true;
    e = e.cause;
  }
  return false;
}
