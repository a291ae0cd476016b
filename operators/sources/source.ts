/**
 * The source contract. Sources are pulled by the task loop, which is what makes checkpoints
 * simple and exact: between two polls the loop may inject a barrier, and `snapshot` then
 * describes precisely the records already handed out (the next offset to read per split).
 */
import type { OperatorInfo, StreamRecord } from '../operator.ts';
import { CdcflowError } from '../../state/errors.ts';

/** `open` gave up waiting (for a topic that does not exist yet) because the job is stopping. */
export class SourceOpenInterruptedError extends CdcflowError {
  constructor(what: string) {
    super(`source stopped while opening (${what})`, { domain: 'internal', retriable: false });
  }
}

/** One unit of work and of state for a source: a Kafka partition, a file, a range. */
export interface SplitPosition {
  readonly split: string;
  /** The next position to read; opaque to the runtime (a Kafka offset as a decimal string). */
  readonly position: string;
}

/**
 * An upstream task's watermark as an exchange carried it (a repartition topic between group-mode
 * stages, runtime/group/repartition-topic.ts): `origin` names the upstream source partition, so a
 * new owner of it continues the same origin. `-Infinity` is an origin that has read nothing yet.
 */
export interface CarriedWatermark {
  readonly origin: string;
  readonly watermark: number;
  /**
   * How many upstream origins write the exchange, when the upstream says: until that many have
   * been seen on a split (or the idleness timeout passed), the split holds event time back, as a
   * single-process source holds back until every assigned partition has delivered.
   */
  readonly origins?: number;
}

export interface SourceBatch<T> {
  readonly records: readonly StreamRecord<T>[];
  /** Which split the batch came from; watermarks are generated per split. */
  readonly split: string;
  /** Approximate size, for backpressure accounting. */
  readonly bytes: number;
  /**
   * Upstream watermarks this batch carried (data and watermark-only control records of an
   * exchange), in read order. Once a split has carried one, its watermark is the minimum over its
   * origins that are not idle (runtime/execution/carried-watermarks.ts), not its records' highest
   * timestamp minus the bound. A batch may then hold no records at all. @default none
   */
  readonly carried?: readonly CarriedWatermark[];
}

export type PollResult<T> = SourceBatch<T> | 'idle' | 'end';

/** A carried watermark in a checkpoint: infinities as the strings `-Infinity` / `Infinity` (JSON has neither). */
export interface StoredCarriedWatermark {
  readonly split: string;
  readonly origin: string;
  readonly watermark: number | '-Infinity' | 'Infinity';
}

export interface SourceSnapshot {
  readonly positions: readonly SplitPosition[];
  /** Per split, the upstream origins' watermarks (`SourceBatch.carried`), added by the runtime. */
  readonly carriedWatermarks?: readonly StoredCarriedWatermark[];
}

export interface SourceReader<T> {
  open(restored: SourceSnapshot | undefined): Promise<void>;
  /** Next batch, 'idle' when nothing arrived within `maxWaitMs`, 'end' when a bounded source is done. */
  poll(maxWaitMs: number): Promise<PollResult<T>>;
  /** Positions after everything polled so far. Called between polls, at a barrier. */
  snapshot(checkpointId: number): SourceSnapshot;
  /**
   * Every split assigned to this reader (a Kafka source: its consumer group assignment), also
   * those that have not delivered yet. The task registers them with the watermark generator, so
   * each holds the source's watermark back until it delivers or goes idle — a fast split cannot
   * make a slow one's first records late. Called after every poll; return the same array while
   * the assignment is unchanged. `undefined` while the reader does not know its assignment yet
   * (before the group join): then the source holds event time back. An empty array means the
   * reader owns no split: the source is idle downstream (it neither holds event time back nor
   * advances it) until a split is assigned. @default only splits that delivered count
   */
  assignedSplits?(): readonly string[] | undefined;
  /**
   * The job is stopping while `open` is still under way: a source that waits in `open` for
   * something outside (a topic to be created) stops waiting, and `open` rejects with
   * SourceOpenInterruptedError (the attempt then ends without a final checkpoint). A source that
   * is not waiting ignores it and the stop proceeds as usual. Optional.
   */
  interruptOpen?(): void;
  /** The checkpoint is durable: the source may commit offsets externally (for lag monitoring). */
  notifyCheckpointComplete?(checkpointId: number): Promise<void>;
  close(): Promise<void>;
}

export interface SourceContext extends OperatorInfo {
  readonly metrics: import('../operator.ts').OperatorMetrics;
}

/** What `env.fromSource(...)` takes: a named factory for readers. */
export interface SourceDefinition<T> {
  readonly name: string;
  createReader(context: SourceContext): SourceReader<T>;
  /**
   * Which subtask of `parallelism` reads `split`: a pure function, so every subtask agrees and a
   * restore at another parallelism hands each recorded position to the subtask that now owns it.
   * A source without it can only run at parallelism 1.
   */
  splitOwner?(split: string, parallelism: number): number;
}
