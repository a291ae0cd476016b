/**
 * The series every sink reports the same way, labelled `sink="<kind>"` (plus `job`, `operator`):
 *
 *  - `cdcflow_sink_change_visibility_seconds` — the moment a change became visible in the sink minus its
 *    source commit time (`source.ts_ms`, carried as `sourceTsMs` on the table change): one
 *    observation per change made visible (a change superseded by a newer one for the same key
 *    before it was written never became visible and is not counted);
 *  - `cdcflow_sink_commit_seconds` — from the barrier reaching the sink (start of the pre-commit)
 *    until that checkpoint's changes are visible: for two-phase sinks this spans the checkpoint's
 *    completion and the COMMIT PREPARED / EndTxn / fenced apply, for the others the flush;
 *  - `cdcflow_sink_records_committed_total`.
 *
 * Cost: the write path only appends each change's source time to a number array (a few ns);
 * the histogram is fed when the visibility time is known — at commit, from the stored times, one
 * `observe` per change (~1 µs, so ~1 s of CPU per million changes, against ~3 µs just to decode
 * one). Observing once per batch (with, say, its oldest time) would be cheaper but would weigh a
 * batch of 1 like a batch of 5000, which skews the quantiles; prom-client has no weighted observe.
 */
import type { OperatorMetrics } from '../operator.ts';

export type SinkKind = 'postgres' | 'kafka' | 'redis' | 'elasticsearch';

/**
 * Per change, measured by the sink at the moment it became visible (upsert outputs carry their
 * source time). `cdcflow_sink_freshness_seconds{job,sink}` is the runtime's, for every sink
 * whatever the operator chain (runtime/signals/sink-signals.ts).
 */
export const SINK_VISIBILITY_SECONDS = 'cdcflow_sink_change_visibility_seconds';
export const SINK_COMMIT_SECONDS = 'cdcflow_sink_commit_seconds';
export const SINK_RECORDS_COMMITTED = 'cdcflow_sink_records_committed_total';

export class SinkMetrics {
  readonly labels: Readonly<Record<string, string>>;

  constructor(
    private readonly metrics: OperatorMetrics,
    readonly sink: SinkKind,
  ) {
    this.labels = { sink };
  }

  /**
   * `records` changes became visible at `now` (epoch ms); `sourceTs` are the source commit times
   * of those that carry one (a `toChange`/`toWrite` mapping may leave them out).
   */
  visible(sourceTs: readonly number[], now: number, records: number = sourceTs.length): void {
    // Clamped: a source clock running ahead of ours would otherwise give negative ages.
    for (const ts of sourceTs) this.metrics.observe(SINK_VISIBILITY_SECONDS, Math.max(0, now - ts) / 1000, this.labels);
    if (records > 0) this.metrics.count(SINK_RECORDS_COMMITTED, this.labels, records);
  }

  /** The checkpoint whose pre-commit started at `preCommitAt` (epoch ms) is visible at `now`. */
  committed(preCommitAt: number | undefined, now: number): void {
    // Unknown after a restore: the pre-commit happened in an earlier process.
    if (preCommitAt !== undefined)
      this.metrics.observe(SINK_COMMIT_SECONDS, Math.max(0, now - preCommitAt) / 1000, this.labels);
  }

  count(name: string, by = 1): void {
    this.metrics.count(name, this.labels, by);
  }
}
