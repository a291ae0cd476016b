/** What the REST API needs from a running job: its plan and status, and the operator actions. */

export interface OperatorPlan {
  readonly uid: string;
  readonly name: string;
  readonly kind: 'source' | 'operator' | 'sink';
  readonly parallelism: number;
  /** Uids of the operators feeding this one. */
  readonly inputs: readonly string[];
}

export type JobStateName =
  'created' | 'restoring' | 'running' | 'backing-off' | 'stopping' | 'stopped' | 'finished' | 'cancelled' | 'failed';

export interface JobStatusView {
  readonly state: JobStateName;
  readonly parallelism: number;
  readonly startedAtMs: number | undefined;
  readonly restarts: number;
  /** Checkpoint/savepoint location restored at the last start; undefined for a fresh start. */
  readonly restoredFrom: string | undefined;
  readonly lastCompletedCheckpoint: { readonly checkpointId: number; readonly completedAtMs: number } | undefined;
  /** The checkpoint coordinator's live counters (in progress, completed, failed), when running. */
  readonly checkpoints: unknown;
  /** Newest last. */
  readonly exceptions: readonly { readonly atMs: number; readonly message: string }[];
}

export interface StopOutcome {
  readonly state: JobStateName;
  readonly checkpointId?: number;
  readonly savepointPath?: string;
}

export interface JobControl {
  readonly jobName: string;
  /** Absolute; the job's folder is `<root>/<jobName>`. */
  readonly checkpointRoot: string;
  plan(): readonly OperatorPlan[];
  status(): JobStatusView;
  /** The free-form status `/api/job` has always served. */
  legacyStatus(): unknown;
  savepoint(name: string | undefined): Promise<string>;
  /** Resolves once the job stopped (after its final checkpoint or savepoint). */
  stop(options: { readonly savepoint: boolean; readonly name?: string }): Promise<StopOutcome>;
  /** Starts cancelling; does not wait for the job to end. */
  cancel(): Promise<void>;
}
