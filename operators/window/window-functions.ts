/**
 * What a window computes. `aggregate` and `reduce` keep one accumulator per window and key (O(1)
 * state per window); `process` keeps every element and sees them all when the window fires.
 */
import type { Output } from '../operator.ts';
import { maxTimestamp, type TimeWindow } from './time-window.ts';

/** Incremental aggregation, as Flink's AggregateFunction. Accumulators are stored with v8 serialization (bigint is fine). */
export interface AggregateFunction<In, Acc, Out> {
  createAccumulator(): Acc;
  add(value: In, accumulator: Acc): Acc;
  getResult(accumulator: Acc): Out;
  /** Combines two accumulators; required for session windows, which merge. */
  merge?(a: Acc, b: Acc): Acc;
}

export type ReduceFunction<T> = (a: T, b: T) => T;

/** Why a window emitted: the watermark passed its end, or a late element (within the allowed lateness) changed it. */
export type Firing = 'on-time' | 'late-update';

/** What `aggregate` and `reduce` emit per window and key. The record's timestamp is `window.end - 1`. */
export interface WindowResult<K, R> {
  readonly window: TimeWindow;
  readonly key: K;
  readonly result: R;
  readonly firing: Firing;
  /** Results emitted for this window and key before this one: 0 for the first; a later one replaces the earlier. */
  readonly updateCount: number;
}

export interface WindowFiring {
  readonly window: TimeWindow;
  readonly firing: Firing;
  readonly updateCount: number;
  /** The operator's watermark when the window fired. */
  readonly currentWatermark: number;
}

export interface ProcessWindowFunction<K, In, Out> {
  /** All elements of the window (in arrival order; merged sessions concatenate). */
  process(key: K, context: WindowFiring, elements: readonly In[], out: Output<Out>): void;
}

/** How the window operator keeps and emits one window's contents. */
export interface WindowContents<In, Acc, Out> {
  create(): Acc;
  add(accumulator: Acc, value: In): Acc;
  /** Undefined when the function cannot merge (then session windows are refused). */
  readonly merge: ((a: Acc, b: Acc) => Acc) | undefined;
  /** True when the accumulator holds the values themselves (reduce, process): a value state cannot store is refused up front. */
  readonly keepsValues?: boolean;
  emit(key: unknown, firing: WindowFiring, accumulator: Acc, out: Output<Out>): void;
}

function result<K, R>(key: unknown, firing: WindowFiring, value: R): WindowResult<K, R> {
  return {
    window: firing.window,
    key: key as K,
    result: value,
    firing: firing.firing,
    updateCount: firing.updateCount,
  };
}

export function aggregateContents<K, In, Acc, R>(
  fn: AggregateFunction<In, Acc, R>,
): WindowContents<In, Acc, WindowResult<K, R>> {
  const merge = fn.merge;
  return {
    create: () => fn.createAccumulator(),
    add: (accumulator, value) => fn.add(value, accumulator),
    merge: merge === undefined ? undefined : (a, b) => merge.call(fn, a, b),
    emit: (key, firing, accumulator, out) =>
      out.emit(result<K, R>(key, firing, fn.getResult(accumulator)), maxTimestamp(firing.window)),
  };
}

interface Reduced<T> {
  readonly value: T;
}

export function reduceContents<K, T>(
  fn: ReduceFunction<T>,
): WindowContents<T, Reduced<T> | undefined, WindowResult<K, T>> {
  const combine = (a: Reduced<T> | undefined, b: Reduced<T> | undefined): Reduced<T> | undefined =>
    a === undefined ? b : b === undefined ? a : { value: fn(a.value, b.value) };
  return {
    create: () => undefined,
    add: (accumulator, value) => combine(accumulator, { value }),
    merge: combine,
    keepsValues: true,
    emit: (key, firing, accumulator, out) => {
      if (accumulator !== undefined)
        out.emit(result<K, T>(key, firing, accumulator.value), maxTimestamp(firing.window));
    },
  };
}

export function processContents<K, In, Out>(fn: ProcessWindowFunction<K, In, Out>): WindowContents<In, In[], Out> {
  return {
    create: () => [],
    add: (elements, value) => {
      // The cached state value, appended in place: the operator puts it back right away.
      elements.push(value);
      return elements;
    },
    merge: (a, b) => [...a, ...b],
    keepsValues: true,
    emit: (key, firing, elements, out) => fn.process(key as K, firing, elements, out),
  };
}
