/**
 * Changelog → table. Keeps the current row per primary key in keyed state (RocksDB by default),
 * applies each change only if its LSN is newer than the stored one, and emits the resulting table
 * change. Replayed events (a restarted connector, a job restored from an older checkpoint, a
 * duplicated message) are dropped and counted, so downstream never sees a row go backwards.
 */
import { UnstorableValueError, UpsertTable } from '../../state/index.ts';
import type { ChangeEvent } from '../change-event.ts';
import type { Operator, OperatorContext, OperatorMetrics } from '../operator.ts';
import type { RecordDeadLetters } from '../record-dead-letters.ts';
import type { TableChange } from '../table-change.ts';
import { prefetchBatch, requireKeyedState } from './keyed-batch.ts';

export interface UpsertOptions {
  /** How long a delete's tombstone guards against a replayed older insert. @default 86400000 (24 h) */
  readonly tombstoneTtlMs?: number;
}

export function upsertOperator<K, Row>(options: UpsertOptions = {}): Operator<ChangeEvent<Row>, TableChange<K, Row>> {
  let table: UpsertTable<Row> | undefined;
  let metrics: OperatorMetrics | undefined;
  let state: OperatorContext['keyedState'];
  let deadLetters: RecordDeadLetters | undefined;
  return {
    open(context) {
      state = requireKeyedState(context, 'upsert');
      deadLetters = context.deadLetters;
      metrics = context.metrics;
      table = new UpsertTable<Row>(state, options.tombstoneTtlMs === undefined ? {} : { tombstoneTtlMs: options.tombstoneTtlMs });
    },
    async processBatch(batch, out) {
      const keyed = state as NonNullable<typeof state>;
      const upserts = table as UpsertTable<Row>;
      await prefetchBatch(keyed, batch);
      let duplicates = 0;
      let ignored = 0;
      for (const { value: event, key, timestamp } of batch) {
        if (event.op === 't') {
          ignored += 1;
          continue;
        }
        const row = event.op === 'd' ? null : event.after;
        let result: ReturnType<UpsertTable<Row>['apply']>;
        try {
          result = upserts.apply(key, { op: event.op, lsn: event.source.lsn, row });
        } catch (error) {
          // State refused this row (nested too deep, not serialisable): the same row fails on every retry.
          if (!(error instanceof UnstorableValueError) || deadLetters === undefined) throw error;
          deadLetters.reject({ kind: 'unstorable', reason: error.message, error, value: event, key, ...(timestamp === undefined ? {} : { timestampMs: timestamp }) });
          continue;
        }
        if (result.kind === 'duplicate') {
          duplicates += 1;
          continue;
        }
        out.emit(tableChange<K, Row>(key as K, row, result, event), timestamp);
      }
      await keyed.flush();
      if (duplicates > 0) metrics?.count('cdcflow_upsert_duplicates_total', {}, duplicates);
      if (ignored > 0) metrics?.count('cdcflow_upsert_truncates_ignored_total', {}, ignored);
    },
  };
}

/**
 * The emitted change. `previous` is a getter so the stored row is decoded only if a sink reads
 * it (an own enumerable property, so spreading and JSON still see it).
 */
function tableChange<K, Row>(key: K, row: Row | null, result: { readonly previous: Row | null }, event: ChangeEvent<Row>): TableChange<K, Row> {
  const lsn = event.source.lsn;
  const sourceTsMs = event.source.tsMs;
  const origin = event.origin;
  if (row === null) return { kind: 'delete', key, get previous() { return result.previous; }, lsn, sourceTsMs, origin };
  return { kind: 'upsert', row, key, get previous() { return result.previous; }, lsn, sourceTsMs, origin };
}
