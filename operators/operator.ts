/**
 * The operator lifecycle contract. Every step of a job — source decoding aside — is an Operator:
 * transforms, keyed process functions, windows and sinks alike.
 *
 * Only `processBatch` is required. Records arrive in batches because per-record async hops are
 * what makes a Node stream processor slow: for a keyed operator the runtime prefetches the state of
 * every key of a batch in one RocksDB read before `processBatch` and writes it back in one write
 * batch after it.
 *
 * Checkpoint hooks follow the two phases of the barrier protocol:
 *  - `snapshotState(id)` runs when barrier `id` has arrived on every input, before the barrier
 *    moves on. Sinks pre-commit here (flush, PREPARE TRANSACTION); what it returns is stored in
 *    checkpoint `id`'s metadata and handed back to `restoreState` after a failure.
 *  - `notifyCheckpointComplete(id)` runs only once checkpoint `id` is durable. Sinks commit here.
 *    It must be idempotent: after a crash it may run again for the same id (via `restoreState`).
 */
import type { KeyedStateAccess } from './keyed-state-access.ts';
import type { RecordDeadLetters } from './record-dead-letters.ts';

/** A record on its way through the graph, with its event time (epoch ms) once one is assigned. */
export interface StreamRecord<T> {
  readonly value: T;
  /** Event time, epoch milliseconds; `undefined` until a timestamp assigner or source sets it. */
  readonly timestamp: number | undefined;
  /** Set by the runtime for operators after keyBy: the record's key. */
  readonly key?: unknown;
}

/** Where an operator's results go: the main output, or a named side output. */
export interface Output<Out> {
  emit(value: Out, timestamp?: number): void;
  emitSide<S>(tag: OutputTag<S>, value: S, timestamp?: number): void;
}

/** Names a side output; its type parameter types the side stream. */
export class OutputTag<T> {
  declare readonly _type: T;
  constructor(readonly id: string) {
    if (!/^[a-zA-Z0-9_.-]+$/.test(id))
      throw new Error(`OutputTag id '${id}' may use only letters, digits, '.', '_' and '-'`);
  }
}

export interface OperatorInfo {
  readonly jobName: string;
  /** Stable identity of this operator across restarts; state and transactions are keyed by it. */
  readonly uid: string;
  readonly subtaskIndex: number;
  readonly parallelism: number;
}

/** What the runtime hands an operator when it opens. */
export interface OperatorContext extends OperatorInfo {
  /** Present for operators after keyBy; undefined otherwise. */
  readonly keyedState: KeyedStateAccess | undefined;
  readonly metrics: OperatorMetrics;
  /**
   * Where records this operator cannot handle go (user code threw, state or the sink refused the
   * value), under the job's record-error policy. Undefined where the runtime offers none (unit
   * tests): the operator then fails as before.
   */
  readonly deadLetters?: RecordDeadLetters;
  /**
   * Subtask indices an earlier run of this job used (at a higher parallelism) that no longer
   * exist and whose leftovers this subtask takes care of: j ≥ parallelism with
   * j % parallelism == subtaskIndex, below the highest parallelism the job ever started at.
   * Two-phase sinks recover them (roll back, fence) unless the restored checkpoint handed them
   * over already. @default none
   */
  readonly retiredSubtasks?: readonly number[];
  /**
   * Set when the job starts from no checkpoint. Two-phase sinks then refuse to roll back
   * transactions of this job they find that the checkpoint folder cannot account for (ids above
   * `highestKnownCheckpointId`, the highest id ever reserved there): they may belong to a
   * checkpoint that completed elsewhere. `discardSinkTransactions` allows it. @default a restore
   */
  readonly freshStart?: FreshStart;
  /** Processing time, injectable for tests. */
  now(): number;
}

export interface FreshStart {
  readonly highestKnownCheckpointId: number;
  readonly discardSinkTransactions: boolean;
}

/** The counters, gauges and histograms every operator may raise; the runtime maps them to Prometheus series. */
export interface OperatorMetrics {
  count(name: string, labels?: Readonly<Record<string, string>>, by?: number): void;
  gauge(name: string, value: number, labels?: Readonly<Record<string, string>>): void;
  /**
   * One observation of a duration into the histogram `name` (a `_seconds` name, Prometheus's
   * base unit). The runtime's buckets span 5 ms to an hour (`OPERATOR_SECONDS_BUCKETS`
   * in runtime/metrics.ts). About 1 µs per call (prom-client): per record, that is a third of
   * what decoding the record costs, so keep it off per-record paths that can batch.
   */
  observe(name: string, seconds: number, labels?: Readonly<Record<string, string>>): void;
  /**
   * A job-level gauge (`job` + `labelNames`, no operator label) computed when scraped: lags and
   * ages that must keep growing while nothing happens. Absent where the runtime offers none (tests).
   */
  collect?(
    name: string,
    labelNames: readonly string[],
    sample: () => Iterable<readonly [Readonly<Record<string, string>>, number]>,
  ): () => void;
}

/** Opaque, JSON-serialisable operator state stored in checkpoint metadata. */
export type OperatorSnapshot = unknown;

/** One old subtask's snapshot, handed over when a job restores at another parallelism. */
export interface RescaledSnapshot {
  readonly subtaskIndex: number;
  readonly snapshot: OperatorSnapshot;
}

export interface Operator<In, Out> {
  /** Processes one batch; `out` is valid only during the call. */
  processBatch(batch: readonly StreamRecord<In>[], out: Output<Out>): void | Promise<void>;
  open?(context: OperatorContext, restored: OperatorSnapshot | undefined): void | Promise<void>;
  /** The combined watermark of all inputs advanced to `watermark` (never goes back). */
  onWatermark?(watermark: number, out: Output<Out>): void | Promise<void>;
  /**
   * Processing time passed: called between two polls of the task loop (after every poll, so at
   * least every poll wait while the sources are quiet) with the wall clock. Processing-time
   * timers fire here.
   */
  onProcessingTime?(now: number, out: Output<Out>): void | Promise<void>;
  snapshotState?(checkpointId: number): OperatorSnapshot | Promise<OperatorSnapshot>;
  notifyCheckpointComplete?(checkpointId: number): void | Promise<void>;
  notifyCheckpointAborted?(checkpointId: number): void | Promise<void>;
  /** Called at the end of input (bounded sources) and on shutdown. */
  close?(): void | Promise<void>;
  /**
   * Restoring at a different parallelism: combine the snapshots of the old subtasks this one takes
   * over (every old subtask for keyed operators, old j with j % parallelism == subtaskIndex for
   * the others) into the snapshot `open` receives. Called before `open`. Without it such a
   * restore fails, unless none of the old subtasks stored operator state.
   */
  mergeRescaled?(parts: readonly RescaledSnapshot[], info: OperatorInfo): OperatorSnapshot;
}

/** Builds a fresh operator instance per subtask (operators hold per-instance state). */
export type OperatorFactory<In, Out> = () => Operator<In, Out>;
