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
