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
 *
 * TRUNCATE (`op: t`) follows `truncate` (see upsert-truncate.ts): fail (default) or propagate.
 */
import { CdcflowError, UnstorableValueError, UpsertTable, type ChangePosition } from '../../state/index.ts';
import type { ChangeEvent } from '../change-event.ts';
import {
  OutputTag,
  type Operator,
  type OperatorContext,
  type OperatorMetrics,
  type Output,
  type StreamRecord,
} from '../operator.ts';
import type { RecordDeadLetters } from '../record-dead-letters.ts';
import type { TableChange } from '../table-change.ts';
import { requireKeyedState } from './keyed-batch.ts';
import { unavailableValueMatcher, type UnavailableValueMatcher } from './unavailable-values.ts';
import { UpsertError } from './upsert-error.ts';
import { TruncateRefusedError, guardKeyOf, isGuardKey, type TruncateHandling } from './upsert-truncate.ts';

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
  const truncate = options.truncate ?? 'fail';
  if (truncate !== 'fail' && truncate !== 'propagate')
    throw new CdcflowError(`upsert truncate must be 'fail' or 'propagate', got ${JSON.stringify(truncate)}`, {
      domain: 'user',
    });
  const guarded = truncate === 'propagate';
  const unavailable: UnavailableValueMatcher = unavailableValueMatcher(options.unavailableValuePlaceholder);
  const policy = options.unavailableValues ?? 'side-output';
  const log = options.log ?? ((line: string) => console.warn(line));
  let table: UpsertTable<Row> | undefined;
  let metrics: OperatorMetrics | undefined;
  let state: OperatorContext['keyedState'];
  let deadLetters: RecordDeadLetters | undefined;
  let counts = { duplicates: 0, truncated: 0, filled: 0, unresolved: 0 };

  /**
   * Fills unchanged TOASTed columns from the stored row. Undefined: the change is not applied
   * (a replay, or no stored value to fill from: sent to the side output, or the job fails).
   */
  function resolveUnavailable(
    event: ChangeEvent<Row>,
    key: unknown,
    row: Row,
    timestamp: number | undefined,
    out: Output<TableChange<K, Row>>,
  ): Row | undefined {
    const columns = unavailable.columnsIn(row as RowObject);
    if (columns.length === 0) return row;
    const upserts = table as UpsertTable<Row>;
    const position = event.source.position;
    const stored = upserts.entry(key);
    if (stored !== undefined && position <= stored.position) {
      counts.duplicates += 1;
      return undefined;
    }
    const previous = (stored?.row ?? null) as RowObject | null;
    if (previous === null || columns.some((c) => !(c in previous))) {
      const reason = `${event.op} at ${position} has unavailable (unchanged TOASTed) column(s) ${columns.join(', ')} and no stored row for key ${JSON.stringify(key)} to take them from`;
      if (policy === 'fail')
        throw new UpsertError(
          `${reason}; set REPLICA IDENTITY FULL on ${event.source.schema}.${event.source.table}, or start from a snapshot`,
        );
      counts.unresolved += 1;
      if (counts.unresolved === 1)
        log(
          `upsert: ${reason}; sent to the upsert-unresolved side output (set REPLICA IDENTITY FULL on the source table to avoid this)`,
        );
      out.emitSide(UNRESOLVED_CHANGES as OutputTag<UnresolvedChange<Row>>, { event, reason, columns }, timestamp);
      return undefined;
    }
    const merged: Record<string, unknown> = { ...(row as RowObject) };
    for (const c of columns) merged[c] = previous[c];
    counts.filled += columns.length;
    return merged as Row;
  }

  /**
   * Applies a run of non-truncate changes. The runtime loaded the batch's keys; with truncate
   * guards the run also needs each table's guard key, and after a truncate (whose walk may have
   * unloaded them) its own keys again: both come in with one `withKeys` for the run.
   */
  async function applyGuardedChanges(
    run: readonly StreamRecord<ChangeEvent<Row>>[],
    out: Output<TableChange<K, Row>>,
  ): Promise<void> {
    const keyed = state as NonNullable<typeof state>;
    const keys = new Set<unknown>();
    for (const record of run) keys.add(record.key);
    for (const record of run) keys.add(guardKeyOf(record.value.source));
    await keyed.withKeys(keys, () => applyChanges(run, out));
  }

  /** Applies a run of non-truncate changes whose keys are loaded. */
  function applyChanges(run: readonly StreamRecord<ChangeEvent<Row>>[], out: Output<TableChange<K, Row>>): void {
    const upserts = table as UpsertTable<Row>;
    for (const { value: event, key, timestamp } of run) {
      const position = event.source.position;
      if (guarded) {
        const truncatedAt = upserts.entry(guardKeyOf(event.source))?.position;
        if (truncatedAt !== undefined && position <= truncatedAt) {
          counts.truncated += 1;
          continue;
        }
      }
      let row = event.op === 'd' ? null : event.after;
      if (row !== null && event.op !== 'r') {
        const resolved = resolveUnavailable(event, key, row, timestamp, out);
        if (resolved === undefined) continue;
        row = resolved;
      }
      let result: ReturnType<UpsertTable<Row>['apply']>;
      try {
        result = upserts.apply(key, { op: event.op as 'c' | 'u' | 'd' | 'r', position, row });
      } catch (error) {
        // State refused this row (nested too deep, not serialisable): the same row fails on every retry.
        if (!(error instanceof UnstorableValueError) || deadLetters === undefined) throw error;
        deadLetters.reject({
          kind: 'unstorable',
          reason: error.message,
          error,
          value: event,
          key,
          ...(timestamp === undefined ? {} : { timestampMs: timestamp }),
        });
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
  async function applyTruncate(
    { value: event, timestamp }: StreamRecord<ChangeEvent<Row>>,
    out: Output<TableChange<K, Row>>,
  ): Promise<void> {
    const keyed = state as NonNullable<typeof state>;
    const upserts = table as UpsertTable<Row>;
    const position: ChangePosition = event.source.position;
    const guardKey = guardKeyOf(event.source);
    const deleteChunk = (chunk: unknown[]): Promise<void> =>
      keyed.withKeys(chunk, () => {
        for (const key of chunk) {
          const result = upserts.apply(key, { op: 'd', position, row: null });
          if (result.kind === 'applied' && result.previous !== null) {
            const previous = result.previous;
            out.emit({ kind: 'delete', key: key as K, previous, position, sourceTsMs: event.source.tsMs }, timestamp);
          }
        }
      });
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
    await keyed.withKeys([guardKey], () => upserts.apply(guardKey, { op: 'd', position, row: null }));
    metrics?.count('cdcflow_upsert_truncates_total', { table: `${event.source.schema}.${event.source.table}` });
    metrics?.count('cdcflow_upsert_truncate_deletes_total', {}, cleared);
  }

  return {
    open(context) {
      state = requireKeyedState(context, 'upsert');
      deadLetters = context.deadLetters;
      metrics = context.metrics;
      if (guarded && context.parallelism > 1) {
        throw new CdcflowError(
          `upsert({ truncate: 'propagate' }) needs parallelism 1: a TRUNCATE arrives on one partition, so other subtasks would keep their rows. Run the job at parallelism 1, or use truncate: 'fail'`,
          { domain: 'user' },
        );
      }
      table = new UpsertTable<Row>(
        state,
        options.tombstoneTtlMs === undefined ? {} : { tombstoneTtlMs: options.tombstoneTtlMs },
      );
    },
    async processBatch(batch, out) {
      counts = { duplicates: 0, truncated: 0, filled: 0, unresolved: 0 };
      let from = 0;
      for (let i = 0; i <= batch.length; i++) {
        const record = batch[i];
        if (record !== undefined && record.value.op !== 't') continue;
        if (i > from) {
          if (guarded) await applyGuardedChanges(batch.slice(from, i), out);
          else applyChanges(batch.slice(from, i), out);
        }
        from = i + 1;
        if (record === undefined) break;
        if (!guarded) throw new TruncateRefusedError(record.value);
        await applyTruncate(record, out);
      }
      // The runtime writes the batch's changes back after this call.
      if (counts.duplicates > 0) metrics?.count('cdcflow_upsert_duplicates_total', {}, counts.duplicates);
      if (counts.truncated > 0) metrics?.count('cdcflow_upsert_dropped_truncated_total', {}, counts.truncated);
      if (counts.filled > 0)
        metrics?.count('cdcflow_upsert_unavailable_values_total', { outcome: 'filled' }, counts.filled);
      if (counts.unresolved > 0) {
        metrics?.count('cdcflow_upsert_unavailable_values_total', { outcome: 'unresolved' }, counts.unresolved);
        if (counts.unresolved > 1)
          log(
            `upsert: ${counts.unresolved} changes in this batch had unavailable values and no stored row; sent to the upsert-unresolved side output`,
          );
      }
    },
  };
}

/** UpsertTable's default state name: the truncate walks its keys. */
const UPSERT_STATE = 'upsert-table';

/**
 * The emitted change. `previous` is a getter so the stored row is decoded only if a sink reads
 * it (an own enumerable property, so spreading and JSON still see it).
 */
function tableChange<K, Row>(
  key: K,
  row: Row | null,
  result: { readonly previous: Row | null },
  event: ChangeEvent<Row>,
): TableChange<K, Row> {
  const position = event.source.position;
  const sourceTsMs = event.source.tsMs;
  const origin = event.origin;
  if (row === null)
    return {
      kind: 'delete',
      key,
      get previous() {
        return result.previous;
      },
      position,
      sourceTsMs,
      origin,
    };
  return {
    kind: 'upsert',
    row,
    key,
    get previous() {
      return result.previous;
    },
    position,
    sourceTsMs,
    origin,
  };
}
