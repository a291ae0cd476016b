/**
 * `redisSink({ prefix })`: each checkpoint's writes applied to Redis atomically, exactly once.
 *
 * At the barrier the checkpoint's batch (the last write per key) is staged in a Redis hash; when
 * the checkpoint completes one Lua script applies the whole batch and moves the sink's fence (the
 * last applied checkpoint id) in the same atomic step, so a checkpoint committed again after a
 * crash is skipped. See README.md beside this file.
 *
 * ```ts
 * env.fromSource(debeziumSource<Order>({ topics: ['cdc.ecommerce.orders'], groupId: 'orders-redis' }))
 *   .keyBy((e) => e.key?.['id'] as number)
 *   .upsert()
 *   .sinkTo(redisSink({ prefix: 'orders' }));   // SET orders:<id> <row JSON>, DEL on delete
 * ```
 */
import type { TableChange } from '../../table-change.ts';
import type { SinkDefinition } from '../sink.ts';
import { twoPhaseCommitSink } from '../two-phase-commit.ts';
import { RedisCommitter, type RedisTxn } from './redis-committer.ts';
import type { RedisSinkOptions, RedisWrite, ResolvedRedisSinkOptions } from './redis-options.ts';
import { ioredisConnect } from './redis-session.ts';

/** Table changes: `<prefix>:<key>` holds the JSON of the current row. */
export function redisSink<K, Row>(options: RedisSinkOptions<TableChange<K, Row>>): SinkDefinition<TableChange<K, Row>>;
/** Any records, each mapped to one write by `toWrite`. */
export function redisSink<T>(
  options: RedisSinkOptions<T> & { readonly toWrite: (value: T) => RedisWrite },
): SinkDefinition<T>;
export function redisSink<T>(options: RedisSinkOptions<T>): SinkDefinition<T> {
  if (options.prefix === '' || options.prefix.includes('__cdcflow'))
    throw new Error(`redisSink: prefix '${options.prefix}' must be non-empty and not contain '__cdcflow'`);
  const stageChunk = options.stageChunk ?? 1000;
  if (!Number.isInteger(stageChunk) || stageChunk <= 0)
    throw new Error(`redisSink: stageChunk must be a positive integer, not ${stageChunk}`);
  const resolved: ResolvedRedisSinkOptions<T> = {
    prefix: options.prefix,
    connect: options.connect ?? ioredisConnect(options.url),
    toWrite: options.toWrite ?? (tableChangeWrite as (value: T) => RedisWrite),
    stageChunk,
    log: options.log,
    onTransaction: options.onTransaction,
    maxValueBytes: options.maxValueBytes,
    onRefused: options.onRefused ?? 'dead-letter',
  };
  if (resolved.maxValueBytes !== undefined && !(resolved.maxValueBytes > 0))
    throw new Error(`redisSink: maxValueBytes must be > 0, not ${resolved.maxValueBytes}`);
  const sink = twoPhaseCommitSink<T, RedisTxn>(
    options.name ?? 'redis',
    (identity, context) => new RedisCommitter<T>(resolved, identity, context),
    options.retry ?? {},
  );
  return { ...sink, kind: 'redis', replaySafety: 'exactly-once' };
}

/** The default mapping: the key as text (a one-field object key by its value), the row as JSON. */
export function tableChangeWrite(change: TableChange<unknown, unknown>): RedisWrite {
  const value = change.kind === 'upsert' ? JSON.stringify(change.row) : null;
  return { key: keyText(change.key), value, sourceTsMs: change.sourceTsMs };
}

function keyText(key: unknown): string {
  if (typeof key === 'string') return key;
  if (typeof key === 'number' || typeof key === 'bigint') return String(key);
  if (key !== null && typeof key === 'object' && !Array.isArray(key)) {
    const values = Object.values(key);
    if (values.length === 1 && (typeof values[0] === 'string' || typeof values[0] === 'number'))
      return String(values[0]);
  }
  return JSON.stringify(key);
}
