import type { SinkTransactionEvent } from '../two-phase-commit.ts';
import {
  resolveKafkaConnection,
  type KafkaConnection,
  type KafkaSsl,
  type KafkaSaslConfig,
} from '../../kafka-connection.ts';
import { KafkaSinkError } from './kafka-sink-error.ts';

/** One record as the sink writes it. A `null` value is a tombstone (deletes the key in a compacted topic). */
export interface KafkaSinkMessage {
  readonly key: Buffer | string | null;
  readonly value: Buffer | string | null;
  /** Overrides the sink's `topic` for this record. */
  readonly topic?: string;
  readonly partition?: number;
  readonly headers?: Readonly<Record<string, string>>;
  /** Source commit time (epoch ms) of the change, for `cdcflow_sink_change_visibility_seconds`; not written. */
  readonly sourceTsMs?: number;
}

export interface KafkaSinkOptions<T> {
  readonly brokers: readonly string[];
  /** TLS to the brokers. @default KAFKA_SSL* (operators/kafka-connection.ts) */
  readonly ssl?: KafkaSsl;
  /** SASL (plain, scram-sha-256/512). @default KAFKA_SASL_* (operators/kafka-connection.ts) */
  readonly sasl?: KafkaSaslConfig;
  /** Topic for records whose message names none. */
  readonly topic: string;
  readonly serialize: (value: T) => KafkaSinkMessage;
  /** Sink name in the job graph. @default 'kafka-sink' */
  readonly name?: string;
  /**
   * Replaces the job name in transactional ids `<prefix>-<sinkUid>-<subtask>-<slot>`. Two jobs
   * writing to one cluster must not share it, or they fence each other. @default the job name
   */
  readonly transactionalIdPrefix?: string;
  /**
   * How long the broker keeps a transaction open before aborting it. A job that is down longer
   * than this after a pre-commit loses that checkpoint's records (as with Flink); it may not exceed
   * the broker's `transaction.max.timeout.ms`. @default 900000 (15 min, the broker's default max)
   */
  readonly transactionTimeoutMs?: number;
  /**
   * Transactional ids per subtask. Two alternate in steady state; each checkpoint that fails to
   * complete keeps one more prepared. Recovery fences all of them. @default 8
   */
  readonly maxTransactionSlots?: number;
  /** Unacknowledged batches before `write` waits for the broker. @default 4 */
  readonly maxQueuedBatches?: number;
  /** Called after a non-empty transaction is pre-committed (`prepared`) and committed (`committed`). */
  readonly onTransaction?: (event: SinkTransactionEvent) => void;
  /** Restore events (recorded transactions committed or found superseded, ids fenced). @default ignore */
  readonly log?: (line: string) => void;
  /**
   * A record the broker would refuse whatever the retry (`serialize` threw or returned something
   * the producer cannot encode, or it is over its topic's `max.message.bytes`): send it to the
   * job's dead-letter topic (stage = this sink's uid), `fail` the job naming it, or `skip` it
   * (counted). The rest of the transaction is written either way. @default 'dead-letter'
   */
  readonly onRefused?: 'dead-letter' | 'fail' | 'skip';
}

export type ResolvedKafkaSinkOptions<T> = Required<
  Omit<KafkaSinkOptions<T>, 'transactionalIdPrefix' | 'onTransaction' | 'log' | 'ssl' | 'sasl' | 'onRefused'>
> & {
  readonly onRefused: 'dead-letter' | 'fail' | 'skip';
  /** `brokers` with TLS and SASL, from the options or the environment. */
  readonly connection: KafkaConnection;
  readonly transactionalIdPrefix: string | undefined;
  readonly onTransaction: ((event: SinkTransactionEvent) => void) | undefined;
  readonly log: (line: string) => void;
};

export function resolveKafkaSinkOptions<T>(options: KafkaSinkOptions<T>): ResolvedKafkaSinkOptions<T> {
  const resolved = {
    name: options.name ?? 'kafka-sink',
    brokers: options.brokers,
    connection: resolveKafkaConnection({
      brokers: options.brokers,
      ...(options.ssl === undefined ? {} : { ssl: options.ssl }),
      ...(options.sasl === undefined ? {} : { sasl: options.sasl }),
    }),
    topic: options.topic,
    serialize: options.serialize,
    transactionalIdPrefix: options.transactionalIdPrefix,
    transactionTimeoutMs: options.transactionTimeoutMs ?? 900_000,
    maxTransactionSlots: options.maxTransactionSlots ?? 8,
    maxQueuedBatches: options.maxQueuedBatches ?? 4,
    onTransaction: options.onTransaction,
    log: options.log ?? (() => undefined),
    onRefused: options.onRefused ?? 'dead-letter',
  };
  if (resolved.brokers.length === 0)
    throw new KafkaSinkError('kafkaSink needs at least one broker', { domain: 'user' });
  if (resolved.topic === '') throw new KafkaSinkError('kafkaSink needs a topic', { domain: 'user' });
  if (!Number.isInteger(resolved.maxTransactionSlots) || resolved.maxTransactionSlots < 2) {
    throw new KafkaSinkError(
      'kafkaSink maxTransactionSlots must be an integer ≥ 2: one prepared transaction, one open',
      { domain: 'user' },
    );
  }
  if (!(resolved.maxQueuedBatches >= 1))
    throw new KafkaSinkError('kafkaSink maxQueuedBatches must be ≥ 1', { domain: 'user' });
  return resolved;
}
