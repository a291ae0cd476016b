/**
 * `postgresSink({ table, primaryKey })`: a table changelog (or any records, through `toChange`)
 * into a Postgres table, exactly once. See README.md beside this file for the commit protocol,
 * the idempotent mode and what happens after a crash.
 *
 * ```ts
 * env.fromSource(debeziumSource<Order>({ topics: ['cdc.ecommerce.orders'], groupId: 'orders-pg' }))
 *   .keyBy((e) => e.key?.['id'] as number)
 *   .upsert()
 *   .sinkTo(postgresSink({ table: 'orders_projection', primaryKey: ['id'] }));
 * ```
 */
import type { TableChange } from '../../table-change.ts';
import type { SinkDefinition } from '../sink.ts';
import { twoPhaseCommitSink } from '../two-phase-commit.ts';
import { PostgresCommitter, type PostgresTxn } from './postgres-committer.ts';
import { resolvePostgresSinkOptions, type PostgresChange, type PostgresSinkOptions } from './postgres-options.ts';

/** Any records, each mapped to an upsert or delete by `toChange`. */
export function postgresSink<T>(
  options: PostgresSinkOptions<T> & { readonly toChange: (value: T) => PostgresChange },
): SinkDefinition<T>;
/** Table changes (from `upsert()`), keyed by `primaryKey`: upserts and deletes by key. */
export function postgresSink<K, Row extends object>(
  options: PostgresSinkOptions<TableChange<K, Row>>,
): SinkDefinition<TableChange<K, Row>>;
export function postgresSink<T>(options: PostgresSinkOptions<T>): SinkDefinition<T> {
  const resolved = resolvePostgresSinkOptions(options);
  const sink = twoPhaseCommitSink<T, PostgresTxn>(
    resolved.name,
    (identity, context) => new PostgresCommitter<T>(resolved, identity, context),
    resolved.retry,
  );
  return { ...sink, kind: 'postgres', replaySafety: resolved.mode === 'idempotent' ? 'idempotent' : 'exactly-once' };
}
