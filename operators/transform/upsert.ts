/**
 * Changelog → table. Keeps the current row per primary key in keyed state (RocksDB by default),
 * applies each change only if its LSN is newer than the stored one, and emits the resulting table
 * change. Replayed events (a restarted connector, a job restored from an older checkpoint, a
 * duplicated message) are dropped and counted, so downstream never sees a row go backwards.
 */
import { CdcflowError, UnstorableValueError, UpsertTable } from '../../state/index.ts';
import type { ChangeEvent } from '../change-event.ts';
import type { Operator, OperatorContext, OperatorMetrics, Output, StreamRecord } from '../operator.ts';
import type { RecordDeadLetters } from '../record-dead-letters.ts';
import type { TableChange } from '../table-change.ts';
import { requireKeyedState } from './keyed-batch.ts';
import { TruncateRefusedError, guardKeyOf, isGuardKey, type TruncateHandling } from './upsert-truncate.ts';

export interface UpsertOptions {
  /** How long a delete's tombstone guards against a replayed older insert. @default 86400000 (24 h) */
  readonly tombstoneTtlMs?: number;
  /**
   * What a TRUNCATE (`op: t`) does (see upsert-truncate.ts):
   * - `'fail'` (default): the job stops with a non-retriable error saying what to choose. A
   *   truncate empties a table; doing that to the target, or silently not doing it, must be chosen.
   * - `'propagate'`: every key stored before the truncate becomes a delete (emitted downstream, so
   *   each sink applies it exactly as any delete, in order); older changes processed later are
   *   dropped. Costs one delete per stored key. Needs parallelism 1 (the truncate event arrives on
   *   one partition only), and one table per upsert operator.
   * @default 'fail'
   */
  readonly truncate?: TruncateHandling;
}

export function upsertOperator<K, Row>(options: UpsertOptions = {}): Operator<ChangeEvent<Row>, TableChange<K, Row>> {
  const truncate = options.truncate ?? 'fail';
  if (truncate !== 'fail' && truncate !== 'propagate') throw new CdcflowError(`upsert truncate must be 'fail' or 'propagate', got ${JSON.stringify(truncate)}`, { domain: 'user' });
  const guarded = truncate === 'propagate';
  let table: UpsertTable<Row> | undefined;
  let metrics: OperatorMetrics | undefined;
  let state: OperatorContext['keyedState'];
  let deadLetters: RecordDeadLetters | undefined;
  let counts = { duplicates: 0, truncated: 0 };

  /** Applies a run of non-truncate changes (one prefetch for the run). */
  async function applyChanges(run: readonly StreamRecord<ChangeEvent<Row>>[], out: Output<TableChange<K, Row>>): Promise<void> {
    const keyed = state as NonNullable<typeof state>;
    const upserts = table as UpsertTable<Row>;
    const keys = new Set<unknown>();
    for (const record of run) keys.add(record.key);
    if (guarded) for (const record of run) keys.add(guardKeyOf(record.value.source));
    await keyed.prefetch(keys);
    for (const { value: event, key, timestamp } of run) {
      // The commit position of the change. commit-order replaces this with source.sequence order.
      const position = event.source.lsn;
      if (guarded) {
        const truncatedAt = upserts.entry(guardKeyOf(event.source))?.lsn;
        if (truncatedAt !== undefined && position <= truncatedAt) {
          counts.truncated += 1;
          continue;
        }
      }
      const row = event.op === 'd' ? null : event.after;
      let result: ReturnType<UpsertTable<Row>['apply']>;
      try {
        result = upserts.apply(key, { op: event.op as 'c' | 'u' | 'd' | 'r', lsn: position, row });
      } catch (error) {
        // State refused this row (nested too deep, not serialisable): the same row fails on every retry.
        if (!(error instanceof UnstorableValueError) || deadLetters === undefined) throw error;
        deadLetters.reject({ kind: 'unstorable', reason: error.message, error, value: event, key, ...(timestamp === undefined ? {} : { timestampMs: timestamp }) });
        continue;
      }
      if (result.kind === 'duplicate') {
        counts.duplicates += 1;
        continue;
      }
      out.emit(tableChange<K, Row>(key as K, row, result, event), timestamp);
    }
  }

  /** TRUNCATE with `propagate`: a tombstone at its position for every older key, emitted as deletes. */
  async function applyTruncate({ value: event, timestamp }: StreamRecord<ChangeEvent<Row>>, out: Output<TableChange<K, Row>>): Promise<void> {
    const keyed = state as NonNullable<typeof state>;
    const upserts = table as UpsertTable<Row>;
    const position = event.source.lsn;
    const guardKey = guardKeyOf(event.source);
    await keyed.flush();
    const deleteChunk = async (chunk: unknown[]): Promise<void> => {
      await keyed.prefetch(chunk);
      for (const key of chunk) {
        const result = upserts.apply(key, { op: 'd', lsn: position, row: null });
        if (result.kind === 'applied' && result.previous !== null) {
          const previous = result.previous;
          out.emit({ kind: 'delete', key: key as K, previous, lsn: position, sourceTsMs: event.source.tsMs }, timestamp);
        }
      }
      await keyed.flush();
    };
    let chunk: unknown[] = [];
    let cleared = 0;
    // keys() flushes first and tolerates writes while iterating.
    for await (const key of keyed.keys(UPSERT_STATE)) {
      if (isGuardKey(key)) continue;
      chunk.push(key);
      cleared += 1;
      if (chunk.length >= 1_000) {
        await deleteChunk(chunk);
        chunk = [];
      }
    }
    await deleteChunk(chunk);
    await keyed.prefetch([guardKey]);
    upserts.apply(guardKey, { op: 'd', lsn: position, row: null });
    await keyed.flush();
    metrics?.count('cdcflow_upsert_truncates_total', { table: `${event.source.schema}.${event.source.table}` });
    metrics?.count('cdcflow_upsert_truncate_deletes_total', {}, cleared);
  }

  return {
    open(context) {
      state = requireKeyedState(context, 'upsert');
      deadLetters = context.deadLetters;
      metrics = context.metrics;
      if (guarded && context.parallelism > 1) {
        throw new CdcflowError(`upsert({ truncate: 'propagate' }) needs parallelism 1: a TRUNCATE arrives on one partition, so other subtasks would keep their rows. Run the job at parallelism 1, or use truncate: 'fail'`, { domain: 'user' });
      }
      table = new UpsertTable<Row>(state, options.tombstoneTtlMs === undefined ? {} : { tombstoneTtlMs: options.tombstoneTtlMs });
    },
    async processBatch(batch, out) {
      counts = { duplicates: 0, truncated: 0 };
      let from = 0;
      for (let i = 0; i <= batch.length; i++) {
        const record = batch[i];
        if (record !== undefined && record.value.op !== 't') continue;
        if (i > from) await applyChanges(batch.slice(from, i), out);
        from = i + 1;
        if (record === undefined) break;
        if (!guarded) throw new TruncateRefusedError(record.value);
        await applyTruncate(record, out);
      }
      await (state as NonNullable<typeof state>).flush();
      if (counts.duplicates > 0) metrics?.count('cdcflow_upsert_duplicates_total', {}, counts.duplicates);
      if (counts.truncated > 0) metrics?.count('cdcflow_upsert_dropped_truncated_total', {}, counts.truncated);
    },
  };
}

/** UpsertTable's default state name: the truncate walks its keys. */
const UPSERT_STATE = 'upsert-table';

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
