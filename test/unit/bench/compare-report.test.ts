import { describe, expect, it } from 'vitest';
import {
  ProjectionDigestOracle,
  projectionMismatch,
  windowsGivenLate,
  windowsVerdict,
} from '../../../scripts/bench/compare-oracle.ts';
import {
  RAW_CONSUME,
  compareTable,
  ratioVsCdcflow,
  roundRatios,
  targetsTable,
  type CompareRow,
  type CompareRun,
} from '../../../scripts/bench/compare-report.ts';
import { generateWorkload } from '../../../scripts/workload/generator.ts';
import { projectionOracle } from '../../../scripts/workload/oracle.ts';
import { decimalToCents } from '../../../scripts/workload/orders-model.ts';
import { revenueWindowOracle, type OracleRecord } from '../../../scripts/workload/revenue-oracle.ts';

const run = (eventsPerSecond: number, extra: Partial<CompareRun> = {}): CompareRun => ({
  eventsPerSecond,
  cpuSeconds: 1,
  messages: 10_000,
  peakRssMb: 200,
  oracle: '',
  ...extra,
});

describe('compare bench table (npm run bench -- compare)', () => {
  it('gives ratios of medians and per-round ratios against cdcflow, skipping failed runs', () => {
    const cdcflow = [run(10_000), run(12_000), run(9_000)];
    const flink = [run(5_000), { oracle: '', error: 'exit 1' }, run(6_000)];
    expect(ratioVsCdcflow(cdcflow, flink)).toBeCloseTo(10_000 / 6_000, 9); // medians: 10k over [5k, 6k] → 6k
    expect(roundRatios(cdcflow, flink)).toEqual([2, 1.5]);
    expect(ratioVsCdcflow(cdcflow, [{ oracle: '', error: 'build failed' }])).toBeUndefined();
  });

  it('prints one line per system, a failed peer as failed, never throwing', () => {
    const table = compareTable([
      { job: 'upsert', parallelism: 1, system: 'cdcflow', runs: [run(10_000), run(12_000), run(11_000)] },
      { job: 'upsert', parallelism: 1, system: 'flink', runs: [run(5_000), run(6_000), run(4_400)] },
      { job: 'upsert', parallelism: 1, system: 'quix', runs: [{ oracle: '', error: 'build failed: no python' }] },
    ]).split('\n');
    expect(table).toHaveLength(5);
    expect(table[2]).toContain('| cdcflow | 11,000 | 10,000, 12,000, 11,000 | – | 100 | 200 MB | matched |');
    expect(table[3]).toContain('| flink | 5,000 | 5,000, 6,000, 4,400 | 2.20× (2.00–2.50) |');
    expect(table[4]).toContain('| quix | failed | failed | n/a | – | – | failed: build failed: no python |');
  });

  it('says which runs an oracle verdict applies to when they differ', () => {
    const [, , line] = compareTable([
      {
        job: 'windows',
        parallelism: 1,
        system: 'cdcflow',
        runs: [run(1, { oracle: 'MISMATCH: late events' }), run(1), run(1)],
      },
    ]).split('\n');
    expect(line).toContain('| MISMATCH: late events (1 of 3) / matched (2 of 3) |');
  });
});

describe('compare bench oracles', () => {
  const records = [...generateWorkload({ seed: 3, events: 3_000, keys: 300, partitions: 3 })];

  it('digests the projection exactly as projectionOracle (live keys, sum of amounts)', () => {
    const digest = new ProjectionDigestOracle();
    for (const r of records) digest.push(r);
    const rows = projectionOracle(records);
    const result = digest.result();
    expect(result.keys).toBe(rows.size);
    expect(decimalToCents(result.amount)).toBe(
      [...rows.values()].reduce((sum, row) => sum + decimalToCents(row.amount), 0n),
    );
    expect(projectionMismatch({ keys: result.keys, amount: result.amount.replace(/0$/, '') }, result)).toEqual([]);
    expect(projectionMismatch({ keys: result.keys - 1, amount: '0.01' }, result)).toHaveLength(2);
  });

  it('accepts windows consistent with the late set and counts on-time events dropped as late', () => {
    const slim = records as readonly OracleRecord[];
    const reference = revenueWindowOracle(slim, { partitions: 3 });
    const late = reference.late.map((l) => ({ lsn: l.lsn, id: l.id }));
    expect(windowsVerdict(slim, { windows: reference.windows, late })).toMatchObject({
      consistent: true,
      droppedOnTime: 0,
      problems: [],
    });
    expect(
      windowsVerdict(slim, { windows: reference.windows, late: late.map(({ lsn }) => ({ lsn })) }).consistent,
    ).toBe(true);
    // An engine that drops an on-time event: its windows lack it, and the verdict says it was on time.
    const victim = slim.find(
      (r) => r.event !== null && r.event.op === 'u' && !late.some((l) => l.lsn === r.event?.source.lsn),
    ) as OracleRecord;
    const dropped = windowsVerdict(slim, {
      windows: reference.windows,
      late: [...late, { lsn: victim.event?.source.lsn as number, id: victim.id }],
    });
    expect(dropped.consistent).toBe(false);
    expect(dropped.droppedOnTime).toBe(1);
  });

  it('names a late snapshot row by its id: every snapshot row has the snapshot LSN', () => {
    const slim = records as readonly OracleRecord[];
    const snapshot = slim.filter((r) => r.event?.op === 'r');
    const last = snapshot.at(-1) as OracleRecord;
    expect(snapshot[0]?.event?.source.lsn).toBe(last.event?.source.lsn);
    // Dropping the last snapshot row takes its amount out of its own window, not the first snapshot row's.
    const expected = windowsGivenLate(slim, [{ lsn: last.event?.source.lsn as number, id: last.id }]);
    expect(expected).toEqual(
      windowsGivenLate(
        slim.filter((r) => r !== last),
        [],
      ),
    );
  });
});

describe('targetsTable', () => {
  const runs = (...rates: number[]): CompareRun[] => rates.map((eventsPerSecond) => ({ eventsPerSecond, oracle: '' }));
  const row = (job: string, parallelism: number, system: string, ...rates: number[]): CompareRow => ({
    job,
    parallelism,
    system,
    runs: runs(...rates),
  });

  it('reports each target from the medians of the same run, against the best peer where the issue says so', () => {
    const table = targetsTable([
      row('consume', 1, RAW_CONSUME, 100_000, 120_000, 110_000),
      row('upsert', 1, 'cdcflow', 30_000, 31_000, 29_000),
      row('upsert', 1, 'flink', 37_000, 36_000, 38_000),
      row('upsert', 1, 'quix', 10_000, 10_000, 10_000),
      row('windows', 1, 'cdcflow', 90_000, 90_000, 90_000),
      row('windows', 1, 'flink', 40_000, 45_000, 44_000),
    ]);
    expect(table).toContain('| upsert p=1 ≥ 3× the best peer (flink) | 0.81× | no |');
    expect(table).toContain('| upsert p=2 ≥ 3× Flink | not measured (upsert p=2 with flink) | – |');
    expect(table).toContain('| windows p=1 ≥ 2× Flink | 2.05× | yes |');
    expect(table).toContain('| upsert p=1 ≥ 40 % of the raw consume rate | 27 % | no |');
    expect(table).toContain('| windows p=1 ≥ 40 % of the raw consume rate | 82 % | yes |');
  });
});
