/**
 * Root of every error cdcflow throws. `domain` says whose move it is (fix the job, fix the
 * environment, or report a bug); `retriable` tells the restart strategy and the retry helper
 * whether trying again can help; `where` says where it happened (operator uid, subtask and,
 * where a record is involved, its topic/partition/offset and key). See docs/error-model.md.
 */
export type ErrorDomain = 'user' | 'external' | 'internal';

/** Where a record came from and which key it has, as far as the failing code knows. */
export interface RecordLocation {
  readonly topic?: string;
  readonly partition?: number;
  /** Kafka offsets are INT64: a decimal string. */
  readonly offset?: string;
  /** The key, rendered as JSON and cut to 200 characters (a key may be large or hold personal data). */
  readonly key?: string;
}

export interface ErrorLocation {
  /** Operator uid (sources and sinks are operators too). */
  readonly operator?: string | undefined;
  readonly subtask?: number | undefined;
  readonly record?: RecordLocation | undefined;
}

export interface CdcflowErrorOptions {
  readonly domain: ErrorDomain;
  readonly retriable?: boolean;
  readonly cause?: unknown;
  readonly where?: ErrorLocation | undefined;
}

export class CdcflowError extends Error {
  readonly domain: ErrorDomain;
  readonly retriable: boolean;
  /** Filled in by the layer that knows it: the record by the code that handled it, operator and subtask by the runtime. */
  where: ErrorLocation | undefined;

  constructor(message: string, options: CdcflowErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.domain = options.domain;
    this.retriable = options.retriable ?? false;
    this.where = options.where;
  }
}

/** Thrown when state cannot be read, written, snapshotted or restored. */
export class StateError extends CdcflowError {
  constructor(message: string, options: Partial<CdcflowErrorOptions> = {}) {
    super(message, { domain: 'internal', ...options });
  }
}

/**
 * A non-cdcflow error (a library's, a user function's, the platform's) as it left an operator:
 * its message and original class name are kept, `domain` and `retriable` come from
 * `classifyError` (error-classification.ts), the original is the `cause`.
 */
export class UnclassifiedError extends CdcflowError {
  /** `name` of the wrapped error (`TypeError`, `KafkaJSConnectionError`, …). */
  readonly originalName: string;

  constructor(message: string, options: CdcflowErrorOptions & { readonly originalName: string }) {
    super(message, options);
    this.originalName = options.originalName;
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
    super(message, {
      domain: options.cancelled === true ? 'internal' : 'external',
      retriable: true,
      cause: options.cause,
    });
    this.checkpointId = checkpointId;
    this.cancelled = options.cancelled ?? false;
  }
}

/** Whether `error` or one of its causes (up to 8 deep) is an instance of `type`. */
export function causedBy(error: unknown, type: abstract new (...args: never[]) => Error): boolean {
  let e: unknown = error;
  for (let depth = 0; e instanceof Error && depth < 8; depth++) {
    if (e instanceof type) return true;
    e = (e as Error).cause;
  }
  return false;
}
