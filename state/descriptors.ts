import type { Serializer } from './serializers.ts';

/**
 * Descriptors name a piece of keyed state. Register them once (in the operator's `open`), before
 * the first `prefetch`: prefetch loads every registered state of the batch's keys.
 */
export interface StateDescriptor<T> {
  /** Unique per operator; part of every stored key, so renaming it drops the state. */
  readonly name: string;
  /** @default v8Serializer() */
  readonly serializer?: Serializer<T>;
  /** Values not written for this long read as absent and are dropped lazily. @default no expiry */
  readonly ttlMs?: number;
}

export type ValueStateDescriptor<T> = StateDescriptor<T>;
export type ListStateDescriptor<T> = StateDescriptor<T>;
/** Map keys use the canonical key encoding; `serializer` is for the values. TTL is per entry. */
export type MapStateDescriptor<V> = StateDescriptor<V>;

export interface ReducingStateDescriptor<T> extends StateDescriptor<T> {
  readonly reduce: (accumulator: T, value: T) => T;
}

/**
 * Typed state for the current key (`setCurrentKey`). All calls are synchronous: they read and
 * write the batch cache filled by `prefetch`; `flush` persists. Returned objects are live cache
 * values: call `update` after changing one, never mutate it in place and rely on that.
 */
export interface ValueState<T> {
  value(): T | undefined;
  update(value: T): void;
  clear(): void;
}

export interface ListState<T> {
  get(): readonly T[];
  add(value: T): void;
  update(values: readonly T[]): void;
  clear(): void;
}

export interface MapState<K, V> {
  get(key: K): V | undefined;
  has(key: K): boolean;
  put(key: K, value: V): void;
  remove(key: K): void;
  entries(): IterableIterator<[K, V]>;
  keys(): IterableIterator<K>;
  isEmpty(): boolean;
  clear(): void;
}

export interface ReducingState<T> {
  get(): T | undefined;
  add(value: T): void;
  clear(): void;
}
