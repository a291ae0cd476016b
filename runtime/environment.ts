import { join } from 'node:path';
import { SAVEPOINTS_DIR } from '../checkpoints/index.ts';
import { SourceOpenInterruptedError, type SourceDefinition } from '../operators/sources/source.ts';
import { DataStream } from './data-stream.ts';
import { JobGraph } from './graph.ts';
import { startHttpServer, type HttpServerHandle } from './http-server.ts';
import type { JobControl as RestControl } from './rest/job-control.ts';
import { planOf } from './rest/plan.ts';
import { workerData } from 'node:worker_threads';
import {
  checkpointStorageOf,
  jobRootOf,
  runAttempt,
  type AttemptHandle,
  type AttemptResult,
  type AttemptSpec,
} from './job-attempt.ts';
import { JobControl } from './lifecycle/job-control.ts';
import { JobLease } from './lifecycle/job-lease.ts';
import type { JobEvent, JobSnapshot, JobState, StopOptions, StopResult } from './lifecycle/job-status.ts';
import { nextRestoreTarget } from './lifecycle/restore-target.ts';
import { handleStopSignals } from './lifecycle/signals.ts';
import { resolveOptions, type EnvironmentOptions, type ResolvedOptions } from './job-options.ts';
import { SloMonitor, type SloReport } from './signals/slo.ts';
import { sinksOf } from './signals/sink-signals.ts';
import { recordSideEffectCommit } from './lifecycle/replay-gate.ts';
import { JobHealth, type HealthReport } from './job-health.ts';
import { JobMetrics } from './metrics.ts';
import { causedBy, describeError } from '../state/index.ts';
import { runParallelAttempt } from './parallel/parallel-attempt.ts';
import { isSubtaskInit, type SubtaskInit } from './parallel/protocol.ts';
import { runSubtask } from './parallel/subtask-worker.ts';
import { RestartBudget } from './restart-strategy.ts';
import type { WatermarkStrategy } from './watermark-strategy.ts';

export interface SourceOptions<T> {
  /** Event time and watermarks; without it the job has no event-time progress. */
  readonly watermarks?: WatermarkStrategy<T>;
  /** Pin the source's uid (its offsets live under it in checkpoints). */
  readonly uid?: string;
}

export interface JobResult {
  readonly jobName: string;
  /** How many times the job was restarted from a checkpoint after a failure. */
  readonly restarts: number;
  readonly metrics: JobMetrics;
  /** `finished`: bounded input ended; `stopped`: stop() or a signal; `cancelled`: cancel(). */
  readonly state: Extract<JobState, 'finished' | 'stopped' | 'cancelled'>;
  /** The checkpoint or savepoint the job ended with, if it ended with one. */
  readonly finalCheckpoint: AttemptResult['final'];
}

type Attempt = (
  graph: JobGraph,
  options: ResolvedOptions,
  metrics: JobMetrics,
  spec: AttemptSpec,
) => Promise<AttemptResult>;

/**
 * The entry point of a job file: create an environment, build the graph, execute.
 *
 * ```ts
 * const env = StreamEnvironment.create({ jobName: 'orders-projection' });
 * env.fromSource(debeziumSource<Order>({ topics: ['cdc.ecommerce.orders'], groupId: 'orders-projection' }))
 *   .keyBy((e) => e.key)
 *   .upsert()
 *   .sinkTo(printSink());
 * await env.execute();
 * ```
 */
export class StreamEnvironment {
  private readonly graph = new JobGraph();
  private readonly options: ResolvedOptions;
  private current: AttemptHandle | undefined;
  private readonly control: JobControl;
  private lease: JobLease | undefined;
  private startedAtMs: number | undefined;
  private restarts = 0;
  readonly metrics: JobMetrics;
  /** Attempts, failures, restarts and checkpoint progress; what /healthz and /api/job report. */
  private readonly jobHealth: JobHealth;

  /** The job's SLOs, evaluated from its metrics (main thread only). */
  private slo: SloMonitor | undefined;

  /** Set when this environment runs inside a subtask worker of a parallel job. */
  private readonly subtask: SubtaskInit | undefined;

  private constructor(options: EnvironmentOptions) {
    this.options = resolveOptions(options);
    this.metrics = new JobMetrics(this.options.jobName);
    this.control = new JobControl(this.options.jobName, this.options.logger, this.options.stopDeadlineMs);
    const init: unknown = workerData;
    this.subtask = isSubtaskInit(init) && init.jobName === this.options.jobName ? init : undefined;
    // Job health is the main thread's: a subtask worker's series would be summed into the job's
    // (a status counted N + 1 times, a checkpoint age that grows forever in workers).
    this.jobHealth = new JobHealth(
      {
        checkpointIntervalMs: this.options.checkpointIntervalMs,
        unhealthyAfterFailures: this.options.unhealthyAfterFailures,
        unhealthyAfterCheckpointIntervals: this.options.unhealthyAfterCheckpointIntervals,
      },
      this.subtask === undefined ? this.metrics : new JobMetrics(this.options.jobName),
    );
  }

  static create(options: EnvironmentOptions): StreamEnvironment {
    return new StreamEnvironment(options);
  }

  fromSource<T>(source: SourceDefinition<T>, options: SourceOptions<T> = {}): DataStream<T> {
    const node = this.graph.add({
      name: `source:${source.name}`,
      explicitUid: options.uid,
      inputs: [],
      source: source as SourceDefinition<unknown>,
      factory: undefined,
      keySelector: undefined,
      isSink: false,
      sourceOptions: options.watermarks?.toSettings(),
    });
    return new DataStream<T>(this.graph, node);
  }

  /**
   * Runs the job until its sources end (bounded input), `stop()` (or SIGTERM/SIGINT) ends it with a
   * final checkpoint, or `cancel()`. Failures restart it from the latest checkpoint with
   * exponential back-off, up to `restart.maxAttempts` in a row (see restart-strategy.ts). One
   * instance per job: a second one fails here, naming the holder of the job's lease.
   */
  async execute(): Promise<JobResult> {
    if (this.graph.nodes.length === 0)
      throw new Error('the job has no sources: call env.fromSource(...) before execute()');
    const { options } = this;
    if (this.subtask !== undefined) {
      // A worker thread of a parallel job: run this subtask once; the main thread restarts.
      await runSubtask(this.graph, options, this.metrics, this.subtask);
      return {
        jobName: options.jobName,
        restarts: 0,
        metrics: this.metrics,
        state: 'finished',
        finalCheckpoint: undefined,
      };
    }
    // --- ops-lifecycle: lease, signals, stop/cancel in every state (runtime/lifecycle/) ---
    const log = options.logger;
    this.lease = await JobLease.acquire(options.jobName, jobRootOf(options), {
      takeover: options.takeoverLease,
      onLost: (holder) => {
        log.error(
          { holder },
          `lease lost: pid ${holder.pid} on ${holder.host} took the job over (this process was unresponsive too long); cancelling`,
        );
        void this.cancel();
      },
    });
    const unhandle = options.handleSignals
      ? handleStopSignals({ stop: () => this.stop(), cancel: () => void this.cancel() }, log)
      : () => undefined;
    const attempt: Attempt = options.parallelism === 1 ? runAttempt : runParallelAttempt;
    let http: HttpServerHandle | undefined;
    this.startedAtMs = Date.now();
    log.info(
      { parallelism: options.parallelism, checkpointRoot: jobRootOf(options), restore: options.restore },
      `job ${options.jobName} started`,
    );
    let restoreFrom = options.restore;
    let completedThisRun = false;
    const budget = new RestartBudget(options);
    let gated: string[] = [];
    try {
      const uids = this.graph.resolveUids();
      // At-least-once sinks with side effects: their commits are recorded for the replay gate.
      gated = sinksOf(this.graph, uids)
        .filter((s) => s.traits.replaySafety === 'at-least-once' && s.traits.sideEffects)
        .map((s) => s.uid);
      this.slo = new SloMonitor(
        options.slo,
        sinksOf(this.graph, uids).map((s) => s.uid),
        async () => (await this.metrics.aggregated()).getMetricsAsJSON(),
      );
      this.slo.start(this.metrics);
      const slo = this.slo;
      http =
        options.metricsPort === undefined
          ? undefined
          : await startHttpServer({
              ...options.rest,
              port: options.metricsPort,
              metrics: this.metrics,
              control: this.restControl(),
              health: () => this.health(),
              slo: () => slo.evaluate(),
            });
      if (http !== undefined) {
        await this.setRestAddress(http.url);
        log.info(
          { rest: http.url },
          `REST API on ${http.url} (registered in ${join(jobRootOf(options), 'rest.json')})`,
        );
      }
      for (let attemptNumber = 1; ; attemptNumber++) {
        if (this.control.ending) return this.ended(undefined);
        const startedAt = Date.now();
        this.control.setState('restoring');
        this.jobHealth.attemptStarted();
        try {
          const running = attempt(this.graph, options, this.metrics, {
            restoreFrom,
            attempt: attemptNumber,
            onStarted: (handle) => {
              this.current = handle;
              if (!this.control.ending) this.control.setState('running');
              this.control.attach(handle);
            },
            onStats: (s) => {
              if (s.status !== 'completed') return;
              completedThisRun = true;
              if (gated.length > 0) {
                void checkpointStorageOf(options)
                  .load(s.checkpointId)
                  .then((stored) => recordSideEffectCommit(jobRootOf(options), gated, stored))
                  .catch((error: unknown) =>
                    log.warn({ err: error }, `could not record checkpoint ${s.checkpointId} for the replay gate`),
                  );
              }
              this.control.emit({ type: 'checkpoint', checkpointId: s.checkpointId, kind: s.kind, atMs: Date.now() });
            },
          });
          const outcome = await Promise.race([
            running.then((done) => ({ done })),
            this.control.abandoned.then(() => undefined),
          ]);
          if (outcome === undefined) {
            // Cancelled, and the attempt did not end within its grace: stop waiting for it (it
            // may hang on a commit forever); what it prepared stays for the next start's recovery.
            running.catch(() => undefined);
            log.error(
              { gaveUpOn: this.control.pendingWork() },
              `the cancelled attempt did not end; abandoning it (gave up on ${this.control.pendingWork()})`,
            );
            return this.ended(undefined);
          }
          return this.ended(outcome.done.final);
        } catch (error) {
          if (error === this.control.overdueStop) throw error;
          this.control.attach(undefined);
          this.current = undefined;
          // A cancel (or a stop past its deadline) ends whatever the attempt was doing.
          if (this.control.cancelled) return this.ended(undefined, error);
          // A stop reached a subtask while its source waited in open (parallel attempts; runAttempt handles its own).
          if (this.control.ending && causedBy(error, SourceOpenInterruptedError)) return this.ended(undefined);
          this.control.recordException(error);
          if (this.control.ending) {
            log.error({ err: error }, 'the job failed while stopping');
            this.control.setState('failed');
            this.control.settleStop(error instanceof Error ? error : new Error(String(error)));
            throw error;
          }
          // `retriable` decides (state/error-classification.ts): a configuration or user-code error,
          // or a record that fails the same way on every replay, fails fast instead of looping.
          const decision = budget.onFailure(Date.now() - startedAt, error);
          const next = nextRestoreTarget(options.restore, restoreFrom, completedThisRun, error);
          this.jobHealth.attemptFailed(error, decision.restart && next !== undefined);
          if (!decision.restart || next === undefined) {
            const why =
              next === undefined
                ? 'retrying cannot help (an explicit restore target failed, or the error is not retriable)'
                : !decision.restart && decision.reason === 'not-retriable'
                  ? 'the error is not retriable, restarting would fail the same way — fix the cause, then start the job again'
                  : `${decision.attempt - 1} restarts in a row (restart.maxAttempts)`;
            log.error(
              { err: error },
              `attempt failed (${describeError(error)}); ${decision.restart || next === undefined ? 'not restarting' : 'giving up'}: ${why}`,
            );
            this.control.setState('failed');
            throw error;
          }
          restoreFrom = next;
          this.restarts += 1;
          this.jobHealth.restarted();
          log.warn(
            { err: error, attempt: decision.attempt, maxAttempts: options.maxAttempts, delayMs: decision.delayMs },
            `attempt failed (${describeError(error)}); restart ${decision.attempt}/${options.maxAttempts} from ${describeTarget(restoreFrom)} in ${decision.delayMs} ms`,
          );
          if (!(await this.control.backOff(decision.delayMs))) return this.ended(undefined);
        }
      }
    } finally {
      this.current = undefined;
      this.control.attach(undefined);
      this.control.dispose();
      unhandle();
      this.slo?.stop();
      await http?.close();
      await this.lease.release();
    }
  }

  /**
   * The job ended without failing: settle a pending stop and say how it ended. A stop that missed
   * its deadline throws its StopDeadlineExceededError instead (so `cdcflow run` exits non-zero).
   */
  private ended(final: AttemptResult['final'], cause?: unknown): JobResult {
    const state = this.control.cancelled ? 'cancelled' : this.control.ending ? 'stopped' : 'finished';
    this.control.setState(state);
    const overdue = this.control.overdueStop;
    if (overdue !== undefined) {
      this.jobHealth.ended('stopped');
      this.options.logger.error(
        { state, gaveUpOn: overdue.gaveUpOn, restarts: this.restarts, ...(cause === undefined ? {} : { err: cause }) },
        `job cancelled: the stop missed its ${overdue.deadlineMs} ms deadline (gave up on ${overdue.gaveUpOn})`,
      );
      throw overdue;
    }
    this.jobHealth.ended(state === 'finished' ? 'finished' : 'stopped');
    const at =
      final === undefined
        ? 'without a final checkpoint'
        : `at ${final.kind} ${final.checkpointId}${final.savepointPath === undefined ? '' : ` (${final.savepointPath})`}`;
    this.options.logger.info(
      { state, checkpoint: final?.checkpointId, savepointPath: final?.savepointPath, restarts: this.restarts },
      `job ${state} ${at}`,
    );
    if (state === 'stopped')
      this.control.settleStop({
        state: 'stopped',
        checkpointId: final?.checkpointId,
        ...(final?.savepointPath === undefined ? {} : { savepointPath: final.savepointPath }),
      });
    return {
      jobName: this.options.jobName,
      restarts: this.restarts,
      metrics: this.metrics,
      state,
      finalCheckpoint: final,
    };
  }
  // --- end ops-lifecycle ---

  /**
   * Stops the job gracefully: sources stop reading, a final checkpoint (or savepoint) completes,
   * sinks commit, then `execute()` resolves. Honoured while restoring, running and backing off.
   * Past `deadlineMs` the job is cancelled and the promise rejects with StopDeadlineExceededError.
   */
  stop(options: StopOptions = {}): Promise<StopResult> {
    return this.control.stop(options);
  }

  /** Ends the job at once without a final checkpoint; `execute()` resolves with state 'cancelled'. */
  cancel(): Promise<void> {
    this.control.cancel();
    return Promise.resolve();
  }

  /** Lifecycle events (state changes, completed checkpoints, exceptions); returns the unsubscribe. */
  onEvent(listener: (event: JobEvent) => void): () => void {
    return this.control.onEvent(listener);
  }

  /** Records the REST address in the job's lease, where the CLI finds it. */
  async setRestAddress(url: string): Promise<void> {
    await this.lease?.setRestAddress(url);
  }

  /** Takes a savepoint of the running job; resolves with its folder. */
  async savepoint(name?: string): Promise<string> {
    const handle = this.current;
    if (handle === undefined) throw new Error('no running job to take a savepoint of');
    const metadata = await handle.coordinator.triggerSavepoint(name);
    // The coordinator names an unnamed savepoint `savepoint-<id>` (checkpoints/coordinator.ts).
    return join(
      jobRootOf(this.options),
      SAVEPOINTS_DIR,
      metadata.savepointName ?? name ?? `savepoint-${metadata.checkpointId}`,
    );
  }

  /** What the REST API (runtime/rest/) reads and drives. */
  private restControl(): RestControl {
    const { options } = this;
    return {
      jobName: options.jobName,
      checkpointRoot: options.checkpointDir,
      plan: () => planOf(this.graph, options.parallelism),
      status: () => {
        const s = this.snapshot();
        return {
          state: s.state,
          parallelism: s.parallelism,
          startedAtMs: s.startedAtMs,
          restarts: s.restarts,
          restoredFrom: s.restoredFrom,
          lastCompletedCheckpoint: s.lastCompletedCheckpoint,
          checkpoints: s.coordinator,
          exceptions: s.exceptions,
        };
      },
      legacyStatus: () => this.status(),
      savepoint: (name) => this.savepoint(name),
      stop: async ({ savepoint, name }) => {
        const result = await this.stop({ savepoint: name ?? savepoint });
        return {
          state: result.state,
          ...(result.checkpointId === undefined ? {} : { checkpointId: result.checkpointId }),
          ...(result.savepointPath === undefined ? {} : { savepointPath: result.savepointPath }),
        };
      },
      // Answer at once: the job ends (and the server closes) right after.
      cancel: () => this.cancel(),
    };
  }

  /** Whether the job makes progress, and why not (what /healthz answers). */
  health(): HealthReport {
    return this.jobHealth.report();
  }

  /**
   * What `/api/job` answers: the snapshot plus the health verdict at the top level. `running` is
   * honest: an attempt is running, and the job is healthy (no crash loop, checkpoints completing).
   */
  status(): JobSnapshot & HealthReport & { readonly running: boolean; readonly slo: SloReport | undefined } {
    const snapshot = this.snapshot();
    const health = snapshot.health;
    return {
      ...snapshot,
      ...health,
      running: this.current !== undefined && health.status === 'running' && health.healthy,
      slo: this.slo?.latest,
    };
  }

  /** What the job is doing, for the REST API. */
  snapshot(): JobSnapshot {
    const handle = this.current;
    const coordinator = handle?.coordinator.status();
    return {
      job: this.options.jobName,
      state: this.control.state,
      parallelism: this.options.parallelism,
      checkpointRoot: jobRootOf(this.options),
      startedAtMs: this.startedAtMs,
      restarts: this.restarts,
      restoredFrom: handle?.restoredFrom,
      lastCompletedCheckpoint: coordinator?.lastCompleted,
      coordinator,
      exceptions: [...this.control.exceptions],
      lease: this.lease?.holder,
      watermarks: handle?.watermarks(),
      health: this.jobHealth.report(),
    };
  }
}

function describeTarget(target: ResolvedOptions['restore']): string {
  if (target === 'latest') return 'the latest checkpoint';
  if (target === 'none') return 'nothing (fresh)';
  if ('savepoint' in target) return `savepoint ${target.savepoint}`;
  if ('checkpointId' in target) return `checkpoint ${target.checkpointId}`;
  return target.path;
}
