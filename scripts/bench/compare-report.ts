/** The compare bench's table: medians per system, ratios against cdcflow from the same rounds. */
import { fmt, median } from './bench-format.ts';

/** One run of one system. A failed run has no rate. */
export interface CompareRun {
  readonly eventsPerSecond?: number;
  readonly cpuSeconds?: number;
  /** Kafka messages over the span (for CPU per message). */
  readonly messages?: number;
  readonly peakRssMb?: number;
  /** Empty when the output matched the oracle; "not checked" etc. otherwise. */
  readonly oracle: string;
  readonly error?: string;
}

export interface CompareRow {
  readonly job: string;
  readonly parallelism: number;
  readonly system: string;
  readonly runs: readonly CompareRun[];
}

const ok = (r: CompareRun): r is CompareRun & { eventsPerSecond: number } =>
  r.error === undefined && r.eventsPerSecond !== undefined && Number.isFinite(r.eventsPerSecond);

/** cdcflow's median rate over the peer's (> 1: cdcflow is faster); undefined when either has no successful run. */
export function ratioVsCdcflow(cdcflow: readonly CompareRun[], peer: readonly CompareRun[]): number | undefined {
  const a = cdcflow.filter(ok).map((r) => r.eventsPerSecond);
  const b = peer.filter(ok).map((r) => r.eventsPerSecond);
  if (a.length === 0 || b.length === 0) return undefined;
  return median(a) / median(b);
}

/** Per-round ratios (same round, so the same background load): the spread the median hides. */
export function roundRatios(cdcflow: readonly CompareRun[], peer: readonly CompareRun[]): number[] {
  const ratios: number[] = [];
  for (let i = 0; i < Math.min(cdcflow.length, peer.length); i++) {
    const a = cdcflow[i];
    const b = peer[i];
    if (a !== undefined && b !== undefined && ok(a) && ok(b)) ratios.push(a.eventsPerSecond / b.eventsPerSecond);
  }
  return ratios;
}

/** A markdown table, one line per job, parallelism and system; cdcflow first in each group. */
export function compareTable(rows: readonly CompareRow[]): string {
  const lines = [
    '| job | p | system | events/s (median) | per round | cdcflow × (range) | CPU µs/message | peak RSS | oracle |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const row of rows) {
    const base = rows.find((r) => r.job === row.job && r.parallelism === row.parallelism && r.system === 'cdcflow');
    const good = row.runs.filter(ok);
    const rate = good.length === 0 ? 'failed' : fmt(median(good.map((r) => r.eventsPerSecond)));
    const perRound = row.runs.map((r) => (ok(r) ? fmt(r.eventsPerSecond) : 'failed')).join(', ');
    let ratio = '–';
    if (base !== undefined && row.system !== 'cdcflow') {
      const m = ratioVsCdcflow(base.runs, row.runs);
      const each = roundRatios(base.runs, row.runs);
      ratio =
        m === undefined
          ? 'n/a'
          : `${m.toFixed(2)}×${each.length > 1 ? ` (${Math.min(...each).toFixed(2)}–${Math.max(...each).toFixed(2)})` : ''}`;
    }
    const cpu = good.filter((r) => r.cpuSeconds !== undefined && r.messages !== undefined);
    const perMessage =
      cpu.length === 0 ? '–' : fmt(median(cpu.map((r) => ((r.cpuSeconds as number) / (r.messages as number)) * 1e6)));
    const rss = good.filter((r) => r.peakRssMb !== undefined);
    const peak = rss.length === 0 ? '–' : `${fmt(median(rss.map((r) => r.peakRssMb as number)))} MB`;
    lines.push(
      `| ${row.job} | ${row.parallelism} | ${row.system} | ${rate} | ${perRound} | ${ratio} | ${perMessage} | ${peak} | ${verdictOf(row.runs)} |`,
    );
  }
  return lines.join('\n');
}

/** The runs' oracle verdicts in one cell: "matched" when all matched, else each distinct one (cut short; the round lines have them whole). */
function verdictOf(runs: readonly CompareRun[]): string {
  const each = runs.map((r) => (r.error !== undefined ? `failed: ${r.error}` : r.oracle === '' ? 'matched' : r.oracle));
  const distinct = [...new Set(each.map((v) => (v.length > 140 ? `${v.slice(0, 139)}…` : v)))];
  if (distinct.length === 1) return distinct[0] ?? '';
  return distinct
    .map((v) => `${v} (${each.filter((e) => e.startsWith(v.replace(/…$/, ''))).length} of ${runs.length})`)
    .join(' / ');
}

/** The system name of the raw client row (the kafkajs consumer the source is built on, decoding off). */
export const RAW_CONSUME = 'raw kafkajs consume';

const medianRate = (row: CompareRow | undefined): number | undefined => {
  const good = row?.runs.filter(ok) ?? [];
  return good.length === 0 ? undefined : median(good.map((r) => r.eventsPerSecond));
};

/**
 * Issue 16's targets, each as measured in this run (medians): upsert ≥ 3× the best peer at p=1
 * and ≥ 3× Flink at p=2, windows ≥ 2× Flink, and cdcflow ≥ 40 % of the raw consume rate of the
 * client it ships. A target whose rows are missing (not run, failed) says so.
 */
export function targetsTable(rows: readonly CompareRow[]): string {
  const find = (job: string, p: number, system: string) =>
    rows.find((r) => r.job === job && r.parallelism === p && r.system === system);
  const cdcflow = (job: string, p: number) => medianRate(find(job, p, 'cdcflow'));
  const lines = ['| target | measured (medians) | met |', '|---|---|---|'];
  const add = (target: string, value: number | undefined, goal: number, show: (v: number) => string, why: string) =>
    lines.push(
      `| ${target} | ${value === undefined ? `not measured (${why})` : show(value)} | ${value === undefined ? '–' : value >= goal ? 'yes' : 'no'} |`,
    );
  const times = (v: number) => `${v.toFixed(2)}×`;
  const peersAt = (job: string, p: number) =>
    rows.filter((r) => r.job === job && r.parallelism === p && r.system !== 'cdcflow' && r.system !== RAW_CONSUME);
  const best = (job: string, p: number) => {
    const rated = peersAt(job, p).flatMap((r) => {
      const m = medianRate(r);
      return m === undefined ? [] : [{ system: r.system, rate: m }];
    });
    return rated.sort((a, b) => b.rate - a.rate)[0];
  };
  const ratio = (a: number | undefined, b: number | undefined) =>
    a === undefined || b === undefined ? undefined : a / b;
  const upsertBest = best('upsert', 1);
  add(
    `upsert p=1 ≥ 3× the best peer${upsertBest === undefined ? '' : ` (${upsertBest.system})`}`,
    ratio(cdcflow('upsert', 1), upsertBest?.rate),
    3,
    times,
    'upsert p=1 with a peer',
  );
  add(
    'upsert p=2 ≥ 3× Flink',
    ratio(cdcflow('upsert', 2), medianRate(find('upsert', 2, 'flink'))),
    3,
    times,
    'upsert p=2 with flink',
  );
  add(
    'windows p=1 ≥ 2× Flink',
    ratio(cdcflow('windows', 1), medianRate(find('windows', 1, 'flink'))),
    2,
    times,
    'windows with flink',
  );
  const raw = medianRate(find('consume', 1, RAW_CONSUME));
  for (const job of ['upsert', 'windows'])
    add(
      `${job} p=1 ≥ 40 % of the raw consume rate`,
      ratio(cdcflow(job, 1), raw),
      0.4,
      (v) => `${(v * 100).toFixed(0)} %`,
      `${job} p=1 and the raw consume row`,
    );
  return lines.join('\n');
}
