import { systemClock } from './clock.ts';
import type { Clock } from './clock.ts';
import { CheckpointConfigError } from './errors.ts';
import type { CheckpointKind, CheckpointMetadata } from './checkpoint-metadata.ts';
import type { CheckpointStorage, RetentionResult } from './storage.ts';

/** One finished checkpoint or savepoint, for metrics (duration, size, failures, age of last success). */
export interface CheckpointStats {
  readonly checkpointId: number;
  readonly kind: CheckpointKind;
  readonly status: 'completed' | 'aborted';
  /** From trigger to completion (metadata durable) or abort, by the coordinator's clock. */
  readonly durationMs: number;
  /** Sum of the acknowledged snapshots' bytes (on abort: of those that arrived). */
  readonly bytes: number;
  readonly failureReason?: string;
}

/** Why an ack or decline was ignored. */
export type IgnoredReason =
  'unknown-checkpoint' | 'aborted' | 'completed' | 'unknown-task' | 'duplicate' | 'not-accepting';

/** Things worth a log line or a counter that are not per-checkpoint stats. */
export type CheckpointEvent =
  | { readonly type: 'triggered'; readonly checkpointId: number; readonly kind: CheckpointKind }
  | {
      readonly type: 'ignored-message';
      readonly message: 'ack' | 'decline';
      readonly taskId: string;
      readonly checkpointId: number;
      readonly reason: IgnoredReason;
    }
  | { readonly type: 'trigger-failed'; readonly kind: CheckpointKind; readonly error: unknown }
  | {
      readonly type: 'callback-failed';
      readonly callback: string;
      readonly checkpointId: number;
      readonly error: unknown;
    }
  | { readonly type: 'retention'; readonly checkpointId: number; readonly result: RetentionResult }
  | { readonly type: 'retention-failed'; readonly checkpointId: number; readonly error: unknown }
  | { readonly type: 'failure-threshold-exceeded'; readonly consecutiveFailures: number; readonly reason: string };

/**
 * Every checkpoint default, set once: the coordinator fills them in, and the job options
 * (runtime/job-options.ts) and the configuration schema (runtime/config/config-schema.ts) take them from here.
 */
export const CHECKPOINT_DEFAULTS = {
  intervalMs: 1000,
  timeoutMs: 60_000,
  minPauseMs: 0,
  maxConcurrentCheckpoints: 1,
  tolerableFailures: 3,
  retain: 3,
} as const;

export interface CheckpointCoordinatorOptions {
  /** Must equal `storage.jobName`. */
  readonly jobName: string;
  readonly storage: CheckpointStorage;
  /** Time between the starts of periodic checkpoints. @default 1000 */
  readonly intervalMs?: number;
  /** A checkpoint not fully acknowledged by then is aborted. @default 60000 */
  readonly timeoutMs?: number;
  /**
   * Checkpoints that may be in flight at once (Flink's `maxConcurrentCheckpoints`). With more than
   * one, the next checkpoint is triggered on the interval even while the previous one is still
   * being acknowledged or persisted; checkpoints still complete, and sinks still commit, in id
   * order (docs/checkpoint-commit-order.md). @default 1
   */
  readonly maxConcurrentCheckpoints?: number;
  /**
   * Lowest id this coordinator hands out. Group mode gives each owner epoch of a partition its own
   * id range, so two owners restored from the same checkpoint never name a checkpoint (hence a
   * sink transaction) alike. @default 1
   */
  readonly firstCheckpointId?: number;
  /** Minimum time between the end of one checkpoint and the start of the next periodic one; above 0 it means one at a time. @default 0 */
  readonly minPauseMs?: number;
  /** Consecutive failed checkpoints tolerated; one more calls `onFailureThresholdExceeded`. @default 3 */
  readonly tolerableFailures?: number;
  /** Completed checkpoints kept by retention (savepoints are never deleted). @default 3 */
  readonly retain?: number;
  /** Task ids (`${operatorUid}#${subtaskIndex}`) that must all acknowledge every checkpoint. */
  readonly tasks: readonly string[];
  /** Makes the sources record offsets for `checkpointId` and emit the barrier. */
  readonly triggerBarrier: (checkpointId: number, kind: CheckpointKind) => void | Promise<void>;
  /** Called only after the metadata is durable: sinks commit what they pre-committed. */
  readonly notifyComplete: (checkpointId: number, metadata: CheckpointMetadata) => void | Promise<void>;
  /** Sinks roll back what they pre-committed for `checkpointId`. */
  readonly notifyAborted: (checkpointId: number, reason: string) => void | Promise<void>;
  /** More than `tolerableFailures` checkpoints failed in a row: the restart strategy decides. */
  readonly onFailureThresholdExceeded: (reason: string) => void;
  /** @default no-op */
  readonly onStats?: (stats: CheckpointStats) => void;
  /** @default no-op */
  readonly onEvent?: (event: CheckpointEvent) => void;
  /** @default systemClock */
  readonly clock?: Clock;
}

export type ResolvedCoordinatorOptions = Required<CheckpointCoordinatorOptions>;

const TASK_ID = /^.+#\d+$/;

/** Validates the options and fills defaults; throws `CheckpointConfigError` naming the bad field. */
export function resolveCoordinatorOptions(options: CheckpointCoordinatorOptions): ResolvedCoordinatorOptions {
  if (options.storage.jobName !== options.jobName) {
    throw new CheckpointConfigError(
      `jobName "${options.jobName}" differs from the storage's jobName "${options.storage.jobName}"`,
    );
  }
  const resolved: ResolvedCoordinatorOptions = {
    ...CHECKPOINT_DEFAULTS,
    onStats: () => undefined,
    onEvent: () => undefined,
    clock: systemClock,
    firstCheckpointId: 1,
    ...withoutUndefined(options),
  };
  requireInt('intervalMs', resolved.intervalMs, 1);
  requireInt('timeoutMs', resolved.timeoutMs, 1);
  requireInt('minPauseMs', resolved.minPauseMs, 0);
  requireInt('maxConcurrentCheckpoints', resolved.maxConcurrentCheckpoints, 1);
  requireInt('tolerableFailures', resolved.tolerableFailures, 0);
  requireInt('firstCheckpointId', resolved.firstCheckpointId, 1);
  requireInt('retain', resolved.retain, 1);
  if (resolved.tasks.length === 0)
    throw new CheckpointConfigError('"tasks" must list at least one task id to wait for');
  const bad = resolved.tasks.find((id) => !TASK_ID.test(id));
  if (bad !== undefined)
    throw new CheckpointConfigError(`task id ${JSON.stringify(bad)} must look like "<operatorUid>#<subtaskIndex>"`);
  if (new Set(resolved.tasks).size !== resolved.tasks.length)
    throw new CheckpointConfigError('"tasks" lists a task id twice');
  return { ...resolved, tasks: [...resolved.tasks] };
}

function requireInt(name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new CheckpointConfigError(`"${name}" must be an integer >= ${min}, got ${String(value)}`);
  }
}

function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
