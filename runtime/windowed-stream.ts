import type { Operator, OutputTag } from '../operators/operator.ts';
import type { LateRecord } from '../operators/window/window-operator.ts';
import type { WindowAssigner } from '../operators/window/assigners.ts';
import {
  aggregateContents,
  processContents,
  reduceContents,
  type AggregateFunction,
  type ProcessWindowFunction,
  type ReduceFunction,
  type WindowContents,
  type WindowResult,
} from '../operators/window/window-functions.ts';
import { checkWindowOptions, windowOperator } from '../operators/window/window-operator.ts';
import type { DataStream } from './data-stream.ts';

/** Adds a keyed operator after the keyBy the windows belong to (KeyedStream.transformKeyed). */
type AddKeyed<T> = <R>(name: string, factory: () => Operator<T, R>) => DataStream<R>;

interface WindowSettings<T> {
  readonly allowedLatenessMs: number;
  readonly lateDataTag: OutputTag<T> | undefined;
  readonly lateRecordTag?: OutputTag<LateRecord<unknown, T>> | undefined;
}

/**
 * A keyed stream cut into event-time windows; finish it with `aggregate`, `reduce` or `process`.
 *
 * ```ts
 * const late = new OutputTag<Order>('late-orders');
 * const revenue = orders
 *   .keyBy((o) => o.status)
 *   .window(TumblingEventTimeWindows.of(60_000))
 *   .allowedLateness(30_000)          // keep windows 30 s past their end; late events re-fire them
 *   .sideOutputLateData(late)         // anything later goes here instead of being dropped
 *   .aggregate(decimalSum((o) => o.amount));
 * revenue.getSideOutput(late).sinkTo(lateSink);
 * ```
 */
export class WindowedStream<K, T> {
  constructor(
    private readonly addKeyed: AddKeyed<T>,
    private readonly assigner: WindowAssigner,
    private readonly settings: WindowSettings<T> = { allowedLatenessMs: 0, lateDataTag: undefined },
  ) {}

  /** How long after a window's end late elements still update it (and re-fire it). @default 0 */
  allowedLateness(ms: number): WindowedStream<K, T> {
    return new WindowedStream(this.addKeyed, this.assigner, { ...this.settings, allowedLatenessMs: ms });
  }

  /** Elements later than the allowed lateness go to `tag` (read it with `getSideOutput(tag)`). @default dropped and counted */
  sideOutputLateData(tag: OutputTag<T>): WindowedStream<K, T> {
    return new WindowedStream(this.addKeyed, this.assigner, { ...this.settings, lateDataTag: tag });
  }

  /**
   * Late elements as {@link LateRecord}s (window start/end, event time, watermark, lateness,
   * operator uid) to `tag`; `lateCountsPerWindow(stream.getSideOutput(tag))` turns them into a
   * running count per window. Can be combined with `sideOutputLateData`.
   */
  sideOutputLateRecords(tag: OutputTag<LateRecord<K, T>>): WindowedStream<K, T> {
    return new WindowedStream(this.addKeyed, this.assigner, {
      ...this.settings,
      lateRecordTag: tag as unknown as OutputTag<LateRecord<unknown, T>>,
    });
  }

  /** Incremental aggregation: one accumulator per window and key. */
  aggregate<Acc, R>(fn: AggregateFunction<T, Acc, R>): DataStream<WindowResult<K, R>> {
    return this.build('window-aggregate', aggregateContents<K, T, Acc, R>(fn));
  }

  /** Combines a window's elements pairwise; the result has the element type. */
  reduce(fn: ReduceFunction<T>): DataStream<WindowResult<K, T>> {
    return this.build('window-reduce', reduceContents<K, T>(fn));
  }

  /** Keeps every element and hands them all to `fn` when the window fires. */
  process<R>(fn: ProcessWindowFunction<K, T, R>): DataStream<R> {
    return this.build('window-process', processContents<K, T, R>(fn));
  }

  private build<Acc, R>(name: string, contents: WindowContents<T, Acc, R>): DataStream<R> {
    const options = { assigner: this.assigner, contents, ...this.settings };
    // Fail while the job is built (e.g. sessions need merge), not when it starts.
    checkWindowOptions(options);
    return this.addKeyed(name, () => windowOperator(options));
  }
}
