/** What a benchmark's checkpoints cost: read back from their metadata and from the metrics registry. */
import { existsSync } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import { METADATA_FILE, parseMetadata, type CheckpointMetadata } from '../../checkpoints/index.ts';
import { fmt, median, size } from './bench-format.ts';

export interface CheckpointRow {
  readonly id: number;
  /** What this checkpoint wrote: a delta of the changes, a full snapshot (the chain restarts), or no state. */
  readonly kind: 'delta' | 'full' | 'none';
  readonly durationMs: number;
  readonly bytes: number;
  /** Bytes of all state files this checkpoint references (the state a restore reads). */
  readonly stateBytes: number;
  /** Records that reached the sink between the previous barrier and this one. */
  readonly changes: number;
}

/** One histogram of the registry: observations, their sum, and the bucket bound the largest fell under. */
export interface HistogramSummary {
  readonly count: number;
  readonly sumSeconds: number;
  /** Smallest bucket bound holding every observation (the maximum lies at or below it). */
  readonly maxAtMostSeconds: number;
}

/** cdcflow_checkpoint_duration_seconds (count, sum), the last cdcflow_checkpoint_size_bytes, and the keyed snapshots' two phases. */
export interface CheckpointMetrics {
  readonly count: number;
  readonly sumSeconds: number;
  readonly lastSizeBytes: number;
  /** The part of keyed snapshots the task loop waited for (at the barrier). */
  readonly snapshotSync?: HistogramSummary;
  /** The part written while the loop ran (barrier → file durable → ack). */
  readonly snapshotAsync?: HistogramSummary;
}

async function histogram(registry: Registry, name: string): Promise<HistogramSummary> {
  const values = (await registry.getSingleMetric(name)?.get())?.values ?? [];
  const named = (suffix: string) =>
    values.filter((v) => (v as { metricName?: string }).metricName === `${name}${suffix}`);
  const sum = (suffix: string) => named(suffix).reduce((s, v) => s + v.value, 0);
  const count = sum('_count');
  const bounds = new Map<number, number>();
  for (const v of named('_bucket')) {
    const le = v.labels['le'] === '+Inf' ? Number.POSITIVE_INFINITY : Number(v.labels['le']);
    bounds.set(le, (bounds.get(le) ?? 0) + v.value);
  }
  const full = [...bounds].filter(([, n]) => n >= count).map(([le]) => le);
  return { count, sumSeconds: sum('_sum'), maxAtMostSeconds: full.length === 0 ? Number.NaN : Math.min(...full) };
}

export async function checkpointMetrics(registry: Registry): Promise<CheckpointMetrics> {
  const total = await histogram(registry, 'cdcflow_checkpoint_duration_seconds');
  const sizes = (await registry.getSingleMetric('cdcflow_checkpoint_size_bytes')?.get())?.values ?? [];
  return {
    count: total.count,
    sumSeconds: total.sumSeconds,
    lastSizeBytes: sizes[0]?.value ?? 0,
    snapshotSync: await histogram(registry, 'cdcflow_state_snapshot_sync_seconds'),
    snapshotAsync: await histogram(registry, 'cdcflow_state_snapshot_async_seconds'),
  };
}

/** `mean X ms, max ≤ Y ms` of one phase, or '-' when nothing was observed. */
export function phaseSummary(h: HistogramSummary | undefined): string {
  if (h === undefined || h.count === 0) return '-';
  return `mean ${fmt((h.sumSeconds / h.count) * 1000)} ms, max ≤ ${fmt(h.maxAtMostSeconds * 1000)} ms (${h.count})`;
}

/** Every completed checkpoint of the run (keep retention off): duration, bytes written, state it references. */
export async function checkpointRows(
  jobRoot: string,
  atBarrier: ReadonlyMap<number, number>,
): Promise<CheckpointRow[]> {
  const metadata: CheckpointMetadata[] = [];
  for (const name of await readdir(jobRoot)) {
    const file = join(jobRoot, name, METADATA_FILE);
    if (name.startsWith('chk-') && existsSync(file)) metadata.push(parseMetadata(await readFile(file, 'utf8'), file));
  }
  metadata.sort((a, b) => a.checkpointId - b.checkpointId);
  const sizes = new Map<string, number>();
  const rows: CheckpointRow[] = [];
  let before = 0;
  for (const m of metadata) {
    let stateBytes = 0;
    for (const path of m.sharedFiles) {
      if (!sizes.has(path)) sizes.set(path, (await stat(join(jobRoot, path))).size);
      stateBytes += sizes.get(path) ?? 0;
    }
    const seen = atBarrier.get(m.checkpointId) ?? before;
    const bytes = Object.values(m.tasks).reduce((s, t) => s + t.bytes, 0);
    rows.push({
      id: m.checkpointId,
      kind: writtenKind(m),
      durationMs: m.completedAtMs - m.triggeredAtMs,
      bytes,
      stateBytes,
      changes: seen - before,
    });
    before = seen;
  }
  return rows;
}

function writtenKind(m: CheckpointMetadata): CheckpointRow['kind'] {
  for (const task of Object.values(m.tasks)) {
    const files =
      (task.keyed as { files?: { kind: 'delta' | 'full'; checkpointId: number }[] } | undefined)?.files ?? [];
    const last = files[files.length - 1];
    if (last !== undefined && last.checkpointId === m.checkpointId) return last.kind;
  }
  return 'none';
}

/** `n, duration median / max, bytes median` over the rows of all runs. */
export function checkpointSummary(rows: readonly CheckpointRow[], runs: readonly (readonly CheckpointRow[])[]): string {
  if (rows.length === 0) return '';
  return `${median(runs.map((r) => r.length))}, ${fmt(median(rows.map((c) => c.durationMs)))} / ${fmt(Math.max(...rows.map((c) => c.durationMs)))} ms, ${size(median(rows.map((c) => c.bytes)))}`;
}

export function checkpointTable(title: string, rows: readonly CheckpointRow[]): void {
  const deltas = rows.filter((c) => c.kind === 'delta' && c.changes > 0);
  const fulls = rows.filter((c) => c.kind === 'full');
  console.log(
    `\ncheckpoints of ${title}: bytes written follow the changes since the last checkpoint, not the state size`,
  );
  if (deltas.length > 0) {
    const perChange = deltas.map((c) => c.bytes / c.changes);
    console.log(
      `  ${deltas.length} deltas: ${fmt(Math.min(...perChange))}–${fmt(Math.max(...perChange))} B per change (median ${fmt(median(perChange))}), ${size(median(deltas.map((c) => c.bytes)))} median, while the state grew to ${size(Math.max(...rows.map((c) => c.stateBytes)))}`,
    );
  }
  if (fulls.length > 0)
    console.log(
      `  ${fulls.length} full snapshots (the delta chain restarts): ${fulls.map((c) => `#${c.id} ${size(c.bytes)} ${fmt(c.durationMs)} ms`).join(', ')}`,
    );
  console.log('     id  changes    written  kind   B/change  state referenced  duration');
  for (const c of rows) {
    const perChange = c.changes === 0 || c.kind !== 'delta' ? '-' : fmt(c.bytes / c.changes);
    console.log(
      `  ${String(c.id).padStart(5)}  ${fmt(c.changes).padStart(7)}  ${size(c.bytes).padStart(9)}  ${c.kind.padEnd(5)}  ${perChange.padStart(8)}  ${size(c.stateBytes).padStart(16)}  ${fmt(c.durationMs).padStart(5)} ms`,
    );
  }
}
