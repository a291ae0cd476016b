import type { SourceDefinition } from '../operators/sources/source.ts';
import { DataStream } from './data-stream.ts';
import { JobGraph } from './graph.ts';
import { startHttpServer, type HttpServerHandle } from './http-server.ts';
import { workerData } from 'node:worker_threads';
import { runAttempt, type AttemptHandle } from './job-attempt.ts';
import { resolveOptions, type EnvironmentOptions, type ResolvedOptions } from './job-options.ts';
import { JobMetrics } from './metrics.ts';
import { runParallelAttempt } from './parallel/parallel-attempt.ts';
import { isSubtaskInit, type SubtaskInit } from './parallel/protocol.ts';
import { runSubtask } from './parallel/subtask-worker.ts';
import { RestartBudget } from './restart-strategy.ts';
import { JobHealth, type HealthReport } from './job-health.ts';
import { describeError } from '../state/index.ts';
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
}

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
  private stopping = false;
  readonly metrics: JobMetrics;
  /** Attempts, failures, restarts and checkpoint progress; what /healthz and /api/job report. */
  private readonly jobHealth: JobHealth;

  /** Set when this environment runs inside a subtask worker of a parallel job. */
  private readonly subtask: SubtaskInit | undefined;

  private constructor(options: EnvironmentOptions) {
    this.options = resolveOptions(options);
    this.metrics = new JobMetrics(this.options.jobName);
    const init: unknown = workerData;
    this.subtask = isSubtaskInit(init) && init.jobName === this.options.jobName ? init : undefined;
    // Job health is the main thread's: a subtask worker's series would be summed into the job's
    // (a status counted N + 1 times, a checkpoint age that grows forever in workers).
    this.jobHealth = new JobHealth(
      { checkpointIntervalMs: this.options.checkpointIntervalMs, unhealthyAfterFailures: this.options.unhealthyAfterFailures, unhealthyAfterCheckpointIntervals: this.options.unhealthyAfterCheckpointIntervals },
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
   * Runs the job until its sources end (bounded input) or `stop()` is called. Failures restart
   * it from the latest checkpoint with exponential back-off, up to `restart.maxAttempts` in a row
   * (see restart-strategy.ts).
   */
  async execute(): Promise<JobResult> {
    if (this.graph.nodes.length === 0) throw new Error('the job has no sources: call env.fromSource(...) before execute()');
    const { options } = this;
    if (this.subtask !== undefined) {
      // A worker thread of a parallel job: run this subtask once; the main thread restarts.
      await runSubtask(this.graph, options, this.metrics, this.subtask);
      return { jobName: options.jobName, restarts: 0, metrics: this.metrics };
    }
    const attempt = options.parallelism === 1 ? runAttempt : runParallelAttempt;
    const http: HttpServerHandle | undefined = options.metricsPort === undefined ? undefined : await startHttpServer(options.metricsPort, this.metrics, () => this.status(), () => this.health());
    let restarts = 0;
    let restoreFrom = options.restore;
    const budget = new RestartBudget(options);
    const health = this.jobHealth;
    try {
      for (;;) {
        const startedAt = Date.now();
        health.attemptStarted();
        try {
          await attempt(this.graph, options, this.metrics, restoreFrom, (handle) => (this.current = handle));
          health.ended(this.stopping ? 'stopped' : 'finished');
          return { jobName: options.jobName, restarts, metrics: this.metrics };
        } catch (error) {
          this.current = undefined;
          if (this.stopping) {
            health.ended('stopped');
            throw error;
          }
          // `retriable` decides (state/error-classification.ts): a configuration or user-code error,
          // or a record that fails the same way on every replay, fails fast instead of looping.
          const decision = budget.onFailure(Date.now() - startedAt, error);
          health.attemptFailed(error, decision.restart);
          if (!decision.restart) {
            if (decision.reason === 'not-retriable') options.log(`attempt failed (${describeError(error)}); not restarting: the error is not retriable, restarting would fail the same way — fix the cause, then start the job again`);
            else options.log(`attempt failed (${describeError(error)}); giving up after ${decision.attempt - 1} restarts in a row (restart.maxAttempts)`);
            throw error;
          }
          restarts += 1;
          health.restarted();
          options.log(`attempt failed (${describeError(error)}); restart ${decision.attempt}/${options.maxAttempts} from the latest checkpoint in ${decision.delayMs} ms`);
          await new Promise((r) => setTimeout(r, decision.delayMs));
          // After a failure only a checkpoint of this run is the truth, never the original savepoint.
          restoreFrom = 'latest';
        }
      }
    } finally {
      this.current = undefined;
      await http?.close();
    }
  }

  /** Whether the job makes progress, and why not (what /healthz answers). */
  health(): HealthReport {
    return this.jobHealth.report();
  }

  /** Stops the running job between two batches; `execute()` then resolves. */
  stop(): void {
    this.stopping = true;
    this.current?.stop();
  }

  /** Takes a savepoint of the running job; resolves with its folder. */
  async savepoint(name?: string): Promise<string> {
    const handle = this.current;
    if (handle === undefined) throw new Error('no running job to take a savepoint of');
    const metadata = await handle.coordinator.triggerSavepoint(name);
    return `${this.options.checkpointDir}/${this.options.jobName}/savepoints/${name ?? String(metadata.checkpointId)}`;
  }

  private status(): unknown {
    const handle = this.current;
    const health = this.jobHealth.report();
    return {
      job: this.options.jobName,
      // Honest: an attempt checkpointed (status running) and the job is healthy (no crash loop, checkpoints completing).
      running: handle !== undefined && health.status === 'running' && health.healthy,
      ...health,
      checkpoints: handle?.coordinator.status(),
      parallelism: this.options.parallelism,
      watermarks: handle?.watermarks(),
    };
  }
}
