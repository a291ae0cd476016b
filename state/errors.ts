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
