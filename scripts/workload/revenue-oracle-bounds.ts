import {
  RevenueWindowOracle,
  revenueWindowOracle,
  type OracleRecord,
  type RevenueOracleOptions,
  type RevenueOracleResult,
} from './revenue-oracle.ts';

/**
 * Revenue-window oracles for engines whose consumption order is not one sequence (parallel jobs):
 * each window subtask takes the minimum of its channels' watermarks, one per source subtask, in
 * whatever timing the exchange delivered them, so which late-by-construction records are late
 * depends on how far the other subtask had read. What holds under every timing:
 * - A record's judging watermark never exceeds its own partition's, computed from the records of
 *   that partition before it (the minimum over channels and partitions includes it, and batches
 *   are judged before they advance it). So a record that is not late even by that watermark is on
 *   time under every order — `possiblyLate` is the complement.
 * - Whatever the engine decided, the window results are exactly the on-time records' sums.
 */

/** LSNs of the records late by their own partition's watermark alone: no other record can be late. */
export function possiblyLate(records: Iterable<OracleRecord>, options: RevenueOracleOptions = {}): Set<number> {
  const byPartition = new Map<number, OracleRecord[]>();
  for (const record of records) {
    const own = byPartition.get(record.partition) ?? [];
    own.push(record);
    byPartition.set(record.partition, own);
  }
  const late = new Set<number>();
  for (const own of byPartition.values()) {
    // One partition alone, judged per record (the highest watermark its prefix allows).
    const alone = revenueWindowOracle(
      own.map((r) => ({ ...r, partition: 0 })),
      { ...options, partitions: 1 },
    );
    for (const record of alone.late) late.add(record.lsn);
  }
  return late;
}

/**
 * The results an engine must produce when exactly the records with the LSNs in `late` (a list: a
 * duplicate has its original's LSN, and both may be late) went to the side output. Of two records
 * with one LSN the first counts late first; they have the same time and amount, so the sums agree.
 */
export function revenueWindowsDecided(
  records: Iterable<OracleRecord>,
  late: readonly number[],
  options: RevenueOracleOptions = {},
): RevenueOracleResult {
  const pending = new Map<number, number>();
  for (const lsn of late) pending.set(lsn, (pending.get(lsn) ?? 0) + 1);
  const oracle = new RevenueWindowOracle(options);
  for (const record of records) {
    if (record.event === null) continue;
    const lsn = record.event.source.lsn;
    const left = pending.get(lsn) ?? 0;
    if (left > 0) pending.set(lsn, left - 1);
    oracle.pushDecided(record, left > 0);
  }
  const unmatched = [...pending].filter(([, n]) => n > 0).map(([lsn]) => lsn);
  if (unmatched.length > 0)
    throw new RangeError(
      `late LSNs not in the input (or late more often than they occur): ${unmatched.slice(0, 5).join(', ')}`,
    );
  return oracle.result();
}
