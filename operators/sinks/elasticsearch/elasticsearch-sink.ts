/**
 * Idempotent Elasticsearch sink — not transactional. Every write carries an external version
 * (the source LSN), so Elasticsearch keeps the newest version of each document whatever order or
 * how many times writes arrive: a replay after restore ends in the same index. Documents are
 * written when the buffer fills and at the latest at each checkpoint's pre-commit, so they may be
 * visible before their checkpoint completes (and stay visible if it never does — the replay then
 * writes the same versions again). See docs/kafka-sink-transactions.md for the contrast with Kafka.
 * In group mode each bulk request first checks the task's owner epoch (epoch-fence.ts).
 *
 * ```ts
 * table.sinkTo(elasticsearchSink({ node, toAction: tableChangeAction('orders'), deadLetters: { brokers, topic: 'orders-es-dlq' } }));
 * ```
 */
import type { Operator } from '../../operator.ts';
import type { KafkaSsl, KafkaSaslConfig } from '../../kafka-connection.ts';
import type { SinkDefinition } from '../sink.ts';
import { SinkMetrics } from '../sink-metrics.ts';
import { elasticsearchBulkClient, type BulkClient } from './bulk-client.ts';
import { BulkWriter } from './bulk-writer.ts';
import type { DocumentAction } from './document-action.ts';
import { kafkaDocumentDeadLetters, type DocumentDeadLetterWriter } from './document-dead-letters.ts';
import { ElasticsearchSinkError } from './elasticsearch-sink-error.ts';
import { checkEsFence, claimEsFence, elasticsearchFenceStore, type EpochFenceStore } from './epoch-fence.ts';
import { ownerEpochOf, type OwnerEpoch } from '../owner-epoch.ts';
import { sinkInstanceName } from '../two-phase-commit.ts';

export interface ElasticsearchSinkOptions<T> {
  /** e.g. `http://127.0.0.1:19200`; ignored when `client` is given. */
  readonly node: string;
  readonly toAction: (value: T) => DocumentAction;
  /** Where refused documents go. Without it, a refused document fails the job. */
  /** A topic (brokers, and TLS/SASL as in operators/kafka-connection.ts, else from the KAFKA_SSL and KAFKA_SASL variables), or a writer of yours. */
  readonly deadLetters?:
    | {
        readonly brokers: readonly string[];
        readonly topic: string;
        readonly ssl?: KafkaSsl;
        readonly sasl?: KafkaSaslConfig;
      }
    | DocumentDeadLetterWriter;
  /** @default 'elasticsearch-sink' */
  readonly name?: string;
  /** Buffered actions (after keeping only the newest per document) that trigger a flush. @default 1000 */
  readonly maxBufferedActions?: number;
  /** Attempts per flush for items the cluster throttles or fails (429, 5xx). @default 10 */
  readonly maxAttempts?: number;
  /** @default 100 */
  readonly initialBackoffMs?: number;
  /** @default 10000 */
  readonly maxBackoffMs?: number;
  /** Refresh the touched shards after each bulk request (tests; slow in production). @default false */
  readonly refresh?: boolean;
  /** Another client behind our interface (OpenSearch, a fake). @default @elastic/elasticsearch 7.17 */
  readonly client?: BulkClient;
  /** Called after the flush at each barrier: `documents` written since the previous barrier (progress lines, tests). */
  readonly onFlush?: (event: { readonly checkpointId: number; readonly documents: number }) => void;
  /** Group mode: where the owner-epoch fence lives (tests, other clients). @default documents in `cdcflow-sink-fences` at `node` */
  readonly fenceStore?: EpochFenceStore;
}

export function elasticsearchSink<T>(options: ElasticsearchSinkOptions<T>): SinkDefinition<T> {
  const maxBuffered = options.maxBufferedActions ?? 1000;
  if (!(maxBuffered >= 1))
    throw new ElasticsearchSinkError('elasticsearchSink maxBufferedActions must be ≥ 1', { domain: 'user' });
  return {
    name: options.name ?? 'elasticsearch-sink',
    createOperator: () => elasticsearchOperator(options, maxBuffered),
    kind: 'elasticsearch',
    replaySafety: 'idempotent',
  };
}

function elasticsearchOperator<T>(options: ElasticsearchSinkOptions<T>, maxBuffered: number): Operator<T, never> {
  // Newest action per document: older ones would only bounce off the external version.
  const buffer = new Map<string, DocumentAction>();
  let client: BulkClient | undefined;
  let deadLetters: DocumentDeadLetterWriter | undefined;
  let writer: BulkWriter | undefined;
  let sinceBarrier = 0;
  let now: () => number = Date.now;
  let commitMetrics: SinkMetrics | undefined;
  /** Group mode: our owner epoch, the instance and its fence (epoch-fence.ts). */
  let fence: { store: EpochFenceStore; instance: string; owner: OwnerEpoch; own: boolean } | undefined;
  /** Writes the buffer; false if there was nothing to write. */
  const flush = async (): Promise<boolean> => {
    if (buffer.size === 0 || writer === undefined) return false;
    // Before the buffer is taken: a fenced owner writes and dead-letters nothing.
    if (fence !== undefined) await checkEsFence(fence.store, fence.instance, fence.owner);
    const actions = [...buffer.values()];
    buffer.clear();
    await writer.write(actions);
    sinceBarrier += actions.length;
    return true;
  };
  return {
    async open(context) {
      now = () => context.now();
      const owner = ownerEpochOf(context.jobName);
      if (owner !== undefined) {
        const instance = sinkInstanceName({
          jobName: context.jobName,
          sinkUid: context.uid,
          subtaskIndex: context.subtaskIndex,
        });
        fence = {
          store: options.fenceStore ?? elasticsearchFenceStore(options.node),
          instance,
          owner,
          own: options.fenceStore === undefined,
        };
        await claimEsFence(fence.store, instance, owner);
      }
      commitMetrics = new SinkMetrics(context.metrics, 'elasticsearch');
      client = options.client ?? elasticsearchBulkClient({ node: options.node });
      const dlq = options.deadLetters;
      deadLetters =
        dlq === undefined || 'write' in dlq
          ? dlq
          : kafkaDocumentDeadLetters({
              ...dlq,
              clientId: `cdcflow-${context.jobName}-${context.uid}-dlq`,
              stage: context.uid,
            });
      writer = new BulkWriter(
        client,
        deadLetters,
        context.metrics,
        {
          maxActionsPerRequest: maxBuffered,
          maxAttempts: options.maxAttempts ?? 10,
          initialBackoffMs: options.initialBackoffMs ?? 100,
          maxBackoffMs: options.maxBackoffMs ?? 10_000,
          refresh: options.refresh ?? false,
        },
        now,
        context.uid,
      );
    },
    async processBatch(batch) {
      for (const { value } of batch) {
        const action = options.toAction(value);
        const key = `${action.index}\u0000${action.id}`;
        const held = buffer.get(key);
        if (held === undefined || held.version <= action.version) buffer.set(key, action);
      }
      if (buffer.size >= maxBuffered) await flush();
    },
    async snapshotState(checkpointId) {
      // Pre-commit: everything before the barrier is in the index (or dead-lettered) before the ack.
      const preCommitAt = now();
      if (await flush()) commitMetrics?.committed(preCommitAt, now());
      if (sinceBarrier > 0) options.onFlush?.({ checkpointId, documents: sinceBarrier });
      sinceBarrier = 0;
      return undefined;
    },
    async close() {
      try {
        await flush();
      } finally {
        await client?.close();
        await deadLetters?.close();
        if (fence?.own === true) await fence.store.close();
      }
    },
  };
}
