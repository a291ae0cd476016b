/**
 * Changelog → table. Keeps the current row per primary key in keyed state (RocksDB by default),
 * applies each change only if its commit-order position (`source.position`) is after the stored
 * one, and emits the resulting table change. Replayed events (a restarted connector, a job
 * restored from an older checkpoint, a duplicated message) are dropped and counted, so downstream
 * never sees a row go backwards.
 *
 * Unchanged TOASTed columns (Debezium's unavailable-value placeholder, see unavailable-values.ts)
 * take the stored row's value. When there is no stored row to take it from (the key was never
 * seen: a primary-key change, or a job started mid-stream without the snapshot), the change is
 * not applied: it goes to the `UNRESOLVED_CHANGES` side output with the reason, counts in
 * `cdcflow_upsert_unavailable_values_total{outcome="unresolved"}` and is logged. Writing it would
 * put the placeholder (or a made-up NULL) in the sink. `unavailableValues: 'fail'` stops the job instead.
 */
import { UpsertTable } from '../../state/index.ts';
import type { ChangeEvent } from '../change-event.ts';
import { OutputTag, type Operator, type OperatorContext, type OperatorMetrics } from '../operator.ts';
import type { TableChange } from '../table-change.ts';
import { prefetchBatch, requireKeyedState } from './keyed-batch.ts';
import { unavailableValueMatcher, type UnavailableValueMatcher } from './unavailable-values.ts';
import { UpsertError } from './upsert-error.ts';

export interface UpsertOptions {
  /** How long a delete's tombstone guards against a replayed older insert. @default 86400000 (24 h) */
  readonly tombstoneTtlMs?: number;
  /** The connector's `unavailable.value.placeholder`. @default '__debezium_unavailable_value' */
  readonly unavailableValuePlaceholder?: string;
  /**
   * A change with an unavailable (unchanged TOASTed) column and no stored row to fill it from:
   * `'side-output'` sends it to `UNRESOLVED_CHANGES` and goes on; `'fail'` stops the job.
   * @default 'side-output'
   */
  readonly unavailableValues?: 'side-output' | 'fail';
  /** Where the warnings go. @default console.warn */
  readonly log?: (line: string) => void;
}

/** A change the upsert could not apply, with why; route it to a dead-letter sink. */
export interface UnresolvedChange<Row> {
  readonly event: ChangeEvent<Row>;
  readonly reason: string;
  readonly columns: readonly string[];
}

export const UNRESOLVED_CHANGES = new OutputTag<UnresolvedChange<unknown>>('upsert-unresolved');

type RowObject = Readonly<Record<string, unknown>>;

export function upsertOperator<K, Row>(options: UpsertOptions = {}): Operator<ChangeEvent<Row>, TableChange<K, Row>> {
  let table: UpsertTable<Row> | undefined;
  let metrics: OperatorMetrics | undefined;
  let state: OperatorContext['keyedState'];
  const unavailable: UnavailableValueMatcher = unavailableValueMatcher(options.unavailableValuePlaceholder);
  const policy = options.unavailableValues ?? 'side-output';
  const log = options.log ?? ((line: string) => console.warn(line));
  return {
    open(context) {
      state = requireKeyedState(context, 'upsert');
      metrics = context.metrics;
      table = new UpsertTable<Row>(state, options.tombstoneTtlMs === undefined ? {} : { tombstoneTtlMs: options.tombstoneTtlMs });
    },
    async processBatch(batch, out) {
      const keyed = state as NonNullable<typeof state>;
      const upserts = table as UpsertTable<Row>;
      await prefetchBatch(keyed, batch);
      let duplicates = 0;
      let ignored = 0;
      let filled = 0;
      let unresolved = 0;
      for (const { value: event, key, timestamp } of batch) {
        if (event.op === 't') {
          ignored += 1;
          continue;
        }
        const position = event.source.position;
        let row = event.op === 'd' ? null : event.after;
        if (row !== null && event.op !== 'r') {
          const columns = unavailable.columnsIn(row as RowObject);
          if (columns.length > 0) {
            const stored = upserts.entry(key);
            if (stored !== undefined && position <= stored.position) {
              duplicates += 1;
              continue;
            }
            const previous = (stored?.row ?? null) as RowObject | null;
            if (previous === null || columns.some((c) => !(c in previous))) {
              const reason = `${event.op} at ${position} has unavailable (unchanged TOASTed) column(s) ${columns.join(', ')} and no stored row for key ${JSON.stringify(key)} to take them from`;
              if (policy === 'fail') {
                throw new UpsertError(`${reason}; set REPLICA IDENTITY FULL on ${event.source.schema}.${event.source.table}, or start from a snapshot`);
              }
              unresolved += 1;
              if (unresolved === 1) log(`upsert: ${reason}; sent to the upsert-unresolved side output (set REPLICA IDENTITY FULL on the source table to avoid this)`);
              out.emitSide(UNRESOLVED_CHANGES as OutputTag<UnresolvedChange<Row>>, { event, reason, columns }, timestamp);
              continue;
            }
            const merged: Record<string, unknown> = { ...(row as RowObject) };
            for (const c of columns) merged[c] = previous[c];
            row = merged as Row;
            filled += columns.length;
          }
        }
        const result = upserts.apply(key, { op: event.op, position, row });
        if (result.kind === 'duplicate') {
          duplicates += 1;
          continue;
        }
        out.emit(tableChange<K, Row>(key as K, row, result, event), timestamp);
      }
      await keyed.flush();
      if (duplicates > 0) metrics?.count('cdcflow_upsert_duplicates_total', {}, duplicates);
      if (ignored > 0) metrics?.count('cdcflow_upsert_truncates_ignored_total', {}, ignored);
      if (filled > 0) metrics?.count('cdcflow_upsert_unavailable_values_total', { outcome: 'filled' }, filled);
      if (unresolved > 0) {
        metrics?.count('cdcflow_upsert_unavailable_values_total', { outcome: 'unresolved' }, unresolved);
        if (unresolved > 1) log(`upsert: ${unresolved} changes in this batch had unavailable values and no stored row; sent to the upsert-unresolved side output`);
      }
    },
  };
}

/**
 * The emitted change. `previous` is a getter so the stored row is decoded only if a sink reads
 * it (an own enumerable property, so spreading and JSON still see it).
 */
function tableChange<K, Row>(key: K, row: Row | null, result: { readonly previous: Row | null }, event: ChangeEvent<Row>): TableChange<K, Row> {
  const position = event.source.position;
  const sourceTsMs = event.source.tsMs;
  if (row === null) return { kind: 'delete', key, get previous() { return result.previous; }, position, sourceTsMs };
  return { kind: 'upsert', row, key, get previous() { return result.previous; }, position, sourceTsMs };
}
