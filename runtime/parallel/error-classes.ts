/**
 * The error classes a subtask worker's failure may be rebuilt as in the main thread
 * (state/error-wire.ts). A class missing here still arrives as a CdcflowError with its name,
 * domain, retriable, location and fields; listing it keeps `instanceof` working too.
 */
import {
  CheckpointAbortedError,
  CheckpointConfigError,
  CheckpointError,
  CheckpointFormatError,
  CheckpointNotFoundError,
  CheckpointStorageError,
  IllegalCheckpointTransitionError,
} from '../../checkpoints/errors.ts';
import { KafkaConfigError } from '../../operators/kafka-connection.ts';
import { RecordFailedError } from '../../operators/record-dead-letters.ts';
import { FreshStartRefusedError } from '../../operators/sinks/two-phase-commit.ts';
import { TruncateRefusedError } from '../../operators/transform/upsert-truncate.ts';
import { SourceOffsetOutOfRangeError } from '../../operators/sources/kafka/offset-range.ts';
import { DecimalConfigError } from '../../operators/sources/kafka/debezium-decimals.ts';
import { ElasticsearchSinkError } from '../../operators/sinks/elasticsearch/elasticsearch-sink-error.ts';
import { KafkaSinkError } from '../../operators/sinks/kafka/kafka-sink-error.ts';
import { PostgresSinkError } from '../../operators/sinks/postgres/pg-session.ts';
import { RedisSinkError } from '../../operators/sinks/redis/redis-session.ts';
import { SourceOpenInterruptedError } from '../../operators/sources/source.ts';
import { DecodePoolError } from '../../operators/sources/kafka/decode-pool.ts';
import {
  SchemaBodyError,
  SchemaNotFoundError,
  SchemaRegistryUnavailableError,
} from '../../operators/sources/kafka/schema-resolver.ts';
import {
  registerErrorClasses,
  SnapshotWriteError,
  StateError,
  UnclassifiedError,
  UnstorableValueError,
} from '../../state/index.ts';
import { ReentrantOperatorCallError } from '../execution/reentrant-call-error.ts';
import { SubtaskFailedError, UnsupportedParallelJobError } from './errors.ts';

registerErrorClasses(
  StateError,
  SnapshotWriteError,
  UnclassifiedError,
  UnstorableValueError,
  CheckpointError,
  CheckpointConfigError,
  CheckpointFormatError,
  CheckpointNotFoundError,
  CheckpointStorageError,
  IllegalCheckpointTransitionError,
  CheckpointAbortedError,
  PostgresSinkError,
  RedisSinkError,
  KafkaSinkError,
  ElasticsearchSinkError,
  SchemaNotFoundError,
  SchemaBodyError,
  SchemaRegistryUnavailableError,
  DecodePoolError,
  ReentrantOperatorCallError,
  SubtaskFailedError,
  UnsupportedParallelJobError,
  KafkaConfigError,
  RecordFailedError,
  FreshStartRefusedError,
  TruncateRefusedError,
  SourceOffsetOutOfRangeError,
  DecimalConfigError,
  SourceOpenInterruptedError,
);
