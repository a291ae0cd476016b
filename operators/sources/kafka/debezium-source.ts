/**
 * `debeziumSource<Row>({ topics, groupId })`: reads Debezium change topics and emits
 * `ChangeEvent<Row>` with event time = the source commit time (`source.ts_ms`).
 *
 * Fetching, decoding and processing are decoupled by a bounded buffer; a full buffer holds the
 * fetch loop back (backpressure) instead of dropping anything. Positions advance only when a
 * batch is handed to the job, so a checkpoint records exactly what was processed before it.
 * Tombstones, heartbeats and transaction markers advance positions but emit nothing (markers are
 * counted; `debeziumTransactionSource` emits them instead); undecodable messages go to the
 * dead-letter topic *before* their batch is handed out, so none is lost across a crash.
 */
import type { ChangeEvent } from '../../change-event.ts';
import type { DebeziumDecimalOptions } from './debezium-decimals.ts';
import { validateDecimalOptions } from './debezium-decimals.ts';
import type { OperatorMetrics, StreamRecord } from '../../operator.ts';
import {
  SourceOpenInterruptedError,
  type CarriedWatermark,
  type PollResult,
  type SourceContext,
  type SourceDefinition,
  type SourceReader,
  type SourceSnapshot,
} from '../source.ts';
import { rememberDeadLetter } from '../../recent-dead-letters.ts';
import { DECODE_DEAD_LETTER_KINDS, DECODE_STAGE, deadLetter, type DeadLetter } from './dead-letter.ts';
import { deadLetterWriter, type DeadLetterWriter } from './dead-letter-writer.ts';
import {
  checkRawMessage,
  resolveRecordChecks,
  validateChangeEvent,
  type RecordChecks,
  type ResolvedRecordChecks,
} from './event-validation.ts';
import { FetchBuffer } from './fetch-buffer.ts';
import { parseSplit, splitOf, type FetchedBatch, type Fetcher } from './fetcher.ts';
import { KafkajsFetcher } from './kafkajs-fetcher.ts';
import { resolveKafkaConnection, type KafkaSsl, type KafkaSaslConfig } from '../../kafka-connection.ts';
import { createDecoder, type DecoderChoice, type MessageDecoder } from './message-decoder.ts';
import type { Decoded, JsonRow, RawMessage } from './raw-message.ts';
import { ownsPartition } from './subtask-assignment.ts';
import type { PartitionTaskRef } from './partition-task-assignment.ts';
import {
  checkPosition,
  describeLoss,
  resolveLoss,
  type OffsetLoss,
  type OffsetOutOfRangePolicy,
} from './offset-range.ts';
import type { TransactionMarker } from './transaction-marker.ts';
import { PartitionSignals } from './partition-signals.ts';
import { exchangeHeadersOf } from './exchange-headers.ts';

export interface DebeziumSourceOptions {
  readonly topics: readonly string[];
  readonly groupId: string;
  /** @default process.env.KAFKA_BROKERS ?? '127.0.0.1:19092' */
  readonly brokers?: readonly string[];
  /** TLS to the brokers (consumer, admin and dead-letter producer alike). @default KAFKA_SSL* (operators/kafka-connection.ts) */
  readonly ssl?: KafkaSsl;
  /** SASL (plain, scram-sha-256/512). @default KAFKA_SASL_* (operators/kafka-connection.ts) */
  readonly sasl?: KafkaSaslConfig;
  /** @default { format: 'json' } */
  readonly format?: DecoderChoice;
  /** Where undecodable messages go. @default `${topics[0]}.dlq` */
  readonly deadLetterTopic?: string;
  /** Bound of the fetch buffer in bytes. @default 32 MiB */
  readonly maxBufferedBytes?: number;
  /**
   * Bound of the fetch buffer in time: it holds at most what processing takes in about this long
   * (the measured take rate × this, within 1 MiB … `maxBufferedBytes`), so a job that falls behind
   * keeps its backlog in Kafka, not in memory (Flink's buffer debloating target, 1 s there too).
   * `Infinity` bounds by bytes only. @default 1000
   */
  readonly maxBufferedMs?: number;
  /** Most bytes one fetch returns per partition (the client's `maxBytesPerPartition`). @default 1 MiB */
  readonly fetchMaxBytesPerPartition?: number;
  /**
   * Stop at the end offsets found when the job starts ('latest'), as for a backfill or a demo;
   * the job then takes a final checkpoint and finishes. @default unbounded
   */
  readonly bounded?: 'latest';
  /**
   * Consumer-group session timeout. After a crash the restarted job cannot join the group before
   * the dead instance's session expires, so this bounds how long a restart waits for its
   * partitions. The broker's `group.min.session.timeout.ms` (6 s by default) is the floor.
   * @default 30000
   */
  readonly sessionTimeoutMs?: number;
  /**
   * How often the consumer refreshes topic metadata, which is when partitions added to a topic are
   * found: the group rebalances and the new partition goes to its subtask (p % N), which becomes
   * active if it owned none before. Flink's `partition.discovery.interval.ms`. @default 300000
   */
  readonly metadataMaxAgeMs?: number;
  /**
   * NUMERIC/DECIMAL columns → exact decimal text. With the JSON converter's `schemas.enable=true`
   * (or Avro) nothing is needed: the schema gives each column's encoding and scale. With schemas
   * disabled, give the connector's `decimal.handling.mode` and each decimal column's scale:
   * `{ handling: 'precise', columns: { 'public.orders.amount': 2 } }`. A value that cannot be
   * decoded with certainty is dead-lettered (`undecodable-value`), never passed on.
   * See debezium-decimals.ts. @default schema-described columns only
   */
  readonly decimals?: DebeziumDecimalOptions;
  /** Worker threads decoding JSON values; 0 decodes on the job's thread (see message-decoder.ts). @default 0 */
  readonly decodeWorkers?: number;
  /**
   * A checkpointed, committed or reached offset that the broker no longer has (retention deleted
   * it while the job lagged, or the topic was deleted and recreated): 'fail' stops the job with
   * an error naming topic, partition, offset and the earliest offset available; 'earliest' and
   * 'latest' resume there, count the skipped records in `cdcflow_source_offsets_skipped_total`
   * and log a line. @default 'fail'
   */
  readonly offsetOutOfRange?: OffsetOutOfRangePolicy;
  /** Where the source's warnings go (accepted offset losses). @default console.warn */
  readonly log?: (line: string) => void;
  /** Replace the Kafka client (tests, other clients). @default kafkajs */
  readonly fetcher?: Fetcher;
  readonly deadLetters?: DeadLetterWriter;
  /**
   * Limits and invariants checked on every record before it is handed to the job (record size,
   * nesting depth, key, position, event-time skew; see event-validation.ts). A record that fails
   * is dead-lettered with the reason.
   */
  readonly checks?: RecordChecks;
  /** This machine's clock, for the event-time skew check. @default Date.now */
  readonly now?: () => number;
  /** How often end offsets are fetched for `cdcflow_source_lag_records` (partition-signals.ts). @default 5000 */
  readonly lagRefreshMs?: number;
  /**
   * Group mode (runtime/group/): read only this partition of the single topic, as the partition
   * task of that claim. Set from the `PartitionTask` the group runner hands the job's builder.
   */
  readonly partitionTask?: PartitionTaskRef;
}

interface DecodedBatch<T> {
  readonly split: string;
  readonly records: StreamRecord<T>[];
  /** The Kafka offset of each record, in order. */
  readonly offsets: string[];
  readonly firstOffset: bigint;
  readonly nextOffset: string;
  readonly bytes: number;
  readonly restartsPosition: boolean;
  /** Upstream watermarks the batch carried (an exchange topic, exchange-headers.ts). */
  readonly carried: readonly CarriedWatermark[];
}

export function debeziumSource<Row = JsonRow>(options: DebeziumSourceOptions): SourceDefinition<ChangeEvent<Row>> {
  if (options.topics.length === 0) throw new Error('debeziumSource needs at least one topic');
  if (options.decimals !== undefined) validateDecimalOptions(options.decimals);
  if (options.partitionTask !== undefined && options.topics.length !== 1)
    throw new Error('debeziumSource: a partition task reads one topic (partitionTask with several topics)');
  return {
    name: `debezium:${options.topics.join(',')}`,
    createReader: (context) => new DebeziumReader<Row, ChangeEvent<Row>>(options, context, selectChange),
    splitOwner: (split, parallelism) => parseSplit(split).partition % parallelism,
  };
}

/**
 * Reads Debezium's transaction-metadata topic (`provide.transaction.metadata=true` →
 * `<topic.prefix>.transaction`) as a stream of BEGIN/END markers, event time = the marker's
 * `ts_ms`. The same topic read by {@link debeziumSource} is not an error either: the markers are
 * counted (`cdcflow_source_transaction_markers_total{topic,status}`) and skipped.
 */
export function debeziumTransactionSource(options: DebeziumSourceOptions): SourceDefinition<TransactionMarker> {
  if (options.topics.length === 0) throw new Error('debeziumTransactionSource needs at least one topic');
  return {
    name: `debezium-transactions:${options.topics.join(',')}`,
    createReader: (context) => new DebeziumReader<JsonRow, TransactionMarker>(options, context, selectMarker),
    splitOwner: (split, parallelism) => parseSplit(split).partition % parallelism,
  };
}

/** Which decoded messages a reader emits, and at which event time. */
type Select<Row, T> = (decoded: Decoded<Row>, fetchedAtMs: number) => StreamRecord<T> | undefined;

function selectChange<Row>(d: Decoded<Row>): StreamRecord<ChangeEvent<Row>> | undefined {
  return d.kind === 'change' ? { value: d.event, timestamp: d.event.source.tsMs } : undefined;
}

function selectMarker(d: Decoded<JsonRow>, fetchedAtMs: number): StreamRecord<TransactionMarker> | undefined {
  return d.kind === 'transaction' ? { value: d.marker, timestamp: d.marker.tsMs ?? fetchedAtMs } : undefined;
}

/** A fetched batch in the buffer: decoded already, or raw until taken (`decodesWhenTaken`). */
type Buffered<T> = { readonly decoded: DecodedBatch<T> } | { readonly raw: FetchedBatch };

class DebeziumReader<Row, T> implements SourceReader<T> {
  private readonly buffer: FetchBuffer<Buffered<T>>;
  private readonly positions = new Map<string, string>();
  private readonly checkpointPositions = new Map<number, Map<string, string>>();
  private readonly fetcher: Fetcher;
  private readonly openAbort = new AbortController();
  private readonly decoder: MessageDecoder<Row>;
  private readonly deadLetters: DeadLetterWriter;
  private readonly metrics: OperatorMetrics;
  private readonly checks: ResolvedRecordChecks;
  private readonly json: boolean;
  private readonly subtask: { readonly index: number; readonly parallelism: number };

  /** Whether this reader reads `partition` (of one of its topics): its subtask's share, or its partition task's one partition. */
  private owns(partition: number): boolean {
    const task = this.options.partitionTask;
    return task === undefined
      ? ownsPartition(partition, this.subtask.index, this.subtask.parallelism)
      : partition === task.partition;
  }
  private fetchError: unknown;
  private endOffsets: ReadonlyMap<string, { readonly high: string; readonly low: string }> | undefined;
  private readonly signals: PartitionSignals;
  /** Where each split starts (checkpoint, committed offset): the lag's position before its first batch. */
  private startPositions: ReadonlyMap<string, string> = new Map();

  constructor(
    private readonly options: DebeziumSourceOptions,
    context: SourceContext,
    private readonly select: Select<Row, T>,
  ) {
    // One connection (brokers, TLS, SASL) for every client this source builds.
    const connection = resolveKafkaConnection({
      ...(options.brokers === undefined ? {} : { brokers: options.brokers }),
      ...(options.ssl === undefined ? {} : { ssl: options.ssl }),
      ...(options.sasl === undefined ? {} : { sasl: options.sasl }),
    });
    const brokers = connection.brokers;
    // The gauge follows every change, so it shows the peaks a full buffer holds while it waits.
    this.buffer = new FetchBuffer(
      options.maxBufferedBytes ?? 32 * 1024 * 1024,
      (bytes) => context.metrics.gauge('cdcflow_source_buffered_bytes', bytes),
      options.maxBufferedMs ?? 1000,
    );
    const session = {
      ...(options.sessionTimeoutMs === undefined ? {} : { sessionTimeoutMs: options.sessionTimeoutMs }),
      ...(options.metadataMaxAgeMs === undefined ? {} : { metadataMaxAgeMs: options.metadataMaxAgeMs }),
    };
    const subtask = { subtaskIndex: context.subtaskIndex, parallelism: context.parallelism };
    const task = options.partitionTask === undefined ? {} : { partitionTask: options.partitionTask };
    this.fetcher =
      options.fetcher ??
      new KafkajsFetcher({
        brokers,
        connection,
        topics: options.topics,
        groupId: options.groupId,
        clientId: `${context.jobName}-${context.uid}`,
        ...(options.fetchMaxBytesPerPartition === undefined
          ? {}
          : { maxBytesPerPartition: options.fetchMaxBytesPerPartition }),
        ...session,
        ...subtask,
        ...task,
      });
    this.decoder = createDecoder<Row>(options.format ?? { format: 'json' }, {
      workers: options.decodeWorkers,
      decimals: options.decimals,
    });
    this.deadLetters =
      options.deadLetters ??
      deadLetterWriter({
        brokers,
        connection,
        topic: options.deadLetterTopic ?? `${options.topics[0] as string}.dlq`,
        clientId: `${context.jobName}-dlq`,
        sourceTopics: options.topics,
      });
    this.metrics = context.metrics;
    this.checks = resolveRecordChecks(options.checks);
    this.json = (options.format ?? { format: 'json' }).format === 'json';
    // Every reason's series exists from the start, at zero, so an alert on its rate works before the first letter.
    for (const reason of DECODE_DEAD_LETTER_KINDS)
      this.metrics.count('cdcflow_dead_letters_total', { stage: DECODE_STAGE, reason }, 0);
    this.subtask = { index: context.subtaskIndex, parallelism: context.parallelism };
    this.signals = new PartitionSignals(
      (split) => this.positions.get(split) ?? this.startPositions.get(split),
      (split) => {
        const { topic, partition } = parseSplit(split);
        return options.topics.includes(topic) && this.owns(partition);
      },
      (options.now ?? Date.now)(),
    );
    this.signals.register(this.metrics);
  }

  async open(restored: SourceSnapshot | undefined): Promise<void> {
    for (const p of restored?.positions ?? []) this.positions.set(p.split, p.position);
    await this.deadLetters.open();
    // Needed for bounded reads and restores; otherwise only to check committed offsets, which a
    // topic that does not exist yet (the job waits for it) cannot have.
    const needed = this.options.bounded === 'latest' || restored !== undefined;
    // An unbounded fresh read waits for its topics here, where a stop can end the wait at once.
    if (!needed && (await this.fetcher.waitForTopics?.(this.openAbort.signal)) === true)
      throw new SourceOpenInterruptedError(`waiting for topic(s) ${this.options.topics.join(', ')}`);
    const offsets = needed ? await this.fetcher.endOffsets() : await this.fetcher.endOffsets().catch(() => undefined);
    if (this.options.bounded === 'latest') this.endOffsets = offsets;
    if (offsets !== undefined) this.signals.endOffsetsFetched(offsets);
    this.signals.start(() => this.fetcher.endOffsets(), this.options.lagRefreshMs ?? 5000);
    // A checkpoint names every split read before it, so a split it does not name starts at its
    // earliest offset — never at the group's committed offset, which a later checkpoint than the
    // restored one may have moved past records this state has not seen.
    const startAt = new Map(this.positions);
    if (restored !== undefined)
      for (const [split, { low }] of offsets ?? []) if (!startAt.has(split)) startAt.set(split, low);
    if (offsets !== undefined) this.checkStartPositions(startAt, offsets, 'checkpoint');
    // A partition task without a checkpoint in its lineage starts at the earliest offset: its
    // group's committed offsets may come from an older owner's checkpoint that the new owner's
    // claim superseded (runtime/group/partition-claims.ts).
    if (restored === undefined && this.options.partitionTask !== undefined)
      for (const [split, { low }] of offsets ?? []) if (!startAt.has(split)) startAt.set(split, low);
    if (
      restored === undefined &&
      offsets !== undefined &&
      this.fetcher.committedOffsets !== undefined &&
      this.options.partitionTask === undefined
    ) {
      // Without a checkpoint the client starts at the group's committed offsets and would reset
      // one out of range to the earliest offset silently: check them too, and pin where to start.
      const committed = new Map(await this.fetcher.committedOffsets());
      this.checkStartPositions(committed, offsets, 'committed offset');
      for (const [split, offset] of committed) if (!startAt.has(split)) startAt.set(split, offset);
    }
    this.startPositions = startAt;
    await this.fetcher.start(
      (batch) => this.onFetched(batch),
      startAt,
      (error) => (this.fetchError ??= error),
      (loss) => this.onOffsetLoss(loss),
    );
  }

  /** Out-of-range start positions fail the job, or (per policy) move in `positions` and are counted. */
  private checkStartPositions(
    positions: Map<string, string>,
    offsets: ReadonlyMap<string, { readonly high: string; readonly low: string }>,
    origin: OffsetLoss['origin'],
  ): void {
    for (const [split, offset] of [...positions]) {
      const parsed = parseSplit(split);
      // Only splits this subtask reads (the watermarks cover only those): another's is not "missing".
      if (!this.options.topics.includes(parsed.topic) || !this.owns(parsed.partition)) continue;
      const loss = checkPosition(parsed, offset, offsets.get(split), origin);
      if (loss === undefined) continue;
      const resumeAt = this.acceptLoss(loss);
      if (resumeAt === undefined) {
        positions.delete(split);
        this.positions.delete(split);
      } else {
        positions.set(split, resumeAt);
        if (this.positions.has(split)) this.positions.set(split, resumeAt);
      }
    }
  }

  /** While running: 'fail' stops the split (the next poll throws), else resume where the policy says. */
  private onOffsetLoss(loss: OffsetLoss): string | undefined {
    try {
      return this.acceptLoss(loss);
    } catch (error) {
      this.fetchError ??= error;
      return undefined;
    }
  }

  /** Throws `SourceOffsetOutOfRangeError` under 'fail'; else counts and logs the skip. */
  private acceptLoss(loss: OffsetLoss): string | undefined {
    const policy = this.options.offsetOutOfRange ?? 'fail';
    const { resumeAt, skipped } = resolveLoss(loss, policy);
    this.metrics.count(
      'cdcflow_source_offsets_skipped_total',
      { topic: loss.topic, partition: String(loss.partition), cause: loss.cause },
      Number(skipped),
    );
    const log = this.options.log ?? ((line: string) => console.warn(line));
    log(
      `${describeLoss(loss)}; offsetOutOfRange is '${policy}': resuming at ${resumeAt ?? 'nothing (partition gone)'}, ${skipped} records skipped`,
    );
    return resumeAt;
  }

  async poll(maxWaitMs: number): Promise<PollResult<T>> {
    if (this.fetchError !== undefined) throw this.fetchError;
    if (this.reachedEnd()) return 'end';
    const taken = await this.buffer.take(maxWaitMs);
    if (taken === undefined) return 'idle';
    // Dead letters of a raw batch are written here, still before any of its records is handed out.
    const batch = 'raw' in taken ? await this.decode(taken.raw) : taken.decoded;
    // After an accepted offset loss the position restarts with this batch, even backwards.
    const expected = batch.restartsPosition ? undefined : this.positions.get(batch.split);
    // A batch fetched before a seek can repeat what was already handed out: skip that part.
    const records =
      expected !== undefined && batch.firstOffset < BigInt(expected)
        ? batch.records.filter((_, i) => BigInt(batch.offsets[i] as string) >= BigInt(expected))
        : batch.records;
    if (expected === undefined || BigInt(batch.nextOffset) > BigInt(expected))
      this.positions.set(batch.split, batch.nextOffset);
    this.signals.delivered(batch.split, records[records.length - 1]?.timestamp);
    return {
      records,
      split: batch.split,
      bytes: batch.bytes,
      ...(batch.carried.length === 0 ? {} : { carried: batch.carried }),
    };
  }

  snapshot(checkpointId: number): SourceSnapshot {
    const positions = new Map(this.positions);
    this.checkpointPositions.set(checkpointId, positions);
    return { positions: [...positions].map(([split, position]) => ({ split, position })) };
  }

  async notifyCheckpointComplete(checkpointId: number): Promise<void> {
    const positions = this.checkpointPositions.get(checkpointId);
    for (const id of this.checkpointPositions.keys()) if (id <= checkpointId) this.checkpointPositions.delete(id);
    // Lag monitoring only: a failed commit is retried by the next checkpoint.
    if (positions !== undefined) await this.fetcher.commit(positions).catch(() => undefined);
  }

  private reachedEnd(): boolean {
    if (this.endOffsets === undefined || this.buffer.size > 0) return false;
    for (const [split, { high, low }] of this.endOffsets) {
      if (high === low) continue;
      const position = this.positions.get(split);
      if (position === undefined || BigInt(position) < BigInt(high)) return false;
    }
    return true;
  }

  /** The group's assignment, known from the join, before the first fetch of any partition; undefined before the join. */
  assignedSplits(): readonly string[] | undefined {
    return this.fetcher.assignment();
  }

  interruptOpen(): void {
    this.openAbort.abort();
  }

  async close(): Promise<void> {
    this.signals.stop();
    this.buffer.clear();
    await this.fetcher.stop();
    await this.decoder.close();
    await this.deadLetters.close();
  }

  private async onFetched(fetched: FetchedBatch): Promise<void> {
    if (fetched.messages.length > 0) this.signals.fetched(splitOf(fetched.topic, fetched.partition), Date.now());
    try {
      const item: Buffered<T> =
        this.decoder.decodesWhenTaken === true ? { raw: fetched } : { decoded: await this.decode(fetched) };
      await this.buffer.put(item, fetched.bytes);
    } catch (error) {
      // Surfaces in the task loop on the next poll; the restart strategy takes it from there.
      this.fetchError = error;
      throw error;
    }
  }

  private async decode(fetched: FetchedBatch): Promise<DecodedBatch<T>> {
    const letters: DeadLetter[] = [];
    // Size and depth are checked on the bytes, so an oversized or too deep record is never parsed.
    const accepted: RawMessage[] = [];
    const carried: CarriedWatermark[] = [];
    for (const message of fetched.messages) {
      // An exchange's watermark: a control record ends here (its offset advances with the batch).
      const exchange = exchangeHeadersOf(message);
      if (exchange?.carried !== undefined) carried.push(exchange.carried);
      if (exchange?.control === true) continue;
      const problem = checkRawMessage(message, this.checks, this.json);
      if (problem === undefined) accepted.push(message);
      else letters.push(deadLetter(message, problem.kind, problem.reason));
    }
    const decoded = await this.decoder.decodeBatch(accepted);
    const records: StreamRecord<T>[] = [];
    const offsets: string[] = [];
    let tombstones = 0;
    let begins = 0;
    let ends = 0;
    const now = (this.options.now ?? Date.now)();
    for (let i = 0; i < decoded.length; i++) {
      const d = decoded[i] as Decoded<Row>;
      const message = accepted[i] as RawMessage;
      if (d.kind === 'change') {
        const problem = validateChangeEvent(d.event as ChangeEvent<unknown>, this.checks, now, this.json);
        if (problem !== undefined) {
          letters.push(deadLetter(message, problem.kind, problem.reason));
          continue;
        }
      }
      const record = this.select(d, now);
      if (record !== undefined) {
        records.push(record);
        offsets.push(message.offset);
      }
      if (d.kind === 'tombstone') tombstones += 1;
      else if (d.kind === 'dead-letter') letters.push(d.letter);
      else if (d.kind === 'transaction') {
        if (d.marker.status === 'BEGIN') begins += 1;
        else ends += 1;
      }
    }
    if (begins > 0)
      this.metrics.count('cdcflow_source_transaction_markers_total', { topic: fetched.topic, status: 'BEGIN' }, begins);
    if (ends > 0)
      this.metrics.count('cdcflow_source_transaction_markers_total', { topic: fetched.topic, status: 'END' }, ends);
    if (letters.length > 0) {
      await this.deadLetters.write(letters);
      for (const letter of letters) {
        this.metrics.count('cdcflow_dead_letters_total', { stage: DECODE_STAGE, reason: letter.errorKind });
        rememberDeadLetter(letter);
      }
    }
    if (tombstones > 0) this.metrics.count('cdcflow_source_tombstones_total', { topic: fetched.topic }, tombstones);
    const first = fetched.messages[0];
    return {
      split: splitOf(fetched.topic, fetched.partition),
      records,
      offsets,
      firstOffset: first === undefined ? 0n : BigInt(first.offset),
      nextOffset: fetched.nextOffset,
      bytes: fetched.bytes,
      restartsPosition: fetched.restartsPosition === true,
      carried,
    };
  }
}
