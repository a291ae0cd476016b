/**
 * Our small interface over a Kafka consumer, so a faster client can replace kafkajs without
 * touching the source operator. Positions are owned by checkpoints: the fetcher starts where the
 * restored checkpoint says and commits to the consumer group only for lag monitoring.
 */
import type { OffsetLoss } from './offset-range.ts';
import type { RawMessage } from './raw-message.ts';

export interface FetchedBatch {
  readonly topic: string;
  readonly partition: number;
  readonly messages: readonly RawMessage[];
  /** Offset after the last message of the batch (the next one to read). */
  readonly nextOffset: string;
  /** Sum of key and value bytes, for backpressure accounting. */
  readonly bytes: number;
  /**
   * The first batch after an accepted offset loss: the split's position restarts here, also when
   * that is below the position read so far (a recreated topic starts again at 0).
   */
  readonly restartsPosition?: boolean;
}

export interface Fetcher {
  /**
   * Starts fetching. `deliver` is awaited: while it has not resolved no further batch is
   * fetched for that partition (backpressure). `startAt` maps `topic:partition` to the offset
   * to start from; other partitions start at the group's committed offset, else the earliest.
   * `onFatal` hears of a failure the client will not recover from by itself (fetching stopped).
   * `onOffsetLoss` hears of a position that went out of range while running (retention deleted
   * what was not read yet, the topic was recreated); it returns the offset to resume from, or
   * undefined to stop reading that partition (the reader then fails the job). Without it a loss
   * is fatal.
   */
  start(
    deliver: (batch: FetchedBatch) => Promise<void>,
    startAt: ReadonlyMap<string, string>,
    onFatal?: (error: unknown) => void,
    onOffsetLoss?: (loss: OffsetLoss) => string | undefined,
  ): Promise<void>;
  /**
   * Resolves once every topic exists (`false`), or `signal` aborted or `stop` was called
   * meanwhile (`true`: the caller gives up opening). Optional: fetchers without it leave a
   * missing topic to the client's own retries.
   */
  waitForTopics?(signal: AbortSignal): Promise<boolean>;
  /** Commits `topic:partition` → next offset to the consumer group (monitoring only). */
  commit(positions: ReadonlyMap<string, string>): Promise<void>;
  /**
   * For bounded reads: per split, the offset at which reading is complete (the high watermark
   * now), and the low watermark (a split with high == low is empty).
   */
  endOffsets(): Promise<ReadonlyMap<string, { readonly high: string; readonly low: string }>>;
  /** The consumer group's committed offsets of this reader's splits (where it would start without a checkpoint). */
  committedOffsets?(): Promise<ReadonlyMap<string, string>>;
  /**
   * `topic:partition` splits currently assigned; `undefined` until the consumer first joined its
   * group (an empty array is a join that assigned nothing). Returns the same array until it changes.
   */
  assignment(): readonly string[] | undefined;
  stop(): Promise<void>;
}

export function splitOf(topic: string, partition: number): string {
  return `${topic}:${partition}`;
}

export function parseSplit(split: string): { topic: string; partition: number } {
  const at = split.lastIndexOf(':');
  return { topic: split.slice(0, at), partition: Number(split.slice(at + 1)) };
}
