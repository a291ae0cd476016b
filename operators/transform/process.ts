/**
 * Keyed process functions: per-record logic with state scoped to the record's key. States are
 * declared up front (as Flink registers descriptors in open()) so the runtime can prefetch
 * them for a whole batch in one read; the declaration also types them.
 *
 * ```ts
 * stream.keyBy((e) => e.op).process({
 *   state: { count: valueState<number>() },
 *   processElement(event, ctx, out) {
 *     const next = (ctx.state.count.value() ?? 0) + 1;
 *     ctx.state.count.update(next);
 *     out.emit({ op: ctx.key, count: next });
 *   },
 * });
 * ```
 *
 * Timers: define `onTimer` and register timers through `ctx.timers`. Event-time timers fire when
 * the operator's watermark reaches their timestamp; processing-time timers fire when the task
 * loop's clock does — the runtime ticks operators between two polls (at least every
 * `pollWaitMs`, 100 ms, while the sources are quiet), so a processing-time timer fires up to one
 * poll late, never early. Both kinds are keyed state: checkpointed, restored, fired once. At the
 * end of bounded input event time jumps to +∞ (every event-time timer fires); pending
 * processing-time timers do not fire.
 *
 * ```ts
 * stream.keyBy((e) => e.id).process({
 *   state: { lastSeen: valueState<number>() },
 *   processElement(event, ctx) {
 *     ctx.state.lastSeen.update(ctx.timestamp ?? 0);
 *     ctx.timers.registerEventTime((ctx.timestamp ?? 0) + 60_000);   // one minute of silence
 *   },
 *   onTimer(timestamp, ctx, out) {
 *     if ((ctx.state.lastSeen.value() ?? 0) + 60_000 === timestamp) out.emit({ id: ctx.key, silentSince: timestamp });
 *   },
 * });
 * ```
 */
import { CdcflowError } from '../../state/errors.ts';
import type { KeyedStateAccess, ListState, MapState, ValueState } from '../keyed-state-access.ts';
import type { Operator, OperatorContext, Output } from '../operator.ts';
import type { RecordDeadLetters } from '../record-dead-letters.ts';
import { requireKeyedState } from './keyed-batch.ts';
import { userCodeFailed } from './user-code.ts';
import { KeyedTimers, OperatorWatermark, type TimeDomain } from './keyed-timers.ts';

interface SpecOptions {
  /** Entries not written for this long read as absent. @default no expiry */
  readonly ttlMs?: number;
}

export interface ValueStateSpec<T> extends SpecOptions {
  readonly kind: 'value';
  readonly _type?: T;
}
export interface MapStateSpec<K, V> extends SpecOptions {
  readonly kind: 'map';
  readonly _type?: [K, V];
}
export interface ListStateSpec<T> extends SpecOptions {
  readonly kind: 'list';
  readonly _type?: T;
}

export type StateSpec = ValueStateSpec<unknown> | MapStateSpec<unknown, unknown> | ListStateSpec<unknown>;
export type StateSpecs = Readonly<Record<string, StateSpec>>;

export type StateHandles<S extends StateSpecs> = {
  readonly [P in keyof S]: S[P] extends ValueStateSpec<infer T>
    ? ValueState<T>
    : S[P] extends MapStateSpec<infer K, infer V>
      ? MapState<K, V>
      : S[P] extends ListStateSpec<infer T>
        ? ListState<T>
        : never;
};

export const valueState = <T>(options: SpecOptions = {}): ValueStateSpec<T> => ({ kind: 'value', ...options });
export const mapState = <K, V>(options: SpecOptions = {}): MapStateSpec<K, V> => ({ kind: 'map', ...options });
export const listState = <T>(options: SpecOptions = {}): ListStateSpec<T> => ({ kind: 'list', ...options });

export interface KeyedProcessContext<K, S extends StateSpecs> {
  readonly key: K;
  /** Event time of the current record, if assigned; in `onTimer`, the timer's timestamp. */
  readonly timestamp: number | undefined;
  /** The declared states, scoped to `key`. */
  readonly state: StateHandles<S>;
  /** Timers of `key`, and the operator's clocks. */
  readonly timers: TimerContext;
}

/** Timers of the current key. Registering needs `onTimer` on the function. */
export interface TimerContext {
  /** The operator's event-time watermark; -Infinity before the first one. */
  currentWatermark(): number;
  currentProcessingTime(): number;
  /** Fires `onTimer` once the watermark reaches `timestamp`; the same timestamp twice is one timer. */
  registerEventTime(timestamp: number): void;
  /** Fires `onTimer` once the processing-time clock reaches `timestamp` (epoch ms). */
  registerProcessingTime(timestamp: number): void;
  deleteEventTime(timestamp: number): void;
  deleteProcessingTime(timestamp: number): void;
}

export interface OnTimerContext<K, S extends StateSpecs> extends KeyedProcessContext<K, S> {
  readonly timestamp: number;
  readonly timeDomain: TimeDomain;
}

export interface KeyedProcessFunction<K, In, Out, S extends StateSpecs = Record<never, StateSpec>> {
  /** The states this function keeps per key, by name (the name is part of the stored key). */
  readonly state?: S;
  processElement(value: In, context: KeyedProcessContext<K, S>, out: Output<Out>): void;
  /** A timer of `context.key` fired; `out` records carry no timestamp unless given one. */
  onTimer?(timestamp: number, context: OnTimerContext<K, S>, out: Output<Out>): void;
}

/** State names starting with this are the operator's own (timers). */
const RESERVED_PREFIX = '__';

export function keyedProcessOperator<K, In, Out, S extends StateSpecs>(
  fn: KeyedProcessFunction<K, In, Out, S>,
): Operator<In, Out> {
  let keyed: KeyedStateAccess | undefined;
  let handles: StateHandles<S> | undefined;
  let timers: KeyedTimers | undefined;
  let watermark = new OperatorWatermark(undefined);
  let now: () => number = Date.now;
  let deadLetters: RecordDeadLetters | undefined;
  const timerContext = timerContextOf(
    () => timers,
    () => watermark.current,
    () => now(),
  );

  const fire = (domain: TimeDomain, out: Output<Out>) => (key: unknown, timestamp: number) => {
    const context = {
      key: key as K,
      timestamp,
      state: handles as StateHandles<S>,
      timers: timerContext,
      timeDomain: domain,
    };
    fn.onTimer?.(timestamp, context, out);
  };

  return {
    async open(context: OperatorContext, restored) {
      keyed = requireKeyedState(context, 'process');
      deadLetters = context.deadLetters;
      now = () => context.now();
      handles = registerStates(keyed, fn.state ?? ({} as S));
      if (fn.onTimer === undefined) return;
      timers = new KeyedTimers(keyed, `${RESERVED_PREFIX}timers`);
      watermark = new OperatorWatermark(restored);
      await timers.restore();
    },
    processBatch(batch, out) {
      // The runtime loaded every key of the batch and writes back after it.
      const state = keyed as KeyedStateAccess;
      for (const record of batch) {
        state.setCurrentKey(record.key);
        // A throw is the record's failure (dead letter or fail fast), not the job's: what the
        // function wrote to state before it threw stays (as in Flink, state is not rolled back).
        try {
          fn.processElement(
            record.value,
            {
              key: record.key as K,
              timestamp: record.timestamp,
              state: handles as StateHandles<S>,
              timers: timerContext,
            },
            out,
          );
        } catch (error) {
          userCodeFailed(deadLetters, record, error, 'processElement');
        }
      }
    },
    async onWatermark(next, out) {
      watermark.advance(next);
      await timers?.advance('event-time', next, fire('event-time', out));
    },
    async onProcessingTime(time, out) {
      if ((timers?.nextTimestamp('processing-time') ?? Number.POSITIVE_INFINITY) > time) return;
      await timers?.advance('processing-time', time, fire('processing-time', out));
    },
    snapshotState() {
      return timers === undefined ? undefined : watermark.snapshot();
    },
    mergeRescaled: (parts) => OperatorWatermark.merge(parts),
  };
}

function timerContextOf(
  timers: () => KeyedTimers | undefined,
  watermark: () => number,
  now: () => number,
): TimerContext {
  const service = (): KeyedTimers => {
    const found = timers();
    if (found === undefined)
      throw new CdcflowError(
        'timers need an onTimer callback: add onTimer(timestamp, ctx, out) to the process function',
        { domain: 'user', retriable: false },
      );
    return found;
  };
  return {
    currentWatermark: watermark,
    currentProcessingTime: now,
    registerEventTime: (timestamp) => service().register('event-time', timestamp),
    registerProcessingTime: (timestamp) => service().register('processing-time', timestamp),
    deleteEventTime: (timestamp) => void service().delete('event-time', timestamp),
    deleteProcessingTime: (timestamp) => void service().delete('processing-time', timestamp),
  };
}

function registerStates<S extends StateSpecs>(keyed: KeyedStateAccess, specs: S): StateHandles<S> {
  const handles: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(specs)) {
    if (name.startsWith(RESERVED_PREFIX))
      throw new Error(
        `state name '${name}': names starting with '${RESERVED_PREFIX}' are reserved for the operator's timers`,
      );
    const descriptor = spec.ttlMs === undefined ? { name } : { name, ttlMs: spec.ttlMs };
    handles[name] =
      spec.kind === 'value'
        ? keyed.getValueState(descriptor)
        : spec.kind === 'map'
          ? keyed.getMapState(descriptor)
          : keyed.getListState(descriptor);
  }
  return handles as StateHandles<S>;
}
