/**
 * Prometheus metrics of one job (prom-client). Operators raise counters, gauges and histograms by
 * name; each series carries `job` and `operator` labels so dashboards can slice by both.
 */
import {
  AggregatorRegistry,
  Counter,
  Gauge,
  Histogram,
  Registry,
  collectDefaultMetrics,
  type MetricObjectWithValues,
  type MetricValue,
} from 'prom-client';
import { isMainThread } from 'node:worker_threads';
import type { CheckpointStats } from '../checkpoints/index.ts';
import type { OperatorMetrics } from '../operators/operator.ts';

type Labels = Readonly<Record<string, string>>;

/** One series of a collected gauge: its labels (beside `job`) and value. */
export type CollectedSample = readonly [Labels, number];

/**
 * Upper bounds (seconds) of every operator histogram (`OperatorMetrics.observe`): sink freshness
 * and commit latency, from a few milliseconds (an idempotent sink's flush) through the
 * checkpoint interval (two-phase sinks: 1 s is the floor) up to an hour-old backfill.
 */
export const OPERATOR_SECONDS_BUCKETS: readonly number[] = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 5, 7.5, 10, 15, 20, 30, 60, 120, 300, 600, 1800, 3600,
];

export class JobMetrics {
  readonly registry = new Registry();
  private readonly counters = new Map<string, Counter>();
  private readonly gauges = new Map<string, Gauge>();
  private readonly histograms = new Map<string, Histogram>();
  readonly checkpointDuration: Histogram;

  constructor(readonly jobName: string) {
    // Process metrics (RSS, CPU, event loop) are the process's: a subtask worker thread would only repeat them, and the sum over subtasks would be wrong.
    if (isMainThread) collectDefaultMetrics({ register: this.registry, prefix: 'cdcflow_process_' });
    this.checkpointDuration = new Histogram({
      name: 'cdcflow_checkpoint_duration_seconds',
      help: 'Time from checkpoint trigger to durable metadata',
      labelNames: ['job', 'kind'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [this.registry],
    });
  }

  private workers: (() => Promise<unknown[]>) | undefined;
  private lastWorkers: unknown[] | undefined;

  /**
   * Parallel jobs: the subtask workers' registries (as `getMetricsAsJSON`), summed into what
   * `exposition()` and `aggregated()` show. `undefined` detaches, keeping `last` (their final values).
   */
  attachWorkers(source: (() => Promise<unknown[]>) | undefined, last?: unknown[]): void {
    this.workers = source;
    if (last !== undefined) this.lastWorkers = last;
  }

  /** Each subtask worker's own registry (as `getMetricsAsJSON`), in subtask order; undefined for a job without workers. */
  async perSubtask(): Promise<unknown[] | undefined> {
    return this.workers === undefined ? this.lastWorkers : this.workers();
  }

  private readonly checkpointStatsListeners: ((stats: CheckpointStats) => void)[] = [];

  /** Every finished checkpoint or savepoint (completed or aborted), for the UI's checkpoint history. */
  checkpointFinished(stats: CheckpointStats): void {
    for (const listener of this.checkpointStatsListeners) listener(stats);
  }

  onCheckpointFinished(listener: (stats: CheckpointStats) => void): void {
    this.checkpointStatsListeners.push(listener);
  }

  /** This registry plus the workers' (a parallel job's counters summed over its subtasks). */
  async aggregated(): Promise<Registry> {
    const workers = this.workers === undefined ? this.lastWorkers : await this.workers();
    if (workers === undefined) return this.registry;
    const parts = [await this.registry.getMetricsAsJSON(), ...workers] as MetricObjectWithValues<
      MetricValue<string>
    >[][];
    return AggregatorRegistry.aggregate(parts);
  }

  private readonly checkpointListeners: ((at: number) => void)[] = [];
  private readonly watermarks = new Map<string, number>();
  private watermarkLag: Gauge | undefined;

  /** The coordinator completed a checkpoint at `at` (epoch ms); job health listens. */
  checkpointCompleted(at: number): void {
    this.setJobGauge('cdcflow_checkpoint_last_success_timestamp_seconds', at / 1000);
    for (const listener of this.checkpointListeners) listener(at);
  }

  onCheckpointCompleted(listener: (at: number) => void): void {
    this.checkpointListeners.push(listener);
  }

  /** A job-level gauge whose value is computed when scraped (ages, health), not when something happens. */
  collectJobGauge(name: string, value: () => number): void {
    if (this.gauges.has(name)) return;
    const jobName = this.jobName;
    const gauge = new Gauge({
      name,
      help: helpFor(name),
      labelNames: ['job'],
      aggregator: gaugeAggregator(name),
      registers: [this.registry],
      collect() {
        this.set({ job: jobName }, value());
      },
    });
    this.gauges.set(name, gauge);
  }

  /**
   * An operator's watermark advanced. The lag behind the wall clock is computed at scrape time:
   * set on advance, it froze at its last value exactly when the watermark stopped, which is when
   * it matters.
   */
  watermarkAdvanced(uid: string, watermark: number): void {
    this.gauge('cdcflow_watermark_ms', {}).set({ job: this.jobName, operator: uid }, watermark);
    this.watermarks.set(uid, watermark);
    if (this.watermarkLag !== undefined) return;
    const { watermarks, jobName } = this;
    this.watermarkLag = new Gauge({
      name: 'cdcflow_watermark_lag_ms',
      help: helpFor('cdcflow_watermark_lag_ms'),
      labelNames: ['job', 'operator'],
      aggregator: gaugeAggregator('cdcflow_watermark_lag_ms'),
      registers: [this.registry],
      collect() {
        const now = Date.now();
        for (const [operator, wm] of watermarks) this.set({ job: jobName, operator }, now - wm);
      },
    });
    this.gauges.set('cdcflow_watermark_lag_ms', this.watermarkLag);
  }

  forOperator(uid: string): OperatorMetrics {
    return {
      count: (name, labels = {}, by = 1) =>
        this.counter(name, labels).inc({ job: this.jobName, operator: uid, ...labels }, by),
      gauge: (name, value, labels = {}) =>
        this.gauge(name, labels).set({ job: this.jobName, operator: uid, ...labels }, value),
      observe: (name, seconds, labels = {}) =>
        this.histogram(name, labels).observe({ job: this.jobName, operator: uid, ...labels }, seconds),
      collect: (name, labelNames, sample) => this.collect(name, labelNames, sample),
    };
  }

  private readonly samplers = new Map<string, (() => Iterable<CollectedSample>)[]>();

  /**
   * A job-level gauge (labels `job` + `labelNames`) whose series are computed when scraped: every
   * sampler registered under `name` contributes its series (one per source or sink instance).
   */
  collect(name: string, labelNames: readonly string[], sample: () => Iterable<CollectedSample>): () => void {
    const unregister = () => {
      const list = this.samplers.get(name);
      const at = list?.indexOf(sample) ?? -1;
      if (at >= 0) list?.splice(at, 1);
    };
    const existing = this.samplers.get(name);
    if (existing !== undefined) {
      existing.push(sample);
      return unregister;
    }
    const samplers = [sample];
    this.samplers.set(name, samplers);
    const jobName = this.jobName;
    const gauge = new Gauge({
      name,
      help: helpFor(name),
      labelNames: ['job', ...labelNames],
      aggregator: gaugeAggregator(name),
      registers: [this.registry],
      collect() {
        this.reset();
        for (const s of samplers) for (const [labels, value] of s()) this.set({ job: jobName, ...labels }, value);
      },
    });
    this.gauges.set(name, gauge);
    return unregister;
  }

  /** A job-level histogram in seconds (operator buckets) with `job` + `labelNames`. */
  jobHistogram(name: string, labelNames: readonly string[]): Histogram {
    let histogram = this.histograms.get(name);
    if (histogram === undefined) {
      histogram = new Histogram({
        name,
        help: helpFor(name),
        labelNames: ['job', ...labelNames],
        buckets: [...OPERATOR_SECONDS_BUCKETS],
        registers: [this.registry],
      });
      this.histograms.set(name, histogram);
    }
    return histogram;
  }

  /** A job-level gauge (no operator label). */
  setJobGauge(name: string, value: number, labels: Labels = {}): void {
    this.gauge(name, labels, false).set({ job: this.jobName, ...labels }, value);
  }

  incJobCounter(name: string, labels: Labels = {}, by = 1): void {
    this.counter(name, labels, false).inc({ job: this.jobName, ...labels }, by);
  }

  private counter(name: string, labels: Labels, perOperator = true): Counter {
    let counter = this.counters.get(name);
    if (counter === undefined) {
      counter = new Counter({
        name,
        help: helpFor(name),
        labelNames: labelNames(labels, perOperator),
        registers: [this.registry],
      });
      this.counters.set(name, counter);
    }
    return counter;
  }

  private gauge(name: string, labels: Labels, perOperator = true): Gauge {
    let gauge = this.gauges.get(name);
    if (gauge === undefined) {
      gauge = new Gauge({
        name,
        help: helpFor(name),
        labelNames: labelNames(labels, perOperator),
        aggregator: gaugeAggregator(name),
        registers: [this.registry],
      });
      this.gauges.set(name, gauge);
    }
    return gauge;
  }

  private histogram(name: string, labels: Labels): Histogram {
    let histogram = this.histograms.get(name);
    if (histogram === undefined) {
      histogram = new Histogram({
        name,
        help: helpFor(name),
        labelNames: labelNames(labels, true),
        buckets: [...OPERATOR_SECONDS_BUCKETS],
        registers: [this.registry],
      });
      this.histograms.set(name, histogram);
    }
    return histogram;
  }
}

/**
 * How a parallel job's `/metrics` combines one gauge over its subtasks: an operator's watermark is
 * the slowest subtask's (as the next operator would see it), lags and latencies the worst, sizes
 * and buffers the total.
 */
function gaugeAggregator(name: string): 'min' | 'max' | 'sum' {
  if (name === 'cdcflow_watermark_ms') return 'min';
  // SLO verdicts: the job meets an SLO only if every subtask does.
  if (name === 'cdcflow_slo_ok') return 'min';
  if (/_lag_ms$|_latency_ms$|_seconds$|_age_ms$|^cdcflow_slo_value$|^cdcflow_sink_info$/.test(name)) return 'max';
  return 'sum';
}

function labelNames(labels: Labels, perOperator: boolean): string[] {
  return [...(perOperator ? ['job', 'operator'] : ['job']), ...Object.keys(labels).sort()];
}

const help: Record<string, string> = {
  cdcflow_records_in_total: 'Records an operator received',
  cdcflow_records_out_total: 'Records an operator emitted on its main output',
  cdcflow_operator_busy_seconds_total:
    'Time an operator spent in its own code (processing batches), summed over its subtasks',
  cdcflow_operator_backpressured_seconds_total:
    'Time an operator waited handing its output downstream (backpressure), summed over its subtasks',
  cdcflow_watermark_ms: 'Current event-time watermark of an operator (epoch ms)',
  cdcflow_watermark_lag_ms: 'Wall clock minus the operator watermark, computed when scraped',
  cdcflow_job_restarts_total: 'Restarts of the job from its latest checkpoint after a failed attempt',
  cdcflow_job_failures_total: 'Failed attempts, by the class of the error and whether it was retriable',
  cdcflow_job_status:
    'The job status: 1 for the current one (starting, running, restarting, failed, finished, stopped)',
  cdcflow_job_healthy: '1 when /healthz answers 200, 0 when it answers 503',
  cdcflow_job_consecutive_failures: 'Attempts failed in a row without a checkpoint completing in between',
  cdcflow_last_checkpoint_age_seconds:
    'Seconds since the last completed checkpoint (since the job started before the first), computed when scraped',
  cdcflow_dead_letters_total: 'Messages sent to the dead-letter topic, by reason',
  cdcflow_late_events_total: 'Events later than the allowed lateness, by reason',
  cdcflow_upsert_duplicates_total: 'Replayed change events dropped because their LSN was not newer',
  cdcflow_upsert_truncates_total: "TRUNCATE events propagated by an upsert (truncate: 'propagate'), by table",
  cdcflow_upsert_truncate_deletes_total: 'Keys a propagated TRUNCATE turned into deletes',
  cdcflow_upsert_dropped_truncated_total: 'Changes dropped because they committed before a TRUNCATE already applied',
  cdcflow_source_transaction_markers_total:
    'Debezium transaction-metadata records (BEGIN/END) read, by topic and status',
  cdcflow_checkpoints_total: 'Checkpoints by outcome',
  cdcflow_checkpoint_coordinator_errors_total:
    'Checkpoint triggers, sink notifications and retention runs that failed (each is also a warning in the log)',
  cdcflow_checkpoint_last_success_timestamp_seconds: 'When the last checkpoint completed',
  cdcflow_checkpoint_size_bytes: 'Bytes written by the last completed checkpoint',
  cdcflow_state_snapshot_sync_seconds:
    'Keyed-state snapshot, synchronous part at the barrier (flush, capture the delta, pin the store view): the task loop waits',
  cdcflow_state_snapshot_async_seconds:
    'Keyed-state snapshot, asynchronous part (the file written and durable, then the ack) while records keep flowing',
  cdcflow_sink_freshness_seconds:
    'Source commit (source.ts_ms) to committed in the sink, per record reaching the sink (labels job, sink = the sink operator uid), whatever the operator chain',
  cdcflow_source_lag_records:
    'Log end offset minus the position read, per partition (end offsets refreshed every few seconds), computed when scraped',
  cdcflow_source_catch_up_seconds:
    "Estimated seconds to read up to the log end at the lag's recent slope: 0 without lag, +Inf while the lag does not shrink",
  cdcflow_source_silence_seconds:
    'Seconds since the last record (basis="event": its source ts_ms; basis="fetch": the last fetch with data), since the source opened before the first; computed when scraped',
  cdcflow_sink_backlog_records:
    'Records the sources handed to the job that no checkpoint committed by this sink covers yet',
  cdcflow_sink_uncommitted_age_seconds:
    'Now minus the source commit time of the oldest record that reached the sink and is not committed yet (0 when none): grows while a sink stalls',
  cdcflow_sink_info: 'One series per sink: its kind and replay safety (exactly-once, idempotent, at-least-once)',
  cdcflow_slo_ok: '1 while the SLO is met, 0 while it is not',
  cdcflow_slo_value: 'The measured value the SLO compares with its limit (seconds)',
  cdcflow_sink_change_visibility_seconds:
    'Source commit (source.ts_ms) to visible in the sink, per change that carries its source time (upsert outputs), measured by the sink',
  cdcflow_sink_commit_seconds: 'Pre-commit (barrier at the sink) to committed and visible, per checkpoint',
  cdcflow_sink_records_committed_total: 'Changes made visible in the sink',
};

function helpFor(name: string): string {
  return help[name] ?? name.replace(/^cdcflow_/, '').replace(/_/g, ' ');
}
