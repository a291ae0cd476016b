/**
 * The oracles every system in `npm run bench -- compare` is checked against, from the same
 * generated input: for the projection the live rows (count and sum of `after.amount`, exact), for
 * the revenue windows the final result per window and status given the system's own late set, and
 * whether that late set stays within what the reference rule can call late (revenue-oracle-bounds.ts).
 */
import { envelopePosition } from '../workload/commit-position.ts';
import type { WorkloadRecord } from '../workload/generator.ts';
import { centsToDecimal, decimalToCents } from '../workload/orders-model.ts';
import { possiblyLate } from '../workload/revenue-oracle-bounds.ts';
import { RevenueWindowOracle, type OracleRecord, type RevenueWindow } from '../workload/revenue-oracle.ts';

/** What a projection leaves behind, small enough for any engine to report. */
export interface ProjectionDigest {
  /** Ids with a live row (last event in commit order is not a delete). */
  readonly keys: number;
  /** Exact sum of the live rows' `after.amount`, as a decimal string. */
  readonly amount: string;
}

/** Incremental, so preset M is checked without holding the workload. */
export class ProjectionDigestOracle {
  readonly #latest = new Map<number, { position: string; cents: bigint | null }>();

  push(record: Pick<WorkloadRecord, 'id' | 'event'>): void {
    const { id, event } = record;
    if (event === null) return;
    const position = envelopePosition(event);
    const current = this.#latest.get(id);
    if (current !== undefined && current.position >= position) return;
    this.#latest.set(id, {
      position,
      cents: event.op === 'd' || event.after === null ? null : decimalToCents(event.after.amount),
    });
  }

  result(): ProjectionDigest {
    let keys = 0;
    let cents = 0n;
    for (const { cents: c } of this.#latest.values()) {
      if (c === null) continue;
      keys += 1;
      cents += c;
    }
    return { keys, amount: centsToDecimal(cents) };
  }
}

/** Empty when the digests agree (amounts compared as exact decimals, whatever their scale). */
export function projectionMismatch(got: ProjectionDigest, expected: ProjectionDigest): string[] {
  const found: string[] = [];
  if (got.keys !== expected.keys) found.push(`live keys ${got.keys}, oracle ${expected.keys}`);
  if (decimalToCents(normalise(got.amount)) !== decimalToCents(expected.amount))
    found.push(`sum of live amounts ${got.amount}, oracle ${expected.amount}`);
  return found;
}

/**
 * A record a run set aside as late. The LSN alone does not name a record: every snapshot row
 * carries the snapshot's LSN (a duplicate has its original's id and LSN, which is harmless: same
 * time and amount). Without `id` the first unmatched record with the LSN is taken.
 */
export interface LateRecordId {
  readonly lsn: number;
  readonly id?: number;
}

/** What a windows run produced: the last result per window and status, and the records it set aside as late. */
export interface WindowsOutput {
  readonly windows: readonly RevenueWindow[];
  readonly late: readonly LateRecordId[];
}

/** The window results when exactly `late` went to the side output (revenueWindowsDecided, by LSN and id). */
export function windowsGivenLate(
  records: readonly OracleRecord[],
  late: readonly LateRecordId[],
  options: { partitions?: number } = {},
): RevenueWindow[] {
  const pending = new Map<string, number>();
  const name = (lsn: number, id?: number) => (id === undefined ? `${lsn}` : `${lsn}|${id}`);
  for (const l of late) pending.set(name(l.lsn, l.id), (pending.get(name(l.lsn, l.id)) ?? 0) + 1);
  const take = (key: string): boolean => {
    const left = pending.get(key) ?? 0;
    if (left > 0) pending.set(key, left - 1);
    return left > 0;
  };
  const oracle = new RevenueWindowOracle({
    partitions: options.partitions ?? 1 + records.reduce((max, r) => Math.max(max, r.partition), 0),
  });
  for (const record of records) {
    if (record.event === null) continue;
    const lsn = record.event.source.lsn;
    oracle.pushDecided(record, take(name(lsn, record.id)) || take(name(lsn)));
  }
  const unmatched = [...pending].filter(([, n]) => n > 0).map(([key]) => key);
  if (unmatched.length > 0)
    throw new RangeError(
      `late records not in the input (or late more often than they occur): ${unmatched.slice(0, 5).join(', ')}`,
    );
  return oracle.result().windows;
}

export interface WindowsVerdict {
  /** The window results equal the oracle's for the records the system itself called late. */
  readonly consistent: boolean;
  /** Late records the reference rule (bounded out-of-orderness + allowed lateness) never calls late: on-time data dropped. */
  readonly droppedOnTime: number;
  readonly late: number;
  readonly problems: string[];
}

export function windowsVerdict(
  records: readonly OracleRecord[],
  output: WindowsOutput,
  possibly: ReadonlySet<number> = possiblyLate(records),
): WindowsVerdict {
  const problems: string[] = [];
  const droppedOnTime = output.late.filter((l) => !possibly.has(l.lsn)).length;
  let consistent = false;
  try {
    const expected = windowsGivenLate(records, output.late);
    const key = (w: RevenueWindow) =>
      `${w.windowStart}|${w.windowEnd}|${w.status}|${decimalToCents(normalise(w.sum))}|${w.count}`;
    const got = new Set(output.windows.map(key));
    const want = new Set(expected.map(key));
    const missing = [...want].filter((k) => !got.has(k));
    const extra = [...got].filter((k) => !want.has(k));
    consistent = missing.length === 0 && extra.length === 0;
    if (!consistent)
      problems.push(
        `window results: ${output.windows.length} rows, oracle ${expected.length}; ${missing.length} missing or different, ${extra.length} unexpected (e.g. ${missing[0] ?? extra[0]})`,
      );
  } catch (error) {
    problems.push((error as Error).message);
  }
  if (droppedOnTime > 0)
    problems.push(`${droppedOnTime} of ${output.late.length} late records are on time by the reference rule`);
  return { consistent, droppedOnTime, late: output.late.length, problems };
}

/** `"12.3"` → `"12.30"`, `"7"` → `"7.00"`: engines print exact decimals with different scales. */
function normalise(text: string): string {
  const [whole, fraction = ''] = text.split('.');
  return `${whole}.${fraction.padEnd(2, '0')}`;
}
