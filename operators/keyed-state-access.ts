/**
 * What a keyed operator sees of its state: the `state/` keyed backend, with synchronous access
 * for the current key inside a batch (the runtime prefetches every key of the batch first).
 */
export type { KeyedStateBackend as KeyedStateAccess } from '../state/index.ts';
export type { ListState, MapState, StateDescriptor, ValueState } from '../state/index.ts';
