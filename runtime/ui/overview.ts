/**
 * Builds the web UI's snapshot of a job (overview-types.ts) from what the job already has: the
 * metrics registry (with a parallel job's workers), the plan, status and exceptions of the job
 * control, the checkpoint history and the recent dead letters.
 */
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import { recentDeadLetters } from '../../operators/recent-dead-letters.ts';
import type { JobMetrics } from '../metrics.ts';
import type { JobControl } from '../rest/job-control.ts';
import type { CheckpointHistory } from './checkpoint-history.ts';
import type { JobOverview, MetricSample, MetricSamples } from './overview-types.ts';

/** Per-subtask series the UI shows (the summed ones are in `metrics`). */
const PER_SUBTASK = new Set([
  'cdcflow_watermark_ms',
  'cdcflow_records_in_total',
  'cdcflow_records_out_total',
  'cdcflow_operator_busy_seconds_total',
  'cdcflow_operator_backpressured_seconds_total',
]);

export interface OverviewSources {
  readonly control: JobControl;
  readonly metrics: JobMetrics;
  readonly history: CheckpointHistory;
  readonly health: (() => JobOverview['health']) | undefined;
}

export async function buildOverview(o: OverviewSources): Promise<JobOverview> {
  const status = o.control.status();
  const registry = await o.metrics.aggregated();
  const metrics = samplesOf(
    (await registry.getMetricsAsJSON()) as MetricObjectWithValues<MetricValue<string>>[],
    () => true,
  );
  const workers = (await o.metrics.perSubtask()) ?? [];
  const subtasks = workers.map((w) =>
    samplesOf((Array.isArray(w) ? w : []) as MetricObjectWithValues<MetricValue<string>>[], (name) =>
      PER_SUBTASK.has(name),
    ),
  );
  return {
    job: o.control.jobName,
    nowMs: Date.now(),
    state: status.state,
    parallelism: status.parallelism,
    startedAtMs: status.startedAtMs,
    restarts: status.restarts,
    restoredFrom: status.restoredFrom,
    lastCompletedCheckpoint: status.lastCompletedCheckpoint,
    health: o.health?.() ?? { healthy: true, reasons: [] },
    plan: o.control.plan(),
    metrics,
    subtasks,
    checkpoints: o.history.list(),
    exceptions: status.exceptions
      .slice(-20)
      .map((e) => ({ atMs: e.atMs, message: e.message.length > 2000 ? `${e.message.slice(0, 2000)}…` : e.message })),
    deadLetters: recentDeadLetters(),
  };
}

/** `cdcflow_*` samples (not the process metrics) by sample name, without the `job` label every series carries. */
function samplesOf(
  json: readonly MetricObjectWithValues<MetricValue<string>>[],
  keep: (name: string) => boolean,
): MetricSamples {
  const out: Record<string, MetricSample[]> = {};
  for (const metric of json) {
    if (!metric.name.startsWith('cdcflow_') || metric.name.startsWith('cdcflow_process_') || !keep(metric.name))
      continue;
    for (const v of metric.values) {
      const name = (v as { metricName?: string }).metricName ?? metric.name;
      const { job: _job, ...labels } = v.labels as Record<string, string | number>;
      const value = Number.isFinite(v.value) ? v.value : null;
      (out[name] ??= []).push({
        labels: Object.fromEntries(Object.entries(labels).map(([k, l]) => [k, String(l)])),
        value,
      });
    }
  }
  return out;
}
