/**
 * cdcflow keyed state.
 *
 * ```ts
 * const backend = await new DefaultStateBackendFactory().createKeyedBackend({
 *   jobName: 'orders', operatorUid: 'totals', subtaskIndex: 0,
 *   keyGroupRange: keyGroupRangeFor(0, 2), backend: 'rocksdb', localDir: '/var/lib/cdcflow',
 * });
 * const total = backend.getValueState<number>({ name: 'total' });   // in open()
 * await backend.prefetch(batch.map((r) => r.key));                   // before a batch (the runtime)
 * for (const r of batch) { backend.setCurrentKey(r.key); total.update((total.value() ?? 0) + r.amount); }
 * await backend.flush();                                             // after the batch (the runtime)
 * const handle = await backend.snapshot(checkpointId, storage);      // on a barrier
 * backend.notifyCheckpointComplete(checkpointId);
 * ```
 */
export {
  StateError,
  CdcflowError,
  SnapshotWriteError,
  UnclassifiedError,
  UnstorableValueError,
  causedBy,
  type ErrorDomain,
  type ErrorLocation,
  type RecordLocation,
} from './errors.ts';
export {
  classifyError,
  isRetriable,
  locateError,
  recordLocationOf,
  describeLocation,
  describeError,
  rootCdcflowError,
  type ErrorClass,
} from './error-classification.ts';
export { toWireError, fromWireError, registerErrorClasses, type WireError } from './error-wire.ts';
export { retryWithBackoff, backoffDelay, type BackoffPolicy, type RetryOptions } from './backoff.ts';
export type { KeyValueStore, StoreWrite } from './key-value-store.ts';
export { prefixUpperBound } from './key-value-store.ts';
export { MemoryStore } from './memory-store.ts';
export {
  RocksDbStore,
  preloadRocksDbBinding,
  type RocksDbMemoryOptions,
  type RocksDbStoreOptions,
} from './rocksdb-store.ts';
export {
  DEFAULT_MAX_PARALLELISM,
  MAX_MAX_PARALLELISM,
  keyGroupFor,
  keyGroupRangeFor,
  subtaskForKeyGroup,
  inKeyGroupRange,
  type KeyGroupRange,
} from './key-groups.ts';
export { encodeKey, decodeKey } from './key-encoder.ts';
export { v8Serializer, jsonSerializer, keySerializer, type Serializer } from './serializers.ts';
export type {
  StateDescriptor,
  ValueStateDescriptor,
  ListStateDescriptor,
  MapStateDescriptor,
  ReducingStateDescriptor,
  ValueState,
  ListState,
  MapState,
  ReducingState,
} from './descriptors.ts';
export { KeyedStateBackend } from './keyed-state-backend.ts';
export type { KeyedStateView, KeyedBatchState } from './keyed-state-view.ts';
export { resolveBackendOptions, type KeyedStateBackendOptions } from './backend-options.ts';
export type { KeyedStateHandle, SnapshotFileRef } from './snapshot-handle.ts';
export { newBytesOf } from './snapshot-handle.ts';
export {
  LocalFsSnapshotStorage,
  readFileChunks,
  STAGING_DIR,
  type SnapshotChunks,
  type SnapshotStorage,
} from './snapshot-storage.ts';
export {
  copyFileDurable,
  fsyncDirectory,
  isDirectorySyncUnsupported,
  mkdirDurable,
  publishDurably,
  TEMP_MARKER,
  writeChunksDurably,
  writeFileDurably,
} from './durable-fs.ts';
export {
  UpsertTable,
  type UpsertEntry,
  type UpsertChange,
  type UpsertResult,
  type UpsertTableOptions,
} from './upsert-table.ts';
export { upsertEntrySerializer, unstorableReason, MAX_STORABLE_DEPTH } from './upsert-entry-codec.ts';
export {
  DefaultStateBackendFactory,
  type StateBackendFactory,
  type StateBackendKind,
  type CreateKeyedBackendRequest,
} from './backend-factory.ts';
export {
  comparePositions,
  legacyLsnPosition,
  lsnHex,
  parsePosition,
  positionParts,
  snapshotPosition,
  streamPosition,
  type ChangePosition,
  type PositionParts,
  type PositionTier,
} from './change-position.ts';
