/**
 * Root of every error cdcflow throws. `domain` says whose move it is (fix the job, fix the
 * environment, or report a bug); `retriable` tells the retry helper whether trying again can help.
 */
export type ErrorDomain = 'user' | 'external' | 'internal';

export interface CdcflowErrorOptions {
  readonly domain: ErrorDomain;
  readonly retriable?: boolean;
  readonly cause?: unknown;
}

export class CdcflowError extends Error {
  readonly domain: ErrorDomain;
  readonly retriable: boolean;

  constructor(message: string, options: CdcflowErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.domain = options.domain;
    this.retriable = options.retriable ?? false;
  }
}

/** Thrown when state cannot be read, written, snapshotted or restored. */
export class StateError extends CdcflowError {
  constructor(message: string, options: Partial<CdcflowErrorOptions> = {}) {
    super(message, { domain: 'internal', ...options });
  }
}

/**
 * A value keyed state refuses to store (nested too deep, or not serialisable). Deterministic: the
 * same record fails the same way on every retry, so the operator dead-letters it (or the job fails
 * fast) instead of restarting.
 */
export class UnstorableValueError extends StateError {
  constructor(message: string, cause?: unknown) {
    super(message, { domain: 'user', retriable: false, ...(cause === undefined ? {} : { cause }) });
  }
}

/**
 * The asynchronous part of a keyed-state snapshot (writing its file) failed, or was cancelled
 * because its checkpoint was aborted or the backend closed. The runtime declines that checkpoint
 * with this message; nothing is lost: the changes it held go into the next checkpoint's snapshot.
 */
export class SnapshotWriteError extends StateError {
  readonly checkpointId: number;
  /** True when the write was stopped on purpose (checkpoint aborted, backend closing), not a failure. */
  readonly cancelled: boolean;

  constructor(checkpointId: number, message: string, options: { cause?: unknown; cancelled?: boolean } = {}) {
    super(message, { domain: options.cancelled === true ? 'internal' : 'external', retriable: true, cause: options.cause });
    this.checkpointId = checkpointId;
    this.cancelled = options.cancelled ?? false;
  }
}
