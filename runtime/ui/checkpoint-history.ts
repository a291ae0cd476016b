/**
 * The last checkpoints of a running job (completed and aborted) with their duration, size and the
 * mean synchronous/asynchronous parts of the operator snapshots, for the web UI. The parts come
 * from the snapshot histograms' growth since the previous checkpoint (the workers' too), read
 * once per checkpoint; a read still in flight when the next one finishes makes that one's figures
 * cover both.
 */
import type { CheckpointStats } from '../../checkpoints/index.ts';
import type { JobMetrics } from '../metrics.ts';
import type { CheckpointHistoryEntry } from './overview-types.ts';

const CAPACITY = 60;
const SYNC = 'cdcflow_state_snapshot_sync_seconds';
const ASYNC = 'cdcflow_state_snapshot_async_seconds';

interface Totals {
  readonly sync: { sum: number; count: number };
  readonly async: { sum: number; count: number };
}

export class CheckpointHistory {
  private readonly entries: CheckpointHistoryEntry[] = [];
  private previous: Totals | undefined;
  private reading = false;

  constructor(private readonly metrics: JobMetrics) {
    metrics.onCheckpointFinished((stats) => this.finished(stats));
  }

  /** Oldest first. */
  list(): readonly CheckpointHistoryEntry[] {
    return this.entries.map((e) => ({ ...e }));
  }

  private finished(s: CheckpointStats): void {
    const entry: CheckpointHistoryEntry = {
      id: s.checkpointId,
      kind: s.kind,
      status: s.status,
      atMs: Date.now(),
      durationMs: s.durationMs,
      bytes: s.bytes,
      ...(s.failureReason === undefined ? {} : { failureReason: s.failureReason }),
    };
    this.entries.push(entry);
    if (this.entries.length > CAPACITY) this.entries.shift();
    if (s.status === 'completed' && !this.reading) void this.measureParts(entry);
  }

  private async measureParts(entry: CheckpointHistoryEntry): Promise<void> {
    this.reading = true;
    try {
      const totals = await this.totals();
      const before = this.previous;
      this.previous = totals;
      if (before === undefined) return;
      const mean = (now: { sum: number; count: number }, then: { sum: number; count: number }): number | undefined =>
        now.count > then.count ? ((now.sum - then.sum) / (now.count - then.count)) * 1000 : undefined;
      const syncMs = mean(totals.sync, before.sync);
      const asyncMs = mean(totals.async, before.async);
      if (syncMs !== undefined) entry.syncMs = syncMs;
      if (asyncMs !== undefined) entry.asyncMs = asyncMs;
    } catch {
      // A figure the UI can go without: the next checkpoint measures again.
    } finally {
      this.reading = false;
    }
  }

  private async totals(): Promise<Totals> {
    const registry = await this.metrics.aggregated();
    const json = await registry.getMetricsAsJSON();
    const totals: Totals = { sync: { sum: 0, count: 0 }, async: { sum: 0, count: 0 } };
    for (const metric of json) {
      const part = metric.name === SYNC ? totals.sync : metric.name === ASYNC ? totals.async : undefined;
      if (part === undefined) continue;
      for (const v of metric.values) {
        const sample = v as { metricName?: string; value: number };
        if (sample.metricName === `${metric.name}_sum`) part.sum += sample.value;
        else if (sample.metricName === `${metric.name}_count`) part.count += sample.value;
      }
    }
    return totals;
  }
}
