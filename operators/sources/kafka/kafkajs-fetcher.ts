import { Kafka, logLevel, type Consumer, type EachBatchPayload, type LogEntry, type logCreator } from 'kafkajs';
import { assertAbortedTransactionsFiltered } from './aborted-filter-check.ts';
import { kafkaClientConfig, type KafkaConnection } from '../../kafka-connection.ts';
import { kafkajsLogCreator, rootLogger } from '../../logger.ts';
import { parseSplit, splitOf, type FetchedBatch, type Fetcher } from './fetcher.ts';
import type { OffsetLoss } from './offset-range.ts';
import { StableGroupOffsets } from './stable-group-offsets.ts';
import { ownsPartition, subtaskAssigner, subtaskGroupId } from './subtask-assignment.ts';
import { partitionTaskAssigner, partitionTaskGroupId, type PartitionTaskRef } from './partition-task-assignment.ts';
import type { RawMessage } from './raw-message.ts';

export interface KafkajsFetcherOptions {
  readonly brokers: readonly string[];
  /** TLS and SASL (operators/kafka-connection.ts); its brokers win over `brokers`. @default plaintext to `brokers` */
  readonly connection?: KafkaConnection;
  readonly topics: readonly string[];
  readonly groupId: string;
  readonly clientId: string;
  /** @default 1 MiB */
  readonly maxBytesPerPartition?: number;
  /** @default 30000 */
  readonly sessionTimeoutMs?: number;
  /** Longest wait of a fetch for new data at the broker (`fetch.max.wait.ms`). @default 500 */
  readonly maxWaitTimeMs?: number;
  /** This reader is subtask `subtaskIndex` of `parallelism`: it reads partitions p with p % parallelism == subtaskIndex. @default 0 of 1 */
  readonly subtaskIndex?: number;
  /** @default 1 */
  readonly parallelism?: number;
  /** How often topic metadata is refreshed, so partitions added to a topic are found (kafkajs `metadataMaxAge`). @default 300000 */
  readonly metadataMaxAgeMs?: number;
  /** Group mode: read only this partition of the (single) topic (partition-task-assignment.ts). */
  readonly partitionTask?: PartitionTaskRef;
}

/** kafkajs behind the Fetcher interface. */
export class KafkajsFetcher implements Fetcher {
  private readonly consumer: Consumer;
  private readonly kafka: Kafka;
  /** Undefined until the first group join: a subtask owning no partition learns so only there. */
  private assigned: string[] | undefined;
  /** Deliveries of skipped batches (see `start`), which the next real delivery waits for. */
  private skipped: Promise<void> = Promise.resolve();
  /** A third of the session timeout (as Kafka recommends), at most 3 s. */
  private readonly heartbeatMs: number;

  private readonly subtask: { readonly index: number; readonly parallelism: number };
  /** Set by `stop`: from then on kafkajs must not bring this consumer back (see `start`). */
  private stopped = false;
  /** Wakes a wait for missing topics (`waitForTopics`) when `stop` is called. */
  private wakeWait: (() => void) | undefined;
  /** Per split, the offset the next delivered batch must start at (what the job has read so far). */
  private readonly expected = new Map<string, bigint>();
  /** Splits kafkajs reported resetting after an out-of-range fetch, not yet examined. */
  private readonly resets = new Set<string>();
  /** Splits whose loss the job did not accept: nothing more is delivered from them. */
  private readonly halted = new Set<string>();
  /** Splits whose next delivered batch restarts the position (after an accepted loss). */
  private readonly restarts = new Set<string>();
  private onOffsetLoss: ((loss: OffsetLoss) => string | undefined) | undefined;
  /** At parallelism > 1: commits under the job's own group too, for lag monitoring (stable-group-offsets.ts). */
  private readonly stableGroup: StableGroupOffsets | undefined;

  constructor(private readonly options: KafkajsFetcherOptions) {
    assertAbortedTransactionsFiltered(); // the consumer below reads read_committed
    const kafka = (this.kafka = new Kafka(
      kafkaClientConfig(options.connection ?? { brokers: options.brokers }, {
        clientId: options.clientId,
        logLevel: logLevel.WARN,
        logCreator: this.logCreator,
      }),
    ));
    const sessionTimeout = options.sessionTimeoutMs ?? 30_000;
    this.heartbeatMs = Math.min(3000, Math.floor(sessionTimeout / 3));
    const subtask = (this.subtask = { index: options.subtaskIndex ?? 0, parallelism: options.parallelism ?? 1 });
    this.stableGroup = subtask.parallelism === 1 ? undefined : new StableGroupOffsets(kafka, options.groupId);
    const task = options.partitionTask;
    this.consumer = kafka.consumer({
      // Parallelism 1 keeps kafkajs's own assignment and the plain group id (nothing changes).
      ...(task !== undefined
        ? { groupId: this.groupId(), partitionAssigners: [partitionTaskAssigner(task)] }
        : subtask.parallelism === 1
          ? { groupId: options.groupId }
          : {
              groupId: subtaskGroupId(options.groupId, subtask.index, subtask.parallelism),
              partitionAssigners: [subtaskAssigner(subtask.index, subtask.parallelism)],
            }),
      sessionTimeout,
      heartbeatInterval: this.heartbeatMs,
      ...(options.metadataMaxAgeMs === undefined ? {} : { metadataMaxAge: options.metadataMaxAgeMs }),
      maxBytesPerPartition: options.maxBytesPerPartition ?? 1024 * 1024,
      // How long an idle fetch waits at the broker for data. kafkajs's 5 s default is how long a
      // stop or restart waits for the fetch in flight; 500 ms is the Java client's default.
      maxWaitTimeInMs: options.maxWaitTimeMs ?? 500,
      readUncommitted: false,
      allowAutoTopicCreation: false,
      // kafkajs restarts a crashed consumer from a timer, and `disconnect` does not stop a restart
      // already under way (its runner counts as stopped until it has joined). A consumer stopped
      // by the job must stay stopped: else it rejoins after its reader closed, fills a buffer
      // nobody takes from and heartbeats from `onBatch` forever, keeping the process alive.
      retry: { retries: 5, restartOnFailure: () => Promise.resolve(!this.stopped) },
    });
  }

  /** The consumer group this reader joins (its own per subtask, or per partition task). */
  private groupId(): string {
    const { index, parallelism } = this.subtask;
    const task = this.options.partitionTask;
    if (task !== undefined)
      return partitionTaskGroupId(this.options.groupId, this.options.topics[0] as string, task.partition);
    return parallelism === 1 ? this.options.groupId : subtaskGroupId(this.options.groupId, index, parallelism);
  }

  private owns(partition: number): boolean {
    const task = this.options.partitionTask;
    return task === undefined
      ? ownsPartition(partition, this.subtask.index, this.subtask.parallelism)
      : partition === task.partition;
  }

  /**
   * kafkajs's console logger, plus the one line that matters here: on OFFSET_OUT_OF_RANGE kafkajs
   * logs "Offset out of range, resetting to default offset" and seeks to the earliest offset on its
   * own. That reset is noted (synchronously, before the next fetch) so the batch it produces is
   * checked instead of delivered as if nothing had happened.
   */
  /** kafkajs's lines go to the job's logger; its silent out-of-range reset is noted on the way. */
  private readonly logCreator: logCreator = (level) => {
    const forward = kafkajsLogCreator(rootLogger().child({ client: this.options.clientId }))(level);
    return (entry: LogEntry) => {
      const { message, topic, partition } = entry.log as { message: string; topic?: unknown; partition?: unknown };
      if (
        message.startsWith('Offset out of range, resetting') &&
        typeof topic === 'string' &&
        typeof partition === 'number'
      ) {
        this.resets.add(splitOf(topic, partition));
      }
      forward(entry);
    };
  };

  async start(
    deliver: (batch: FetchedBatch) => Promise<void>,
    startAt: ReadonlyMap<string, string>,
    onFatal?: (error: unknown) => void,
    onOffsetLoss?: (loss: OffsetLoss) => string | undefined,
  ): Promise<void> {
    this.onOffsetLoss = onOffsetLoss;
    for (const [split, offset] of startAt) this.expected.set(split, BigInt(offset));
    // kafkajs restarts its consumer after retriable crashes (a broker restart); after any other it
    // just stops fetching, which without this would leave the job idle forever instead of failing.
    this.consumer.on(this.consumer.events.CRASH, ({ payload }) => {
      if (!payload.restart) onFatal?.(payload.error);
    });
    await this.consumer.connect();
    for (const topic of this.options.topics) await this.consumer.subscribe({ topic, fromBeginning: true });
    // A restart kafkajs had begun before `stop` ends up running anyway (`stop` found no running
    // consumer to stop): stop it at its first fetch, the first moment kafkajs can stop it.
    this.consumer.on(this.consumer.events.FETCH_START, () => {
      if (this.stopped) void this.consumer.disconnect().catch(() => undefined);
    });
    this.consumer.on(this.consumer.events.GROUP_JOIN, ({ payload }) => {
      this.assigned = Object.entries(payload.memberAssignment).flatMap(([topic, partitions]) =>
        partitions.map((p) => splitOf(topic, p)),
      );
      // Checkpoints own positions: after every (re)join, read from where the checkpoint says.
      for (const split of this.assigned) {
        const offset = startAt.get(split);
        if (offset !== undefined) this.consumer.seek({ ...parseSplit(split), offset });
      }
    });
    // kafkajs resolves a batch of nothing but transaction markers or aborted messages by itself,
    // without eachBatch. Positions must still move past it: else a bounded read of a
    // transactional topic waits forever for the offset of a marker no message will ever have.
    this.consumer.on(this.consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      if (payload.batchSize !== 0 || payload.firstOffset === null) return;
      const split = splitOf(payload.topic, payload.partition);
      // After a reset the position is examined by the next real batch (`onBatch`), not moved here.
      if (this.resets.has(split) || this.halted.has(split)) return;
      this.advance(split, BigInt(payload.lastOffset) + 1n);
      const skip: FetchedBatch = {
        topic: payload.topic,
        partition: payload.partition,
        messages: [],
        nextOffset: (BigInt(payload.lastOffset) + 1n).toString(),
        bytes: 0,
      };
      // kafkajs does not wait for listeners; a failed delivery reaches the reader on its own.
      this.skipped = this.skipped.then(() => deliver(skip)).catch(() => undefined);
    });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: (payload) => this.onBatch(payload, deliver),
    });
  }

  private async onBatch(payload: EachBatchPayload, deliver: (batch: FetchedBatch) => Promise<void>): Promise<void> {
    const { batch } = payload;
    if (batch.isEmpty() || payload.isStale() || this.stopped) return;
    await this.skipped;
    const split = splitOf(batch.topic, batch.partition);
    if (this.halted.has(split)) return;
    // kafkajs 2.2's Batch keeps the offset it fetched from (untyped); the first message is a fallback.
    const fetchedFrom =
      (batch as unknown as { fetchedOffset?: string }).fetchedOffset ?? batch.firstOffset() ?? batch.lastOffset();
    if (!(await this.positionIntact(split, fetchedFrom))) return;
    let bytes = 0;
    const messages: RawMessage[] = batch.messages.map((m) => {
      bytes += (m.key?.length ?? 0) + (m.value?.length ?? 0);
      return {
        topic: batch.topic,
        partition: batch.partition,
        offset: m.offset,
        key: m.key ?? null,
        value: m.value ?? null,
        timestampMs: Number(m.timestamp),
        ...(m.headers === undefined ? {} : { headers: m.headers as NonNullable<RawMessage['headers']> }),
      };
    });
    const last = batch.lastOffset();
    // Keep the group membership alive while processing holds the batch back.
    const beat = setInterval(() => {
      if (this.stopped) clearInterval(beat);
      else void payload.heartbeat().catch(() => undefined);
    }, this.heartbeatMs);
    try {
      const restartsPosition = this.restarts.delete(split);
      await deliver({
        topic: batch.topic,
        partition: batch.partition,
        messages,
        nextOffset: (BigInt(last) + 1n).toString(),
        bytes,
        ...(restartsPosition ? { restartsPosition } : {}),
      });
    } finally {
      clearInterval(beat);
    }
    this.advance(split, BigInt(last) + 1n);
    // Resolving moves kafkajs's fetch position only; nothing is committed here.
    payload.resolveOffset(last);
  }

  /** A rejoin seeks back to the checkpoint's offsets and re-reads: what was read stays read. */
  private advance(split: string, next: bigint): void {
    const expected = this.expected.get(split);
    if (expected === undefined || next > expected) this.expected.set(split, next);
  }

  /**
   * Whether a batch fetched from `fetchedOffset` continues what the job has read. A fetch that
   * starts beyond the expected offset is not a loss by itself (control records and compaction
   * leave gaps): it is one when kafkajs reported an out-of-range reset, or when the expected
   * offset is below the partition's log start. On a loss the handler decides: resume elsewhere
   * (this batch is then delivered only if kafkajs already stands there) or halt the split.
   */
  private async positionIntact(split: string, fetchedOffset: string): Promise<boolean> {
    const expected = this.expected.get(split);
    const fetched = BigInt(fetchedOffset);
    const reset = this.resets.delete(split);
    if (expected === undefined || (!reset && fetched <= expected)) return true;
    const { topic, partition } = parseSplit(split);
    const watermarks = (await this.endOffsets()).get(split);
    const low = watermarks === undefined ? undefined : BigInt(watermarks.low);
    let cause: OffsetLoss['cause'];
    if (watermarks === undefined) cause = 'partition-missing';
    else if (low !== undefined && expected < low) cause = 'below-log-start';
    else if (watermarks !== undefined && expected > BigInt(watermarks.high)) cause = 'above-high-watermark';
    else return true; // a gap of control records or compaction, not lost data
    const loss: OffsetLoss = {
      topic,
      partition,
      offset: expected.toString(),
      earliest: watermarks?.low,
      latest: watermarks?.high,
      cause,
      origin: 'fetch',
    };
    const resumeAt = this.onOffsetLoss?.(loss);
    if (resumeAt === undefined) {
      this.halted.add(split);
      this.consumer.pause([{ topic, partitions: [partition] }]);
      return false;
    }
    this.expected.set(split, BigInt(resumeAt));
    this.restarts.add(split);
    if (BigInt(resumeAt) === fetched) return true;
    this.consumer.seek({ topic, partition, offset: resumeAt });
    return false;
  }

  /**
   * Polls the topic list until every topic exists. kafkajs would retry a missing topic in its own
   * retrier (metadata, offsets, subscribe: ~10 s each, then the attempt fails and restarts),
   * which nothing can cancel: a job stopped meanwhile kept retrying and logging after "stopped".
   * This wait ends at once on `stop`.
   */
  async waitForTopics(signal: AbortSignal, intervalMs = 1_000): Promise<boolean> {
    const admin = this.kafka.admin();
    let logged = false;
    try {
      await admin.connect();
      while (!this.stopped && !signal.aborted) {
        const existing = new Set(await admin.listTopics());
        const missing = this.options.topics.filter((t) => !existing.has(t));
        if (missing.length === 0) return false;
        if (!logged)
          rootLogger()
            .child({ client: this.options.clientId })
            .warn({ missing }, `waiting for topic(s) ${missing.join(', ')} to exist (checked every ${intervalMs} ms)`);
        logged = true;
        await new Promise<void>((resolve) => {
          const wake = () => {
            clearTimeout(timer);
            signal.removeEventListener('abort', wake);
            resolve();
          };
          const timer = setTimeout(wake, intervalMs);
          signal.addEventListener('abort', wake);
          this.wakeWait = wake;
        });
        this.wakeWait = undefined;
      }
      return true;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  async commit(positions: ReadonlyMap<string, string>): Promise<void> {
    const offsets = [...positions]
      .filter(([split]) => this.assigned?.includes(split) === true)
      .map(([split, offset]) => ({ ...parseSplit(split), offset }));
    if (offsets.length === 0) return;
    await this.consumer.commitOffsets(offsets);
    await this.stableGroup?.commit(
      new Map(offsets.map(({ topic, partition, offset }) => [splitOf(topic, partition), offset])),
    );
  }

  async endOffsets(): Promise<ReadonlyMap<string, { readonly high: string; readonly low: string }>> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const result = new Map<string, { high: string; low: string }>();
      for (const topic of this.options.topics) {
        for (const p of await admin.fetchTopicOffsets(topic)) {
          // A subtask ends (bounded reads) and restores unread partitions over its own partitions only.
          if (this.owns(p.partition)) result.set(splitOf(topic, p.partition), { high: p.high, low: p.low });
        }
      }
      return result;
    } finally {
      await admin.disconnect();
    }
  }

  async committedOffsets(): Promise<ReadonlyMap<string, string>> {
    const groupId = this.groupId();
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const result = new Map<string, string>();
      for (const { topic, partitions } of await admin.fetchOffsets({ groupId, topics: [...this.options.topics] })) {
        for (const { partition, offset } of partitions) {
          if (BigInt(offset) >= 0n && this.owns(partition)) result.set(splitOf(topic, partition), offset);
        }
      }
      return result;
    } finally {
      await admin.disconnect();
    }
  }

  assignment(): readonly string[] | undefined {
    return this.assigned;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeWait?.();
    await this.stableGroup?.close().catch(() => undefined);
    await this.consumer.disconnect();
  }
}
