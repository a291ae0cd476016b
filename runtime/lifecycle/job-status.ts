/** The lifecycle vocabulary shared by the environment, the REST API and the CLI. */
import type { HealthReport } from '../job-health.ts';
import type { CoordinatorStatus } from '../../checkpoints/index.ts';
import { CdcflowError } from '../../state/errors.ts';
import type { LeaseInfo } from './job-lease.ts';

export type JobState =
  'created' | 'restoring' | 'running' | 'backing-off' | 'stopping' | 'stopped' | 'finished' | 'cancelled' | 'failed';

export interface StopOptions {
  /** End in a savepoint (`true`: named `stop-<id>`; a string: that name) instead of a checkpoint. */
  readonly savepoint?: boolean | string;
  /** Past this the job is cancelled and `stop` rejects. @default lifecycle.stopDeadlineMs (30 s) */
  readonly deadlineMs?: number;
}

export interface StopResult {
  readonly state: 'stopped';
  /** The final checkpoint or savepoint; undefined when the job stopped while not running (back-off, before the first attempt). */
  readonly checkpointId: number | undefined;
  /** The savepoint's folder, when stopped with one. */
  readonly savepointPath?: string;
}

export interface JobException {
  readonly atMs: number;
  readonly message: string;
}

export interface JobSnapshot {
  readonly job: string;
  readonly state: JobState;
  readonly parallelism: number;
  /** Absolute folder of the job's checkpoints (`<root>/<job>`). */
  readonly checkpointRoot: string;
  readonly startedAtMs: number | undefined;
  readonly restarts: number;
  /** Where the current attempt restored from; undefined for a fresh start. */
  readonly restoredFrom: string | undefined;
  readonly lastCompletedCheckpoint: { readonly checkpointId: number; readonly completedAtMs: number } | undefined;
  readonly coordinator: CoordinatorStatus | undefined;
  /** Newest last, at most 20. */
  readonly exceptions: readonly JobException[];
  readonly lease: LeaseInfo | undefined;
  readonly watermarks: unknown;
  /** Whether the job makes progress (runtime/job-health.ts): what /healthz answers. */
  readonly health: HealthReport;
}

export type JobEvent =
  | { readonly type: 'state'; readonly state: JobState; readonly atMs: number }
  | {
      readonly type: 'checkpoint';
      readonly checkpointId: number;
      readonly kind: 'checkpoint' | 'savepoint';
      readonly atMs: number;
    }
  | { readonly type: 'exception'; readonly message: string; readonly atMs: number };

/** The stop did not finish within its deadline: the job was cancelled. */
export class StopDeadlineExceededError extends CdcflowError {
  constructor(
    readonly deadlineMs: number,
    /** What the stop was still waiting for (see JobControl.pendingWork). */
    readonly gaveUpOn = 'the final checkpoint and sink commits',
  ) {
    super(
      `the job did not stop within ${deadlineMs} ms (gave up on ${gaveUpOn}), so it was cancelled: prepared sink transactions stay until the next start commits or rolls them back. Raise lifecycle.stopDeadlineMs if stops need longer.`,
      { domain: 'external', retriable: false },
    );
  }
}

/** stop()/cancel() on a job that is not running. */
export class JobNotRunningError extends CdcflowError {
  constructor(job: string, state: JobState) {
    super(`job '${job}' is ${state}: there is nothing to stop`, { domain: 'user', retriable: false });
  }
}
