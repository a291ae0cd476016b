import { Kafka, logLevel, type Consumer, type EachBatchPayload } from 'kafkajs';
import { kafkajsLogCreator, rootLogger } from '../../logger.ts';
import { parseSplit, splitOf, type FetchedBatch, type Fetcher } from './fetcher.ts';
import { StableGroupOffsets } from './stable-group-offsets.ts';
import { ownsPartition, subtaskAssigner, subtaskGroupId } from './subtask-assignment.ts';
import type { RawMessage } from './raw-message.ts';

export interface KafkajsFetcherOptions {
  readonly brokers: readonly string[];
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
  /** At parallelism > 1: commits under the job's own group too, for lag monitoring (stable-group-offsets.ts). */
  private readonly stableGroup: StableGroupOffsets | undefined;

  constructor(private readonly options: KafkajsFetcherOptions) {
    const kafka = (this.kafka = new Kafka({ clientId: options.clientId, brokers: [...options.brokers], logLevel: logLevel.WARN, logCreator: kafkajsLogCreator(rootLogger().child({ client: options.clientId })) }));
    const sessionTimeout = options.sessionTimeoutMs ?? 30_000;
    this.heartbeatMs = Math.min(3000, Math.floor(sessionTimeout / 3));
    const subtask = (this.subtask = { index: options.subtaskIndex ?? 0, parallelism: options.parallelism ?? 1 });
    this.stableGroup = subtask.parallelism === 1 ? undefined : new StableGroupOffsets(kafka, options.groupId);
    this.consumer = kafka.consumer({
      // Parallelism 1 keeps kafkajs's own assignment and the plain group id (nothing changes).
      ...(subtask.parallelism === 1
        ? { groupId: options.groupId }
        : { groupId: subtaskGroupId(options.groupId, subtask.index, subtask.parallelism), partitionAssigners: [subtaskAssigner(subtask.index, subtask.parallelism)] }),
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

  async start(deliver: (batch: FetchedBatch) => Promise<void>, startAt: ReadonlyMap<string, string>, onFatal?: (error: unknown) => void): Promise<void> {
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
      this.assigned = Object.entries(payload.memberAssignment).flatMap(([topic, partitions]) => partitions.map((p) => splitOf(topic, p)));
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
      const skip: FetchedBatch = { topic: payload.topic, partition: payload.partition, messages: [], nextOffset: (BigInt(payload.lastOffset) + 1n).toString(), bytes: 0 };
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
      await deliver({ topic: batch.topic, partition: batch.partition, messages, nextOffset: (BigInt(last) + 1n).toString(), bytes });
    } finally {
      clearInterval(beat);
    }
    // Resolving moves kafkajs's fetch position only; nothing is committed here.
    payload.resolveOffset(last);
  }

  async commit(positions: ReadonlyMap<string, string>): Promise<void> {
    const offsets = [...positions].filter(([split]) => this.assigned?.includes(split) === true).map(([split, offset]) => ({ ...parseSplit(split), offset }));
    if (offsets.length === 0) return;
    await this.consumer.commitOffsets(offsets);
    await this.stableGroup?.commit(new Map(offsets.map(({ topic, partition, offset }) => [splitOf(topic, partition), offset])));
  }

  async endOffsets(): Promise<ReadonlyMap<string, { readonly high: string; readonly low: string }>> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const result = new Map<string, { high: string; low: string }>();
      for (const topic of this.options.topics) {
        for (const p of await admin.fetchTopicOffsets(topic)) {
          // A subtask ends (bounded reads) and restores unread partitions over its own partitions only.
          if (ownsPartition(p.partition, this.subtask.index, this.subtask.parallelism)) result.set(splitOf(topic, p.partition), { high: p.high, low: p.low });
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
    await this.stableGroup?.close().catch(() => undefined);
    await this.consumer.disconnect();
  }
}
