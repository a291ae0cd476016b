/**
 * `debeziumSource<Row>({ topics, groupId })`: reads Debezium change topics and emits
 * `ChangeEvent<Row>` with event time = the source commit time (`source.ts_ms`).
 *
 * Fetching, decoding and processing are decoupled by a bounded buffer; a full buffer holds the
 * fetch loop back (backpressure) instead of dropping anything. Positions advance only when a
 * batch is handed to the job, so a checkpoint records exactly what was processed before it.
 * Tombstones and heartbeats advance positions but emit nothing; undecodable messages go to the
 * dead-letter topic *before* their batch is handed out, so none is lost across a crash.
 */
import type { ChangeEvent } from '../../change-event.ts';
import type { OperatorMetrics, StreamRecord } from '../../operator.ts';
import type { PollResult, SourceContext, SourceDefinition, SourceReader, SourceSnapshot } from '../source.ts';
import { deadLetterWriter, type DeadLetterWriter } from './dead-letter-writer.ts';
import { FetchBuffer } from './fetch-buffer.ts';
import { parseSplit, splitOf, type FetchedBatch, type Fetcher } from './fetcher.ts';
import { KafkajsFetcher } from './kafkajs-fetcher.ts';
import { createDecoder, type DecoderChoice, type MessageDecoder } from './message-decoder.ts';
import type { JsonRow } from './raw-message.ts';
import { ownsPartition } from './subtask-assignment.ts';
import { checkPosition, describeLoss, resolveLoss, type OffsetLoss, type OffsetOutOfRangePolicy } from './offset-range.ts';

export interface DebeziumSourceOptions {
  readonly topics: readonly string[];
  readonly groupId: string;
  /** @default process.env.KAFKA_BROKERS ?? '127.0.0.1:19092' */
  readonly brokers?: readonly string[];
  /** @default { format: 'json' } */
  readonly format?: DecoderChoice;
  /** Where undecodable messages go. @default `${topics[0]}.dlq` */
  readonly deadLetterTopic?: string;
  /** Bound of the fetch buffer. @default 32 MiB */
  readonly maxBufferedBytes?: number;
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
}

interface DecodedBatch<Row> {
  readonly split: string;
  readonly records: StreamRecord<ChangeEvent<Row>>[];
  readonly firstOffset: bigint;
  readonly nextOffset: string;
  readonly bytes: number;
  readonly restartsPosition: boolean;
}

export function debeziumSource<Row = JsonRow>(options: DebeziumSourceOptions): SourceDefinition<ChangeEvent<Row>> {
  if (options.topics.length === 0) throw new Error('debeziumSource needs at least one topic');
  return {
    name: `debezium:${options.topics.join(',')}`,
    createReader: (context) => new DebeziumReader<Row>(options, context),
    splitOwner: (split, parallelism) => parseSplit(split).partition % parallelism,
  };
}

/** A fetched batch in the buffer: decoded already, or raw until taken (`decodesWhenTaken`). */
type Buffered<Row> = { readonly decoded: DecodedBatch<Row> } | { readonly raw: FetchedBatch };

class DebeziumReader<Row> implements SourceReader<ChangeEvent<Row>> {
  private readonly buffer: FetchBuffer<Buffered<Row>>;
  private readonly positions = new Map<string, string>();
  private readonly checkpointPositions = new Map<number, Map<string, string>>();
  private readonly fetcher: Fetcher;
  private readonly decoder: MessageDecoder<Row>;
  private readonly deadLetters: DeadLetterWriter;
  private readonly metrics: OperatorMetrics;
  private readonly subtask: { readonly index: number; readonly parallelism: number };
  private fetchError: unknown;
  private endOffsets: ReadonlyMap<string, { readonly high: string; readonly low: string }> | undefined;

  constructor(
    private readonly options: DebeziumSourceOptions,
    context: SourceContext,
  ) {
    const brokers = options.brokers ?? (process.env['KAFKA_BROKERS'] ?? '127.0.0.1:19092').split(',');
    // The gauge follows every change, so it shows the peaks a full buffer holds while it waits.
    this.buffer = new FetchBuffer(options.maxBufferedBytes ?? 32 * 1024 * 1024, (bytes) => context.metrics.gauge('cdcflow_source_buffered_bytes', bytes));
    const session = {
      ...(options.sessionTimeoutMs === undefined ? {} : { sessionTimeoutMs: options.sessionTimeoutMs }),
      ...(options.metadataMaxAgeMs === undefined ? {} : { metadataMaxAgeMs: options.metadataMaxAgeMs }),
    };
    const subtask = { subtaskIndex: context.subtaskIndex, parallelism: context.parallelism };
    this.fetcher = options.fetcher ?? new KafkajsFetcher({ brokers, topics: options.topics, groupId: options.groupId, clientId: `${context.jobName}-${context.uid}`, ...session, ...subtask });
    this.decoder = createDecoder<Row>(options.format ?? { format: 'json' }, { workers: options.decodeWorkers });
    this.deadLetters = options.deadLetters ?? deadLetterWriter({ brokers, topic: options.deadLetterTopic ?? `${options.topics[0] as string}.dlq`, clientId: `${context.jobName}-dlq` });
    this.metrics = context.metrics;
    this.subtask = { index: context.subtaskIndex, parallelism: context.parallelism };
  }

  async open(restored: SourceSnapshot | undefined): Promise<void> {
    for (const p of restored?.positions ?? []) this.positions.set(p.split, p.position);
    await this.deadLetters.open();
    // Needed for bounded reads and restores; otherwise only to check committed offsets, which a
    // topic that does not exist yet (the job waits for it) cannot have.
    const needed = this.options.bounded === 'latest' || restored !== undefined;
    const offsets = needed ? await this.fetcher.endOffsets() : await this.fetcher.endOffsets().catch(() => undefined);
    if (this.options.bounded === 'latest') this.endOffsets = offsets;
    // A checkpoint names every split read before it, so a split it does not name starts at its
    // earliest offset — never at the group's committed offset, which a later checkpoint than the
    // restored one may have moved past records this state has not seen.
    const startAt = new Map(this.positions);
    if (restored !== undefined) for (const [split, { low }] of offsets ?? []) if (!startAt.has(split)) startAt.set(split, low);
    if (offsets !== undefined) this.checkStartPositions(startAt, offsets, 'checkpoint');
    if (restored === undefined && offsets !== undefined && this.fetcher.committedOffsets !== undefined) {
      // Without a checkpoint the client starts at the group's committed offsets and would reset
      // one out of range to the earliest offset silently: check them too, and pin where to start.
      const committed = new Map(await this.fetcher.committedOffsets());
      this.checkStartPositions(committed, offsets, 'committed offset');
      for (const [split, offset] of committed) if (!startAt.has(split)) startAt.set(split, offset);
    }
    await this.fetcher.start(
      (batch) => this.onFetched(batch),
      startAt,
      (error) => (this.fetchError ??= error),
      (loss) => this.onOffsetLoss(loss),
    );
  }

  /** Out-of-range start positions fail the job, or (per policy) move in `positions` and are counted. */
  private checkStartPositions(positions: Map<string, string>, offsets: ReadonlyMap<string, { readonly high: string; readonly low: string }>, origin: OffsetLoss['origin']): void {
    for (const [split, offset] of [...positions]) {
      const parsed = parseSplit(split);
      // Only splits this subtask reads (the watermarks cover only those): another's is not "missing".
      if (!this.options.topics.includes(parsed.topic) || !ownsPartition(parsed.partition, this.subtask.index, this.subtask.parallelism)) continue;
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
    this.metrics.count('cdcflow_source_offsets_skipped_total', { topic: loss.topic, partition: String(loss.partition), cause: loss.cause }, Number(skipped));
    const log = this.options.log ?? ((line: string) => console.warn(line));
    log(`${describeLoss(loss)}; offsetOutOfRange is '${policy}': resuming at ${resumeAt ?? 'nothing (partition gone)'}, ${skipped} records skipped`);
    return resumeAt;
  }

  async poll(maxWaitMs: number): Promise<PollResult<ChangeEvent<Row>>> {
    if (this.fetchError !== undefined) throw this.fetchError;
    if (this.reachedEnd()) return 'end';
    const taken = await this.buffer.take(maxWaitMs);
    if (taken === undefined) return 'idle';
    // Dead letters of a raw batch are written here, still before any of its records is handed out.
    const batch = 'raw' in taken ? await this.decode(taken.raw) : taken.decoded;
    // After an accepted offset loss the position restarts with this batch, even backwards.
    const expected = batch.restartsPosition ? undefined : this.positions.get(batch.split);
    // A batch fetched before a seek can repeat what was already handed out: skip that part.
    const records = expected !== undefined && batch.firstOffset < BigInt(expected) ? batch.records.filter((r) => BigInt(r.value.origin.offset) >= BigInt(expected)) : batch.records;
    if (expected === undefined || BigInt(batch.nextOffset) > BigInt(expected)) this.positions.set(batch.split, batch.nextOffset);
    return { records, split: batch.split, bytes: batch.bytes };
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

  async close(): Promise<void> {
    this.buffer.clear();
    await this.fetcher.stop();
    await this.decoder.close();
    await this.deadLetters.close();
  }

  private async onFetched(fetched: FetchedBatch): Promise<void> {
    try {
      const item: Buffered<Row> = this.decoder.decodesWhenTaken === true ? { raw: fetched } : { decoded: await this.decode(fetched) };
      await this.buffer.put(item, fetched.bytes);
    } catch (error) {
      // Surfaces in the task loop on the next poll; the restart strategy takes it from there.
      this.fetchError = error;
      throw error;
    }
  }

  private async decode(fetched: FetchedBatch): Promise<DecodedBatch<Row>> {
    const decoded = await this.decoder.decodeBatch(fetched.messages);
    const records: StreamRecord<ChangeEvent<Row>>[] = [];
    let tombstones = 0;
    const letters = [];
    for (const d of decoded) {
      if (d.kind === 'change') records.push({ value: d.event, timestamp: d.event.source.tsMs });
      else if (d.kind === 'tombstone') tombstones += 1;
      else if (d.kind === 'dead-letter') letters.push(d.letter);
    }
    if (letters.length > 0) {
      await this.deadLetters.write(letters);
      for (const letter of letters) this.metrics.count('cdcflow_dead_letters_total', { topic: letter.topic, reason: letter.errorKind });
    }
    if (tombstones > 0) this.metrics.count('cdcflow_source_tombstones_total', { topic: fetched.topic }, tombstones);
    const first = fetched.messages[0];
    return {
      split: splitOf(fetched.topic, fetched.partition),
      records,
      firstOffset: first === undefined ? 0n : BigInt(first.offset),
      nextOffset: fetched.nextOffset,
      bytes: fetched.bytes,
      restartsPosition: fetched.restartsPosition === true,
    };
  }
}
