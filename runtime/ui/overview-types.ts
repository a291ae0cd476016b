/**
 * What `GET /jobs/:name/overview` answers: one compact snapshot of a running job for the web UI
 * (runtime/ui/web/), which polls it. Types only, and self-contained, so the browser bundle can share them.
 */

/** One series of a metric: its labels (without `job`) and its value (`null` for NaN: no data yet). */
export interface MetricSample {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number | null;
}

/**
 * The job's `cdcflow_*` metrics as `/metrics` shows them (a parallel job's summed over its
 * subtasks), keyed by sample name: a histogram appears as `<name>_bucket` (with `le`), `_sum`, `_count`.
 */
export type MetricSamples = Readonly<Record<string, readonly MetricSample[]>>;

export interface OverviewOperator {
  readonly uid: string;
  readonly name: string;
  readonly kind: 'source' | 'operator' | 'sink';
  readonly parallelism: number;
  readonly inputs: readonly string[];
}

export interface CheckpointHistoryEntry {
  readonly id: number;
  readonly kind: 'checkpoint' | 'savepoint';
  readonly status: 'completed' | 'aborted';
  /** When it finished (epoch ms, this server's clock). */
  readonly atMs: number;
  readonly durationMs: number;
  readonly bytes: number;
  /** Mean synchronous (at the barrier) and asynchronous (upload) part per operator snapshot; undefined until measured. */
  syncMs?: number;
  asyncMs?: number;
  readonly failureReason?: string;
}

export interface DeadLetterSampleView {
  readonly stage: string;
  readonly kind: string;
  readonly reason: string;
  readonly errorClass: string;
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly atMs: number;
}

export interface JobOverview {
  readonly job: string;
  /** The server's clock when the snapshot was taken (ages are computed against it). */
  readonly nowMs: number;
  readonly state: string;
  readonly parallelism: number;
  readonly startedAtMs: number | undefined;
  readonly restarts: number;
  readonly restoredFrom: string | undefined;
  readonly lastCompletedCheckpoint: { readonly checkpointId: number; readonly completedAtMs: number } | undefined;
  readonly health: { readonly healthy: boolean; readonly reasons: readonly string[] };
  readonly plan: readonly OverviewOperator[];
  readonly metrics: MetricSamples;
  /** Per subtask (index order) of a parallel job: its own watermarks, record counts and busy time; empty when the job runs in one thread. */
  readonly subtasks: readonly MetricSamples[];
  /** Newest last. */
  readonly checkpoints: readonly CheckpointHistoryEntry[];
  /** Newest last. */
  readonly exceptions: readonly { readonly atMs: number; readonly message: string }[];
  /** Newest last; headers and reason only. */
  readonly deadLetters: readonly DeadLetterSampleView[];
}
