/**
 * Exactly-once Kafka sink: one Kafka transaction per checkpoint, committed when the checkpoint
 * completes, so read_committed consumers see a record iff a checkpoint containing it completed.
 * A transaction pre-committed before a crash is committed on restore from its stored producer id
 * and epoch (docs/kafka-sink-transactions.md). Plain (read_uncommitted) consumers see records as
 * they are written, including those of transactions later aborted.
 *
 * ```ts
 * changes.sinkTo(kafkaSink({ brokers, topic: 'orders-latest', serialize: tableChangeMessage() }));
 * ```
 */
import type { TableChange } from '../../table-change.ts';
import type { SinkDefinition } from '../sink.ts';
import { twoPhaseCommitSink, type TwoPhaseCommitOptions } from '../two-phase-commit.ts';
import { KafkaCommitter } from './kafka-committer.ts';
import { resolveKafkaSinkOptions, type KafkaSinkMessage, type KafkaSinkOptions } from './kafka-sink-options.ts';
import type { KafkaTransactionHandle } from './transaction-control.ts';

export function kafkaSink<T>(
  options: KafkaSinkOptions<T>,
  commitOptions: TwoPhaseCommitOptions = {},
): SinkDefinition<T> {
  const resolved = resolveKafkaSinkOptions(options);
  const sink = twoPhaseCommitSink<T, KafkaTransactionHandle>(
    resolved.name,
    (identity, context) => new KafkaCommitter<T>(identity, context, resolved),
    commitOptions,
  );
  return { ...sink, kind: 'kafka', replaySafety: 'exactly-once' };
}

/**
 * Table changes as a compacted topic expects them: key = the JSON primary key, value = the JSON
 * row, a delete = a tombstone; the commit-order position rides in the `cdcflow.position` header
 * (fixed-width text: compare as strings) so consumers can drop stale replays.
 */
export function tableChangeMessage<K, Row>(
  keyOf: (key: K) => unknown = (key) => key,
): (change: TableChange<K, Row>) => KafkaSinkMessage {
  return (change) => ({
    key: JSON.stringify(keyOf(change.key)),
    value: change.kind === 'delete' ? null : JSON.stringify(change.row),
    headers: { 'cdcflow.position': change.position, 'cdcflow.source-ts-ms': String(change.sourceTsMs) },
    sourceTsMs: change.sourceTsMs,
  });
}
