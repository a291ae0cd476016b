import { join } from 'node:path';
import { SAVEPOINTS_DIR } from '../checkpoints/index.ts';
import type { SourceDefinition } from '../operators/sources/source.ts';
import { DataStream } from './data-stream.ts';
import { JobGraph } from './graph.ts';
import { startHttpServer, type HttpServerHandle } from './http-server.ts';
import type { JobControl, JobStateName } from './rest/job-control.ts';
import { planOf } from './rest/plan.ts';
import { workerData } from 'node:worker_threads';
import { runAttempt, type AttemptHandle } from './job-attempt.ts';
import { resolveOptions, type EnvironmentOptions, type ResolvedOptions } from './job-options.ts';
import { JobMetrics } from './metrics.ts';
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
  /** What the REST API reports (ops-lifecycle's env.snapshot() replaces this bookkeeping). */
  private readonly run = { state: 'created' as JobStateName, startedAtMs: undefined as number | undefined, restarts: 0, exceptions: [] as { atMs: number; message: string }[], ended: deferred() };

  /** Set when this environment runs inside a subtask worker of a parallel job. */
  private readonly subtask: SubtaskInit | undefined;

  private constructor(options: EnvironmentOptions) {
    this.options = resolveOptions(options);
    this.metrics = new JobMetrics(this.options.jobName);
    const init: unknown = workerData;
    this.subtask = isSubtaskInit(init) && init.jobName === this.options.jobName ? init : undefined;
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
    const http: HttpServerHandle | undefined =
      options.metricsPort === undefined
        ? undefined
        : await startHttpServer({ ...options.rest, port: options.metricsPort, metrics: this.metrics, control: this.control() });
    if (http !== undefined) options.log(`REST API on ${http.url} (registered in ${options.checkpointDir}/${options.jobName}/rest.json)`);
    this.run.state = 'running';
    this.run.startedAtMs = Date.now();
    let restarts = 0;
    let restoreFrom = options.restore;
    const budget = new RestartBudget(options);
    try {
      for (;;) {
        const startedAt = Date.now();
        try {
          await attempt(this.graph, options, this.metrics, restoreFrom, (handle) => (this.current = handle));
          this.run.state = 'stopped';
          return { jobName: options.jobName, restarts, metrics: this.metrics };
        } catch (error) {
          this.run.exceptions = [...this.run.exceptions, { atMs: Date.now(), message: describe(error) }].slice(-20);
          if (this.stopping) throw error;
          const decision = budget.onFailure(Date.now() - startedAt);
          if (!decision.restart) {
            this.run.state = 'failed';
            options.log(`attempt failed (${describe(error)}); giving up after ${decision.attempt - 1} restarts in a row (restart.maxAttempts)`);
            throw error;
          }
          restarts += 1;
          this.run.restarts = restarts;
          this.run.state = 'backing-off';
          this.metrics.incJobCounter('cdcflow_job_restarts_total');
          options.log(`attempt failed (${describe(error)}); restart ${decision.attempt}/${options.maxAttempts} from the latest checkpoint in ${decision.delayMs} ms`);
          await new Promise((r) => setTimeout(r, decision.delayMs));
          this.run.state = 'running';
          // After a failure only a checkpoint of this run is the truth, never the original savepoint.
          restoreFrom = 'latest';
        }
      }
    } finally {
      this.current = undefined;
      this.run.ended.resolve();
      await http?.close();
    }
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
    // The coordinator names an unnamed savepoint `savepoint-<id>` (checkpoints/coordinator.ts).
    return join(this.options.checkpointDir, this.options.jobName, SAVEPOINTS_DIR, metadata.savepointName ?? name ?? `savepoint-${metadata.checkpointId}`);
  }

  /** The REST API's view of this job; stop and cancel are today's stop() until ops-lifecycle lands. */
  private control(): JobControl {
    const { options } = this;
    return {
      jobName: options.jobName,
      checkpointRoot: options.checkpointDir,
      plan: () => planOf(this.graph, options.parallelism),
      status: () => {
        const checkpoints = this.current?.coordinator.status();
        return {
          state: this.run.state,
          parallelism: options.parallelism,
          startedAtMs: this.run.startedAtMs,
          restarts: this.run.restarts,
          restoredFrom: undefined,
          lastCompletedCheckpoint: checkpoints?.lastCompleted,
          checkpoints,
          exceptions: this.run.exceptions,
        };
      },
      legacyStatus: () => this.status(),
      savepoint: (name) => this.savepoint(name),
      stop: async ({ savepoint, name }) => {
        const savepointPath = savepoint ? await this.savepoint(name) : undefined;
        this.run.state = 'stopping';
        this.stop();
        await this.run.ended.promise;
        return { state: 'stopped', ...(savepointPath === undefined ? {} : { savepointPath }) };
      },
      cancel: () => {
        this.run.state = 'stopping';
        this.stop();
        return Promise.resolve();
      },
    };
  }

  private status(): unknown {
    const handle = this.current;
    return {
      job: this.options.jobName,
      running: handle !== undefined,
      checkpoints: handle?.coordinator.status(),
      parallelism: this.options.parallelism,
      watermarks: handle?.watermarks(),
    };
  }
}

function deferred(): { promise: Promise<void>; resolve(): void } {
  let resolve = () => {};
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
