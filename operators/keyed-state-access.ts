/**
 * What a keyed operator sees of its state: the `state/` keyed-state view (typed states, the
 * current key, `withKeys` and `keys()` for work outside a batch), not the backend. The runtime
 * loads every key of a batch before `processBatch` and writes back after it
 * (runtime/execution/operator-runner.ts), so per-record access is synchronous.
 */
export type { KeyedStateView as KeyedStateAccess } from '../state/index.ts';
export type { ListState, MapState, StateDescriptor, ValueState } from '../state/index.ts';
