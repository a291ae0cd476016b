/**
 * cdcflow — typed stream processing for database change streams.
 *
 * ```ts
 * import { StreamEnvironment, debeziumSource, printSink } from 'cdcflow';
 *
 * interface Order { id: number; status: string; amount: string }
 *
 * const env = StreamEnvironment.create({ jobName: 'orders-projection', checkpoints: { intervalMs: 1000 } });
 * env.fromSource(debeziumSource<Order>({ topics: ['cdc.ecommerce.orders'], groupId: 'orders-projection' }))
 *   .keyBy((e) => e.key)
 *   .upsert()                 // changelog → current row per key, in commit order, in RocksDB
 *   .sinkTo(printSink());
 * await env.execute();
 * ```
 */
export { StreamEnvironment, type JobResult, type SourceOptions } from './environment.ts';
export type { EnvironmentOptions } from './job-options.ts';
export {
  loadJobConfig,
  environmentOptions,
  ConfigError,
  defaultCheckpointRoot,
  type JobConfig,
  type LoadJobConfigOptions,
} from './config/index.ts';
export type { JobEvent, JobException, JobSnapshot, JobState, StopOptions, StopResult } from './lifecycle/job-status.ts';
export { JobNotRunningError, StopDeadlineExceededError } from './lifecycle/job-status.ts';
export { JobLease, JobLeaseHeldError, LEASE_FILE, readLease, type LeaseInfo } from './lifecycle/job-lease.ts';
export { FreshStartRefusedError, type SinkLeftover } from '../operators/sinks/two-phase-commit.ts';
export { rootLogger, setRootLogger, loggerFor, kafkajsLogCreator, type Logger } from '../operators/logger.ts';
export { DataStream, KeyedStream } from './data-stream.ts';
export { WatermarkStrategy } from './watermark-strategy.ts';
export { JobMetrics } from './metrics.ts';

export type { ChangeEvent, ChangeOp, ChangePosition, SourceInfo } from '../operators/change-event.ts';
export type { TableChange } from '../operators/table-change.ts';
export {
  OutputTag,
  type Operator,
  type Output,
  type OperatorContext,
  type StreamRecord,
} from '../operators/operator.ts';
export {
  valueState,
  mapState,
  listState,
  type KeyedProcessFunction,
  type KeyedProcessContext,
} from '../operators/transform/process.ts';
export { UNRESOLVED_CHANGES, type UpsertOptions, type UnresolvedChange } from '../operators/transform/upsert.ts';
export type { SourceDefinition, SourceReader } from '../operators/sources/source.ts';
export type { SinkDefinition } from '../operators/sinks/sink.ts';
export { fromCollection } from '../operators/sources/collection-source.ts';
export {
  debeziumSource,
  debeziumTransactionSource,
  type DebeziumSourceOptions,
} from '../operators/sources/kafka/debezium-source.ts';
export {
  SourceOffsetOutOfRangeError,
  type OffsetOutOfRangePolicy,
  type OffsetLoss,
} from '../operators/sources/kafka/offset-range.ts';
export type { DebeziumDecimalOptions, DecimalHandling } from '../operators/sources/kafka/debezium-decimals.ts';
export type { TransactionMarker } from '../operators/sources/kafka/transaction-marker.ts';
export {
  transactionConsistent,
  type TransactionConsistentOptions,
  type TransactionInput,
} from '../operators/transform/transaction-consistent.ts';
export { printSink } from '../operators/sinks/print-sink.ts';
export { collectSink } from '../operators/sinks/collect-sink.ts';
export { CdcflowError } from '../state/errors.ts';
export { WindowedStream } from './windowed-stream.ts';
export {
  TumblingEventTimeWindows,
  SlidingEventTimeWindows,
  EventTimeSessionWindows,
  type WindowAssigner,
} from '../operators/window/assigners.ts';
export type { TimeWindow } from '../operators/window/time-window.ts';
export type {
  AggregateFunction,
  ReduceFunction,
  ProcessWindowFunction,
  WindowResult,
  WindowFiring,
  Firing,
} from '../operators/window/window-functions.ts';
export { decimalSum, type DecimalSum } from '../operators/window/decimal-sum.ts';
export type { TimerContext, OnTimerContext } from '../operators/transform/process.ts';
export type { TimeDomain } from '../operators/transform/keyed-timers.ts';
export { kafkaSink, tableChangeMessage } from '../operators/sinks/kafka/kafka-sink.ts';
export type { KafkaSinkOptions, KafkaSinkMessage } from '../operators/sinks/kafka/kafka-sink-options.ts';
export type { KafkaTransactionHandle } from '../operators/sinks/kafka/transaction-control.ts';
export {
  elasticsearchSink,
  type ElasticsearchSinkOptions,
} from '../operators/sinks/elasticsearch/elasticsearch-sink.ts';
export { tableChangeAction, type DocumentAction } from '../operators/sinks/elasticsearch/document-action.ts';
export {
  kafkaDocumentDeadLetters,
  DOCUMENT_DLQ_HEADERS,
  type DocumentDeadLetterWriter,
  type RejectedDocument,
} from '../operators/sinks/elasticsearch/document-dead-letters.ts';
export type { BulkClient } from '../operators/sinks/elasticsearch/bulk-client.ts';
export { postgresSink } from '../operators/sinks/postgres/postgres-sink.ts';
export type { PostgresSinkOptions, PostgresChange } from '../operators/sinks/postgres/postgres-options.ts';
export { redisSink, tableChangeWrite } from '../operators/sinks/redis/redis-sink.ts';
export type { RedisSinkOptions, RedisWrite } from '../operators/sinks/redis/redis-options.ts';
export type { SinkTransactionEvent } from '../operators/sinks/two-phase-commit.ts';
export { lateCountsPerWindow, type WindowLateCount } from './late-counts.ts';
export type { LateRecord } from '../operators/window/window-operator.ts';

// Types the public signatures above use (options, contexts, results): named here so users can write them too.
export type { TransactionInfo } from '../operators/change-event.ts';
export type { ChangeOrigin } from '../operators/table-change.ts';
export type { RecordChecks } from '../operators/sources/kafka/event-validation.ts';
export type { DeadLetterWriter } from '../operators/sources/kafka/dead-letter-writer.ts';
export type { DeadLetter } from '../operators/sources/kafka/dead-letter.ts';
export type { Fetcher } from '../operators/sources/kafka/fetcher.ts';
export type { DecoderChoice } from '../operators/sources/kafka/message-decoder.ts';
export type { OffsetLossCause } from '../operators/sources/kafka/offset-range.ts';
export type { KafkaConnection, KafkaSaslConfig, KafkaSsl } from '../operators/kafka-connection.ts';
export type { RestoreSource } from '../checkpoints/coordinator.ts';
export type { SloOptions, SloReport } from './signals/slo.ts';
export type { HealthReport } from './job-health.ts';
export type {
  StateHandles,
  StateSpec,
  StateSpecs,
  ValueStateSpec,
  MapStateSpec,
  ListStateSpec,
} from '../operators/transform/process.ts';
export type { ReplaySafety } from '../operators/sinks/sink.ts';
export type { TruncateHandling } from '../operators/transform/upsert-truncate.ts';
export type { DecimalAccumulator } from '../operators/window/decimal-sum.ts';
export type { PgConnect } from '../operators/sinks/postgres/pg-session.ts';
export type { RedisConnect } from '../operators/sinks/redis/redis-session.ts';
export type { TwoPhaseCommitOptions } from '../operators/sinks/two-phase-commit.ts';
export type { CollectionSourceOptions } from '../operators/sources/collection-source.ts';
export type { PrintSinkOptions } from '../operators/sinks/print-sink.ts';
export type { RocksDbMemoryOptions } from '../state/rocksdb-store.ts';
export type { SourceContext, PollResult, SourceSnapshot } from '../operators/sources/source.ts';
export type { OperatorInfo, OperatorMetrics, RescaledSnapshot } from '../operators/operator.ts';
export type { ErrorDomain, ErrorLocation, CdcflowErrorOptions } from '../state/errors.ts';
export type { BulkResult } from '../operators/sinks/elasticsearch/bulk-client.ts';
export {
  GroupJob,
  runGroupJob,
  type GroupJobOptions,
  type GroupJobResult,
  type PartitionTask,
} from './group/group-job.ts';
export {
  runGroupStages,
  type GroupStage,
  type GroupStagesOptions,
  type GroupStagesResult,
} from './group/group-stages.ts';
export {
  RepartitionTopic,
  RepartitionTopicError,
  repartitionTopicName,
  type RepartitionSinkOptions,
  type RepartitionTopicOptions,
} from './group/repartition-topic.ts';
export { OwnershipLostError, type OwnerEpoch } from '../operators/sinks/owner-epoch.ts';
