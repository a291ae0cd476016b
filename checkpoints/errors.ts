import { CdcflowError } from '../state/errors.ts';
import type { CdcflowErrorOptions } from '../state/errors.ts';

/** Base of every error the checkpoints layer throws. Defaults to an internal, non-retriable error. */
export class CheckpointError extends CdcflowError {
  constructor(message: string, options: Partial<CdcflowErrorOptions> = {}) {
    super(message, { domain: 'internal', ...options });
  }
}

/** Thrown when coordinator or storage options are invalid: fix the job configuration. */
export class CheckpointConfigError extends CheckpointError {
  constructor(message: string) {
    super(message, { domain: 'user' });
  }
}

/**
 * Thrown when a `_metadata` file cannot be parsed or fails validation (corrupt file, unknown
 * format version, paths escaping the checkpoint directory).
 */
export class CheckpointFormatError extends CheckpointError {
  readonly location: string;

  constructor(location: string, message: string, options: { cause?: unknown } = {}) {
    super(`checkpoint metadata at ${location}: ${message}`, { domain: 'user', ...options });
    this.location = location;
  }
}

/** Thrown when the checkpoint or savepoint asked for does not exist (or is incomplete). */
export class CheckpointNotFoundError extends CheckpointError {
  constructor(message: string) {
    super(message, { domain: 'user' });
  }
}

/** Thrown when reading or writing checkpoint storage fails; usually a disk or permission problem. */
export class CheckpointStorageError extends CheckpointError {
  constructor(message: string, options: { cause?: unknown; retriable?: boolean } = {}) {
    super(message, { domain: 'external', retriable: options.retriable ?? true, cause: options.cause });
  }
}

/**
 * Runs storage I/O, passing checkpoint errors through and turning anything else (fs, S3 client) into
 * a retriable `CheckpointStorageError` whose message `explain` writes from the cause.
 */
export async function asStorageError<T>(work: () => Promise<T>, explain: (error: unknown) => string): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof CheckpointError) throw error;
    throw new CheckpointStorageError(explain(error), { cause: error });
  }
}

/**
 * Thrown when a pending checkpoint is asked to move between lifecycle states the transition table
 * does not allow. Always a bug in the coordinator: report it.
 */
export class IllegalCheckpointTransitionError extends CheckpointError {
  readonly checkpointId: number;
  readonly from: string;
  readonly to: string;

  constructor(checkpointId: number, from: string, to: string) {
    super(
      `checkpoint ${checkpointId}: illegal lifecycle transition ${from} -> ${to} (a cdcflow bug; please report it)`,
    );
    this.checkpointId = checkpointId;
    this.from = from;
    this.to = to;
  }
}

/**
 * Rejects the promise of `triggerSavepoint` (and is reported in stats) when a checkpoint or savepoint
 * is aborted: timeout, a task declined, barrier injection or persisting failed, or the coordinator
 * stopped. Retriable: the next attempt may well succeed.
 */
export class CheckpointAbortedError extends CheckpointError {
  readonly checkpointId: number;
  readonly reason: string;

  constructor(checkpointId: number, reason: string, options: { cause?: unknown } = {}) {
    super(`checkpoint ${checkpointId} aborted: ${reason}`, { domain: 'external', retriable: true, ...options });
    this.checkpointId = checkpointId;
    this.reason = reason;
  }
}
