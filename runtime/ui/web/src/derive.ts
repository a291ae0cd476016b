/**
 * Turns successive overview snapshots into what an on-call engineer reads: rates from counter
 * deltas, busy and backpressure ratios, windowed quantiles from histogram deltas, ages.
 */
import type { JobOverview, MetricSample, MetricSamples } from '../../overview-types.ts';

export type Labels = Readonly<Record<string, string>>;

export function samples(m: MetricSamples, name: string): readonly MetricSample[] {
  return m[name] ?? [];
}

/** Sum of the samples of `name` whose labels include `match`; undefined when there is no such series. */
export function total(m: MetricSamples, name: string, match: Labels = {}): number | undefined {
  let sum: number | undefined;
  for (const s of samples(m, name)) {
    if (!matches(s.labels, match) || s.value === null) continue;
    sum = (sum ?? 0) + s.value;
  }
  return sum;
}

export function matches(labels: Labels, match: Labels): boolean {
  return Object.entries(match).every(([k, v]) => labels[k] === v);
}

/** Per-second rate of a counter between two snapshots (undefined before the second one). */
export function rate(
  now: JobOverview,
  before: JobOverview | undefined,
  name: string,
  match: Labels = {},
): number | undefined {
  if (before === undefined) return undefined;
  const a = total(now.metrics, name, match);
  const b = total(before.metrics, name, match) ?? 0;
  const seconds = (now.nowMs - before.nowMs) / 1000;
  if (a === undefined || seconds <= 0) return undefined;
  // A restart resets nothing here (the registry outlives attempts), but a negative delta must not show.
  return Math.max(0, (a - b) / seconds);
}

/** A counter's growth between two snapshots. */
export function delta(
  now: JobOverview,
  before: JobOverview | undefined,
  name: string,
  match: Labels = {},
): number | undefined {
  const a = total(now.metrics, name, match);
  if (a === undefined) return undefined;
  return Math.max(0, a - (before === undefined ? 0 : (total(before.metrics, name, match) ?? 0)));
}

/** Distinct values of one label over the series of a metric. */
export function labelValues(m: MetricSamples, name: string, label: string): string[] {
  return [
    ...new Set(
      samples(m, name)
        .map((s) => s.labels[label])
        .filter((v): v is string => v !== undefined),
    ),
  ].sort();
}

/** Distinct label sets (without `le`) of a metric. */
export function seriesOf(m: MetricSamples, name: string, keys: readonly string[]): Labels[] {
  const seen = new Map<string, Labels>();
  for (const s of samples(m, name)) {
    const picked = Object.fromEntries(
      keys.filter((k) => s.labels[k] !== undefined).map((k) => [k, s.labels[k] as string]),
    );
    seen.set(JSON.stringify(picked), picked);
  }
  return [...seen.values()];
}

interface Buckets {
  readonly le: number[];
  readonly counts: number[];
}

function bucketsOf(m: MetricSamples, name: string, match: Labels): Buckets | undefined {
  const byLe = new Map<number, number>();
  for (const s of samples(m, `${name}_bucket`)) {
    if (!matches(s.labels, match) || s.value === null) continue;
    const le = s.labels['le'] === '+Inf' ? Number.POSITIVE_INFINITY : Number(s.labels['le']);
    byLe.set(le, (byLe.get(le) ?? 0) + s.value);
  }
  if (byLe.size === 0) return undefined;
  const le = [...byLe.keys()].sort((a, b) => a - b);
  return { le, counts: le.map((l) => byLe.get(l) ?? 0) };
}

/**
 * The q-quantile (seconds) of what a histogram observed between two snapshots, interpolated within
 * its bucket as Prometheus's histogram_quantile does; over everything observed when `before` is
 * undefined; undefined when nothing was observed.
 */
export function quantile(
  q: number,
  now: MetricSamples,
  before: MetricSamples | undefined,
  name: string,
  match: Labels = {},
): number | undefined {
  const a = bucketsOf(now, name, match);
  if (a === undefined) return undefined;
  const b = before === undefined ? undefined : bucketsOf(before, name, match);
  const counts = a.counts.map((c, i) => c - (b?.le[i] === a.le[i] ? (b?.counts[i] ?? 0) : 0));
  const n = counts[counts.length - 1] ?? 0;
  if (n <= 0) return undefined;
  const rank = q * n;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i] ?? 0;
    if (c < rank) continue;
    const upper = a.le[i] ?? 0;
    const lower = i === 0 ? 0 : (a.le[i - 1] ?? 0);
    if (!Number.isFinite(upper)) return lower;
    const below = i === 0 ? 0 : (counts[i - 1] ?? 0);
    return lower + (upper - lower) * ((rank - below) / Math.max(1, c - below));
  }
  return undefined;
}

export function formatRate(v: number | undefined): string {
  if (v === undefined) return '–';
  if (v >= 1e6) return `${(v / 1e6).toFixed(1)}M/s`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)}k/s`;
  return `${v < 10 && v > 0 ? v.toFixed(1) : Math.round(v)}/s`;
}

export function formatCount(v: number | undefined | null): string {
  if (v === undefined || v === null) return '–';
  if (Math.abs(v) >= 1e6) return `${(v / 1e6).toFixed(2)}M`;
  if (Math.abs(v) >= 1e4) return `${(v / 1e3).toFixed(1)}k`;
  return String(Math.round(v));
}

export function formatSeconds(s: number | undefined | null): string {
  if (s === undefined || s === null || !Number.isFinite(s)) return '–';
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} m ${Math.round(s % 60)} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} m`;
  return `${Math.floor(s / 86400)} d ${Math.round((s % 86400) / 3600)} h`;
}

export function formatBytes(b: number | undefined | null): string {
  if (b === undefined || b === null) return '–';
  if (b < 1024) return `${b} B`;
  if (b < 1024 * 1024) return `${(b / 1024).toFixed(1)} KiB`;
  if (b < 1024 ** 3) return `${(b / 1024 / 1024).toFixed(1)} MiB`;
  return `${(b / 1024 ** 3).toFixed(2)} GiB`;
}

export function formatPercent(r: number | undefined): string {
  return r === undefined ? '–' : `${Math.round(Math.min(1, Math.max(0, r)) * 100)}%`;
}

export function clockTime(ms: number): string {
  return new Date(ms).toISOString().slice(11, 19);
}
