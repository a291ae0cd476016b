/**
 * `createSubtaskLoop`: builds the `SubtaskLoop` of one subtask with what it runs on: keyed state over the subtask's key-group range (restored
 * from every handle of the operator, which keeps only its own groups), acknowledgements as
 * TaskSnapshots, and the operator metrics. Used by the single-thread attempt (subtask 0 of 1)
 * and by every worker of a parallel job.
 */
import { S3CheckpointStorage } from '../checkpoints/index.ts';
import type { FreshStart } from '../operators/operator.ts';
import { QueuedRecordDeadLetters } from '../operators/record-dead-letters.ts';
import { resolveKafkaConnection, type KafkaConnection } from '../operators/kafka-connection.ts';
import { deadLetterWriter } from '../operators/sources/kafka/dead-letter-writer.ts';
import { DefaultStateBackendFactory, keyGroupRangeFor, newBytesOf, type KeyedStateHandle } from '../state/index.ts';
import type { TaskSnapshot } from '../checkpoints/index.ts';
import { SubtaskLoop, type KeyedBackend } from './execution/subtask-loop.ts';
import type { RestoredTask } from './execution/restore-assignment.ts';
import type { GraphNode, JobGraph } from './graph.ts';
import type { ResolvedOptions } from './job-options.ts';
import type { JobMetrics } from './metrics.ts';
import type { KeyedExchange } from './parallel/keyed-exchange.ts';
import { checkpointSnapshotStorage } from './state-storage.ts';
import { SinkSignals, sinksOf } from './signals/sink-signals.ts';

export interface SubtaskLoopSpec {
  readonly graph: JobGraph;
  readonly uids: Map<GraphNode, string>;
  readonly options: ResolvedOptions;
  readonly metrics: JobMetrics;
  /** The job's checkpoint folder (`<checkpoints.dir>/<jobName>`). */
  readonly jobRoot: string;
  readonly restored: ReadonlyMap<string, RestoredTask>;
  readonly subtaskIndex: number;
  readonly parallelism: number;
  /** The highest parallelism this job ever started at, this attempt included. @default parallelism */
  readonly highestParallelism?: number;
  readonly exchange?: KeyedExchange;
  readonly freshStart?: FreshStart;
  acknowledge(checkpointId: number, snapshot: TaskSnapshot): void;
  /** The task's snapshot for `checkpointId` failed: the coordinator must abort that checkpoint. */
  decline(uid: string, checkpointId: number, reason: string): void;
}

export function createSubtaskLoop(spec: SubtaskLoopSpec): SubtaskLoop {
  const { options, metrics, subtaskIndex, parallelism } = spec;
  const stateFactory = new DefaultStateBackendFactory();
  // Checkpoints in an object store: restore downloads only the files this subtask reads.
  const remote =
    options.checkpointUrl === undefined
      ? undefined
      : new S3CheckpointStorage({
          url: options.checkpointUrl,
          jobName: options.jobName,
          stagingDirectory: options.checkpointDir,
        });
  const snapshotStorage = checkpointSnapshotStorage(
    spec.jobRoot,
    spec.jobRoot,
    remote === undefined ? undefined : (relative, path) => remote.downloadStateFile(relative, path),
  );
  // One producer per subtask for every operator's letters; it connects on the first letter only.
  const letters =
    options.deadLetterWriter ??
    deadLetterWriter({
      ...deadLetterConnection(options.deadLetterBrokers),
      topic: options.deadLetterTopic,
      clientId: `${options.jobName}-dlq-${subtaskIndex}`,
    });
  return new SubtaskLoop({
    jobName: options.jobName,
    graph: spec.graph,
    uids: spec.uids,
    restored: spec.restored,
    subtaskIndex,
    parallelism,
    ...(spec.highestParallelism === undefined ? {} : { highestParallelism: spec.highestParallelism }),
    ...(spec.exchange === undefined ? {} : { exchange: spec.exchange }),
    ...(spec.freshStart === undefined ? {} : { freshStart: spec.freshStart }),
    signals: new SinkSignals(metrics, sinksOf(spec.graph, spec.uids)),
    createKeyedBackend: async (uid, handles) => {
      const range = keyGroupRangeFor(subtaskIndex, parallelism);
      const backend = await stateFactory.createKeyedBackend({
        jobName: options.jobName,
        operatorUid: uid,
        subtaskIndex,
        keyGroupRange: range,
        backend: options.stateBackend,
        localDir: options.stateDir,
        rocksdb: options.stateRocksDb,
      });
      if (handles !== undefined && handles.length > 0)
        await backend.restore(handles as KeyedStateHandle[], range, snapshotStorage);
      const adapted: KeyedBackend = {
        state: backend,
        beginSnapshot: async (id) => {
          const { done } = await backend.beginSnapshot(id, snapshotStorage);
          return { done: done.then((written) => ({ handle: written, bytes: newBytesOf(written) })) };
        },
      };
      return adapted;
    },
    metricsFor: (uid) => metrics.forOperator(uid),
    deadLettersFor: (uid) => new QueuedRecordDeadLetters(uid, options.onRecordError, letters, metrics.forOperator(uid)),
    closeDeadLetters: () => letters.close(),
    acknowledge: (checkpointId, snapshot) => spec.acknowledge(checkpointId, snapshot),
    decline: (uid, checkpointId, reason) => spec.decline(uid, checkpointId, reason),
    hooks: {
      recordsIn: (uid, n) => metrics.forOperator(uid).count('cdcflow_records_in_total', {}, n),
      recordsOut: (uid, n) => metrics.forOperator(uid).count('cdcflow_records_out_total', {}, n),
      timeSpent: (uid, kind, ms) =>
        metrics
          .forOperator(uid)
          .count(
            kind === 'busy' ? 'cdcflow_operator_busy_seconds_total' : 'cdcflow_operator_backpressured_seconds_total',
            {},
            ms / 1000,
          ),
      watermarkAdvanced: (uid, wm) => {
        if (Number.isFinite(wm)) metrics.watermarkAdvanced(uid, wm);
      },
    },
  });
}

/** The job's dead-letter writer reaches Kafka like every other client: brokers, TLS and SASL (kafka-connection.ts). */
function deadLetterConnection(brokers: readonly string[] | undefined): {
  brokers: readonly string[];
  connection: KafkaConnection;
} {
  const connection = resolveKafkaConnection(brokers === undefined ? {} : { brokers });
  return { brokers: connection.brokers, connection };
}
