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
 */
import type { KeyedStateAccess, ListState, MapState, ValueState } from '../keyed-state-access.ts';
import type { Operator, OperatorContext, Output } from '../operator.ts';
import { prefetchBatch, requireKeyedState } from './keyed-batch.ts';

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
  /** Event time of the current record, if assigned. */
  readonly timestamp: number | undefined;
  /** The declared states, scoped to `key`. */
  readonly state: StateHandles<S>;
}

export interface KeyedProcessFunction<K, In, Out, S extends StateSpecs = Record<never, StateSpec>> {
  /** The states this function keeps per key, by name (the name is part of the stored key). */
  readonly state?: S;
  processElement(value: In, context: KeyedProcessContext<K, S>, out: Output<Out>): void;
}

export function keyedProcessOperator<K, In, Out, S extends StateSpecs>(fn: KeyedProcessFunction<K, In, Out, S>): Operator<In, Out> {
  let keyed: KeyedStateAccess | undefined;
  let handles: StateHandles<S> | undefined;
  return {
    open(context: OperatorContext) {
      keyed = requireKeyedState(context, 'process');
      handles = registerStates(keyed, fn.state ?? ({} as S));
    },
    async processBatch(batch, out) {
      const state = keyed as KeyedStateAccess;
      await prefetchBatch(state, batch);
      for (const record of batch) {
        state.setCurrentKey(record.key);
        fn.processElement(record.value, { key: record.key as K, timestamp: record.timestamp, state: handles as StateHandles<S> }, out);
      }
      await state.flush();
    },
  };
}

function registerStates<S extends StateSpecs>(keyed: KeyedStateAccess, specs: S): StateHandles<S> {
  const handles: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const descriptor = spec.ttlMs === undefined ? { name } : { name, ttlMs: spec.ttlMs };
    handles[name] = spec.kind === 'value' ? keyed.getValueState(descriptor) : spec.kind === 'map' ? keyed.getMapState(descriptor) : keyed.getListState(descriptor);
  }
  return handles as StateHandles<S>;
}
