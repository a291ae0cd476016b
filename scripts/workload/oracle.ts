import type { ChangePosition } from '../../state/index.ts';
import { envelopePosition } from './commit-position.ts';
import type { WorkloadRecord } from './generator.ts';
import type { OrderRow } from './orders-model.ts';
import type { OracleRecord } from './revenue-oracle.ts';

/**
 * Oracle 1 (projection): for each id, the row of its event last in commit order (`source.sequence`,
 * snapshot rows below streamed changes); ids whose last event is a delete are absent.
 * Order-independent, so any consumption order gives the same map.
 */
export function projectionOracle(records: Iterable<OracleRecord>): Map<number, OrderRow> {
  const latest = new Map<number, { position: ChangePosition; row: OrderRow | null }>();
  for (const { id, event } of records) {
    if (event === null) continue;
    const current = latest.get(id);
    const position = envelopePosition(event);
    if (current !== undefined && current.position >= position) continue;
    latest.set(id, { position, row: event.op === 'd' ? null : event.after });
  }
  const rows = new Map<number, OrderRow>();
  for (const [id, { row }] of latest) if (row !== null) rows.set(id, row);
  return rows;
}

/** One table change of the changelog oracle: the row after it, null for a delete. */
export interface ChangelogEntry {
  readonly position: ChangePosition;
  readonly row: OrderRow | null;
}

/**
 * Oracle 1 as a changelog: per id, the table changes a position-guarded upsert emits for `records`
 * consumed in this order (each id lives in one partition, so any interleaving of partitions gives
 * the same lists) — every event after the last applied one for its id in commit order;
 * replays and tombstones emit nothing. The last entry of each list is what a compacted topic
 * keeps; the ids whose last entry has a row are exactly {@link projectionOracle}'s.
 */
export function changelogOracle(records: Iterable<OracleRecord>): Map<number, ChangelogEntry[]> {
  const changes = new Map<number, ChangelogEntry[]>();
  for (const { id, event } of records) {
    if (event === null) continue;
    const list = changes.get(id);
    const last = list?.at(-1);
    const position = envelopePosition(event);
    if (last !== undefined && last.position >= position) continue;
    const entry = { position, row: event.op === 'd' ? null : event.after };
    if (list === undefined) changes.set(id, [entry]);
    else list.push(entry);
  }
  return changes;
}

export interface OpCounts {
  r: number;
  c: number;
  u: number;
  d: number;
  tombstones: number;
  duplicates: number;
  late: number;
}

/** Records by op as emitted (duplicates counted in their op too, and also in `duplicates`). */
export function countByOp(records: Iterable<Pick<WorkloadRecord, 'event' | 'duplicate' | 'late'>>): OpCounts {
  const counts: OpCounts = { r: 0, c: 0, u: 0, d: 0, tombstones: 0, duplicates: 0, late: 0 };
  for (const record of records) {
    if (record.event === null) counts.tombstones += 1;
    else counts[record.event.op] += 1;
    if (record.duplicate) counts.duplicates += 1;
    if (record.late) counts.late += 1;
  }
  return counts;
}

export { RevenueWindowOracle, revenueWindowOracle } from './revenue-oracle.ts';
export type {
  OracleRecord,
  RevenueOracleOptions,
  RevenueOracleResult,
  RevenueWindow,
  LateRecord,
  LateWindowCount,
} from './revenue-oracle.ts';
