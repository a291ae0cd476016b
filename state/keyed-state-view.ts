import type {
  ListState,
  MapState,
  ReducingState,
  ReducingStateDescriptor,
  StateDescriptor,
  ValueState,
} from './descriptors.ts';

/**
 * What a keyed operator sees of its keyed state: typed states by descriptor, the current key, and
 * the keys that have a state. Not the backend's lifecycle (open, restore, snapshots, checkpoint
 * notifications, close): the runtime drives those.
 *
 * Access is synchronous and needs the key loaded. Inside `processBatch` the runtime has loaded
 * every key of the batch before the call and writes back what changed after it, so an operator
 * only calls `setCurrentKey(record.key)` and the states. For keys outside the batch (timers firing,
 * a walk over all keys) it uses `withKeys`.
 */
export interface KeyedStateView {
  /** Registers (in `open()`, before any key is loaded) or returns the value state `descriptor.name`. */
  getValueState<T>(descriptor: StateDescriptor<T>): ValueState<T>;
  getListState<T>(descriptor: StateDescriptor<T>): ListState<T>;
  getMapState<K, V>(descriptor: StateDescriptor<V>): MapState<K, V>;
  getReducingState<T>(descriptor: ReducingStateDescriptor<T>): ReducingState<T>;
  /** Makes `key` the key the states read and write; it must be loaded (a key of the batch, or of `withKeys`). */
  setCurrentKey(key: unknown): void;
  getCurrentKey(): unknown;
  /**
   * Loads `keys`, runs `body` (synchronous: it calls `setCurrentKey` on those keys and the
   * states), then writes back what changed. For keys beyond the batch's: timers firing, a walk
   * over `keys()`. Inside `processBatch`, keys of the batch that `body` did not load may be
   * unloaded afterwards: load every key the rest of the batch needs through `withKeys` too.
   * If `body` throws, nothing is written back (the job fails and restores from a checkpoint).
   */
  withKeys<R>(keys: Iterable<unknown>, body: () => R): Promise<R>;
  /**
   * Keys that have state `stateName` (not expired) in this subtask's key groups. Writes back
   * pending changes first; changing state while iterating is safe.
   */
  keys(stateName: string): AsyncIterableIterator<unknown>;
  /** The state's clock (TTL and tombstone expiry), epoch ms. */
  now(): number;
}

/** What the runtime does around each batch of a keyed operator (see `KeyedStateView`). */
export interface KeyedBatchState {
  /** Loads every registered state of `keys` that is not cached yet. */
  prefetch(keys: Iterable<unknown>): Promise<void>;
  /** Writes back every change since the last flush, as one store write. */
  flush(): Promise<void>;
}
