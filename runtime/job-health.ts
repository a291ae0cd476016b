/**
 * Is the job making progress? The environment reports attempts, failures and restarts here, the
 * checkpoint coordinator reports completed checkpoints (through JobMetrics); `/healthz`,
 * `/api/job` and the Prometheus series only read. Unhealthy when:
 *  - `unhealthyAfterFailures` attempts failed in a row (no checkpoint completed between them):
 *    a crash loop, an unreachable broker, a state lock that is not released;
 *  - no checkpoint completed for `unhealthyAfterCheckpointIntervals` checkpoint intervals while
 *    an attempt runs (stuck opening, a sink that hangs, barriers that never align);
 *  - the job gave up (`failed`).
 * A finished (bounded input) or stopped job is not unhealthy: it is simply not running. Status
 * `starting` lasts from the start of an attempt to its first completed checkpoint.
 */
import {
  CdcflowError,
  classifyError,
  describeError,
  rootCdcflowError,
  type ErrorDomain,
  type ErrorLocation,
} from '../state/index.ts';
import type { JobMetrics } from './metrics.ts';

const CHECKPOINT_KINDS = ['checkpoint', 'savepoint'] as const;

export type JobStatus = 'starting' | 'running' | 'restarting' | 'failed' | 'finished' | 'stopped';
const STATUSES: readonly JobStatus[] = ['starting', 'running', 'restarting', 'failed', 'finished', 'stopped'];

export interface HealthPolicy {
  readonly checkpointIntervalMs: number;
  readonly unhealthyAfterFailures: number;
  readonly unhealthyAfterCheckpointIntervals: number;
}

export interface LastError {
  /** The class that says what went wrong (a subtask failure's cause, a wrapped library error's own name). */
  readonly class: string;
  readonly message: string;
  readonly domain: ErrorDomain;
  readonly retriable: boolean;
  readonly where: ErrorLocation | undefined;
  /** `describeError`: class, domain, retriable, message and location in one line. */
  readonly summary: string;
  readonly at: string;
}

export interface HealthReport {
  readonly healthy: boolean;
  /** Why not healthy (empty when healthy). */
  readonly reasons: readonly string[];
  readonly status: JobStatus;
  readonly restarts: number;
  readonly consecutiveFailures: number;
  readonly lastError: LastError | undefined;
  readonly lastCheckpointAt: string | undefined;
  /** Since the last completed checkpoint, or since the job started when none completed yet. */
  readonly lastCheckpointAgeSeconds: number;
}

export class JobHealth {
  private status: JobStatus = 'starting';
  private restarts = 0;
  private consecutiveFailures = 0;
  private lastError: LastError | undefined;
  private readonly startedAt: number;
  private lastCheckpointAt: number | undefined;

  constructor(
    private readonly policy: HealthPolicy,
    private readonly metrics: JobMetrics,
    private readonly now: () => number = Date.now,
  ) {
    this.startedAt = now();
    metrics.onCheckpointCompleted((at) => this.checkpointCompleted(at));
    // Present from the start (zero, current status), so alerts and dashboards work before anything happens.
    metrics.incJobCounter('cdcflow_job_restarts_total', {}, 0);
    // error_class="none" keeps the failure counter's series present before the first failure.
    metrics.incJobCounter('cdcflow_job_failures_total', { error_class: 'none', retriable: 'false' }, 0);
    for (const status of ['completed', 'aborted'])
      for (const kind of CHECKPOINT_KINDS) metrics.incJobCounter('cdcflow_checkpoints_total', { status, kind }, 0);
    metrics.setJobGauge('cdcflow_checkpoint_size_bytes', 0);
    // No checkpoint yet: NaN (an alert on `time() - last_success` stays quiet; the age gauge below does not).
    metrics.setJobGauge('cdcflow_checkpoint_last_success_timestamp_seconds', Number.NaN);
    for (const kind of CHECKPOINT_KINDS) metrics.checkpointDuration.zero({ job: metrics.jobName, kind });
    metrics.setJobGauge('cdcflow_job_consecutive_failures', 0);
    metrics.collectJobGauge('cdcflow_last_checkpoint_age_seconds', () => this.checkpointAgeMs() / 1000);
    metrics.collectJobGauge('cdcflow_job_healthy', () => (this.report().healthy ? 1 : 0));
    this.setStatus('starting');
  }

  /** An attempt opens: `starting` until its first checkpoint completes (a source still connecting to an unreachable broker is not running). */
  attemptStarted(): void {
    this.setStatus('starting');
  }

  /** An attempt failed; `willRestart` is the restart strategy's decision. */
  attemptFailed(error: unknown, willRestart: boolean): void {
    this.consecutiveFailures += 1;
    this.metrics.setJobGauge('cdcflow_job_consecutive_failures', this.consecutiveFailures);
    this.lastError = lastErrorOf(error, this.now());
    this.metrics.incJobCounter('cdcflow_job_failures_total', {
      error_class: this.lastError.class,
      retriable: String(this.lastError.retriable),
    });
    this.setStatus(willRestart ? 'restarting' : 'failed');
  }

  restarted(): void {
    this.restarts += 1;
    this.metrics.incJobCounter('cdcflow_job_restarts_total');
  }

  ended(how: 'finished' | 'stopped'): void {
    this.setStatus(how);
  }

  report(): HealthReport {
    const reasons: string[] = [];
    const ageMs = this.checkpointAgeMs();
    if (this.status === 'failed') reasons.push(`the job gave up: ${this.lastError?.summary ?? 'unknown error'}`);
    else if (this.consecutiveFailures >= this.policy.unhealthyAfterFailures) {
      reasons.push(
        `${this.consecutiveFailures} attempts failed in a row (health.unhealthyAfterFailures = ${this.policy.unhealthyAfterFailures}); last: ${this.lastError?.summary ?? 'unknown error'}`,
      );
    }
    const limitMs = this.policy.unhealthyAfterCheckpointIntervals * this.policy.checkpointIntervalMs;
    if ((this.status === 'running' || this.status === 'starting' || this.status === 'restarting') && ageMs > limitMs) {
      const since = this.lastCheckpointAt === undefined ? 'since the job started' : 'since the last one';
      reasons.push(
        `no checkpoint completed for ${Math.round(ageMs / 1000)} s ${since} (limit ${this.policy.unhealthyAfterCheckpointIntervals} intervals = ${limitMs / 1000} s)`,
      );
    }
    return {
      healthy: reasons.length === 0,
      reasons,
      status: this.status,
      restarts: this.restarts,
      consecutiveFailures: this.consecutiveFailures,
      lastError: this.lastError,
      lastCheckpointAt: this.lastCheckpointAt === undefined ? undefined : new Date(this.lastCheckpointAt).toISOString(),
      lastCheckpointAgeSeconds: ageMs / 1000,
    };
  }

  private checkpointCompleted(at: number): void {
    this.lastCheckpointAt = at;
    if (this.status === 'starting') this.setStatus('running');
    // Progress: the failures before it are no longer "in a row".
    this.consecutiveFailures = 0;
    this.metrics.setJobGauge('cdcflow_job_consecutive_failures', 0);
  }

  private checkpointAgeMs(): number {
    return Math.max(0, this.now() - (this.lastCheckpointAt ?? this.startedAt));
  }

  private setStatus(status: JobStatus): void {
    this.status = status;
    for (const s of STATUSES) this.metrics.setJobGauge('cdcflow_job_status', s === status ? 1 : 0, { status: s });
  }
}

function lastErrorOf(error: unknown, at: number): LastError {
  const root = error instanceof CdcflowError ? rootCdcflowError(error) : error;
  const { domain, retriable } = classifyError(root);
  const name =
    root instanceof CdcflowError && 'originalName' in root && typeof root.originalName === 'string'
      ? root.originalName
      : root instanceof Error
        ? root.name
        : typeof root;
  return {
    class: name,
    message: root instanceof Error ? root.message : String(root),
    domain,
    retriable,
    where: root instanceof CdcflowError ? root.where : undefined,
    summary: describeError(error),
    at: new Date(at).toISOString(),
  };
}
