/**
 * The job's SLOs (configuration `slo`), evaluated from its own metrics (the aggregated registry,
 * so a parallel job's subtasks count too):
 *  - `freshness-p99:<sink>`: p99 of `cdcflow_sink_freshness_seconds` over the last `windowSeconds`
 *    (bucket upper bound, as Prometheus's histogram_quantile would interpolate at most to), or the
 *    sink's `cdcflow_sink_uncommitted_age_seconds` when larger: a stalled sink observes nothing,
 *    and its oldest uncommitted record keeps ageing;
 *  - `checkpoint-age`: `cdcflow_last_checkpoint_age_seconds`;
 *  - `silence` (every topic) or `silence:<topic>`: seconds since the last fetch that returned data
 *    from the topic (its least silent partition; `cdcflow_source_silence_seconds{basis="fetch"}`).
 * A value not measurable yet (no sink observation in the window, no partition known) is 0: met.
 */
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { JobMetrics } from '../metrics.ts';
import { JOB_DEFAULTS } from '../config/defaults.ts';
import type { SloOptions } from './slo-schema.ts';

export type { SloOptions } from './slo-schema.ts';

export interface SloState {
  readonly slo: string;
  readonly ok: boolean;
  readonly value: number;
  readonly limit: number;
}

export interface SloReport {
  readonly ok: boolean;
  /** Names of the SLOs not met. */
  readonly failing: readonly string[];
  readonly slos: readonly SloState[];
  readonly evaluatedAt: string;
}

type Metric = MetricObjectWithValues<MetricValue<string>>;
type Buckets = Map<string, Map<number, number>>;

export class SloMonitor {
  private last: SloReport;
  /** Freshness bucket counts per sink at past evaluations, oldest first (the p99 window's start). */
  private readonly history: { at: number; buckets: Buckets }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly unregister: (() => void)[] = [];

  constructor(
    private readonly options: SloOptions,
    private readonly sinks: readonly string[],
    private readonly sample: () => Promise<Metric[]>,
    private readonly now: () => number = Date.now,
  ) {
    this.last = this.report(this.declared().map(([slo, limit]) => ({ slo, ok: true, value: 0, limit })));
  }

  /** `cdcflow_slo_ok{slo}` / `cdcflow_slo_value{slo}` from the latest evaluation, every `everyMs`. */
  start(metrics: JobMetrics, everyMs = 2000): void {
    this.unregister.push(
      metrics.collect('cdcflow_slo_ok', ['slo'], () =>
        this.last.slos.map((s) => [{ slo: s.slo }, s.ok ? 1 : 0] as const),
      ),
      metrics.collect('cdcflow_slo_value', ['slo'], () =>
        this.last.slos.map((s) => [{ slo: s.slo }, s.value] as const),
      ),
    );
    // Nothing to evaluate without SLOs: no timer asking (a parallel job's workers) for metrics.
    if (this.declared().length === 0) return;
    this.timer = setInterval(() => void this.evaluate().catch(() => undefined), everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  get latest(): SloReport {
    return this.last;
  }

  async evaluate(): Promise<SloReport> {
    const metrics = await this.sample();
    const byName = new Map(metrics.map((m) => [m.name, m]));
    const now = this.now();
    const buckets = freshnessBuckets(byName.get('cdcflow_sink_freshness_seconds'));
    this.history.push({ at: now, buckets });
    const windowMs = (this.options.windowSeconds ?? JOB_DEFAULTS.sloWindowSeconds) * 1000;
    // Keep one snapshot at or before the window's start, and everything after it.
    while (this.history.length > 2 && (this.history[1] as { at: number }).at <= now - windowMs) this.history.shift();
    const base = (this.history[0] as { buckets: Buckets }).buckets;
    const states: SloState[] = [];
    for (const [slo, limit] of this.declared()) {
      let value = 0;
      if (slo === 'checkpoint-age') value = maxOf(byName.get('cdcflow_last_checkpoint_age_seconds'), () => true);
      else if (slo.startsWith('freshness-p99:')) {
        const sink = slo.slice('freshness-p99:'.length);
        const p99 = quantile(0.99, buckets.get(sink), base === buckets ? undefined : base.get(sink));
        const stalled = maxOf(byName.get('cdcflow_sink_uncommitted_age_seconds'), (l) => l['sink'] === sink);
        value = Math.max(p99, stalled);
      } else if (slo === 'silence' || slo.startsWith('silence:')) {
        const topic = slo === 'silence' ? undefined : slo.slice('silence:'.length);
        value = topicSilence(byName.get('cdcflow_source_silence_seconds'), topic);
      }
      states.push({ slo, ok: !(value > limit), value, limit });
    }
    this.last = this.report(states);
    return this.last;
  }

  private report(slos: SloState[]): SloReport {
    const failing = slos.filter((s) => !s.ok).map((s) => s.slo);
    return { ok: failing.length === 0, failing, slos, evaluatedAt: new Date(this.now()).toISOString() };
  }

  /** Every SLO the configuration declares, with its limit: known from the start. */
  private declared(): [string, number][] {
    const o = this.options;
    const out: [string, number][] = [];
    const fresh = o.sinkFreshnessP99Seconds;
    if (typeof fresh === 'number') for (const sink of this.sinks) out.push([`freshness-p99:${sink}`, fresh]);
    else if (fresh !== undefined)
      for (const [sink, limit] of Object.entries(fresh)) out.push([`freshness-p99:${sink}`, limit]);
    if (o.maxCheckpointAgeSeconds !== undefined) out.push(['checkpoint-age', o.maxCheckpointAgeSeconds]);
    const silence = o.maxSilenceSeconds;
    if (typeof silence === 'number') out.push(['silence', silence]);
    else if (silence !== undefined)
      for (const [topic, limit] of Object.entries(silence)) out.push([`silence:${topic}`, limit]);
    return out;
  }
}

function freshnessBuckets(metric: Metric | undefined): Buckets {
  const out: Buckets = new Map();
  for (const v of metric?.values ?? []) {
    if ((v as { metricName?: string }).metricName !== 'cdcflow_sink_freshness_seconds_bucket') continue;
    const sink = String(v.labels['sink']);
    const le = v.labels['le'] === '+Inf' ? Number.POSITIVE_INFINITY : Number(v.labels['le']);
    let m = out.get(sink);
    if (m === undefined) out.set(sink, (m = new Map()));
    m.set(le, (m.get(le) ?? 0) + v.value);
  }
  return out;
}

/** The upper bound of the bucket holding quantile q of the observations between `base` and `now` (cumulative buckets). */
export function quantile(
  q: number,
  now: Map<number, number> | undefined,
  base: Map<number, number> | undefined,
): number {
  if (now === undefined) return 0;
  const bounds = [...now.keys()].sort((a, b) => a - b);
  const count = (now.get(Number.POSITIVE_INFINITY) ?? 0) - (base?.get(Number.POSITIVE_INFINITY) ?? 0);
  if (count <= 0) return 0;
  for (const le of bounds) {
    const below = (now.get(le) ?? 0) - (base?.get(le) ?? 0);
    if (below >= q * count) return Number.isFinite(le) ? le : (bounds[bounds.length - 2] ?? 0);
  }
  return 0;
}

function maxOf(
  metric: Metric | undefined,
  match: (labels: Partial<Record<string, string | number>>) => boolean,
): number {
  let max = 0;
  for (const v of metric?.values ?? []) if (match(v.labels) && Number.isFinite(v.value) && v.value > max) max = v.value;
  return max;
}

/** A topic is as silent as its least silent partition; `undefined`: the most silent topic. */
function topicSilence(metric: Metric | undefined, topic: string | undefined): number {
  const perTopic = new Map<string, number>();
  for (const v of metric?.values ?? []) {
    if (v.labels['basis'] !== 'fetch' || !Number.isFinite(v.value)) continue;
    const t = String(v.labels['topic']);
    if (topic !== undefined && t !== topic) continue;
    perTopic.set(t, Math.min(perTopic.get(t) ?? Number.POSITIVE_INFINITY, v.value));
  }
  return perTopic.size === 0 ? 0 : Math.max(...perTopic.values());
}
