/**
 * Public surface of the checkpoints layer: the coordinator, storage contract and local
 * implementation, the metadata format, and the errors.
 *
 * @example
 * import { CheckpointCoordinator, LocalCheckpointStorage } from './checkpoints/index.ts';
 * const storage = new LocalCheckpointStorage({ directory: '.cdcflow/checkpoints', jobName: 'orders' });
 * const coordinator = new CheckpointCoordinator({ jobName: 'orders', storage, tasks, triggerBarrier, notifyComplete, notifyAborted, onFailureThresholdExceeded });
 * const { restored, nextCheckpointId } = await coordinator.restoreFrom('latest');
 * coordinator.start();
 */
export { systemClock } from './clock.ts';
export type { Clock } from './clock.ts';
export { CheckpointCoordinator } from './coordinator.ts';
export type { CoordinatorStatus, RestorePlan, RestoreSource } from './coordinator.ts';
export { CHECKPOINT_DEFAULTS, resolveCoordinatorOptions } from './coordinator-options.ts';
export type {
  CheckpointCoordinatorOptions,
  CheckpointEvent,
  CheckpointStats,
  IgnoredReason,
} from './coordinator-options.ts';
export {
  CheckpointAbortedError,
  CheckpointConfigError,
  CheckpointError,
  CheckpointFormatError,
  CheckpointNotFoundError,
  CheckpointStorageError,
  IllegalCheckpointTransitionError,
} from './errors.ts';
export { assertTransition, canTransition, isTerminal } from './lifecycle.ts';
export type { CheckpointState } from './lifecycle.ts';
export { LocalCheckpointStorage } from './local-storage.ts';
export type { LocalCheckpointStorageOptions } from './local-storage.ts';
export { METADATA_FILE, SAVEPOINTS_DIR, SHARED_DIR } from './local-layout.ts';
export { assertValidName, isValidName } from './names.ts';
export {
  collectSharedFiles,
  METADATA_FORMAT_VERSION,
  parseMetadata,
  serializeMetadata,
  taskIdOf,
  validateMetadata,
} from './checkpoint-metadata.ts';
export type { CheckpointKind, CheckpointMetadata, FileBase, TaskSnapshot, TaskState } from './checkpoint-metadata.ts';
export { highestParallelism, PARALLELISM_FILE, recordParallelism, retiredSubtasks } from './parallelism-record.ts';
export { referencedFiles, stateFileCheckpointId } from './state-files.ts';
export { resolveStateFile } from './storage.ts';
export type {
  CheckpointListing,
  CheckpointRef,
  CheckpointStorage,
  InvalidCheckpoint,
  RetainOptions,
  RetentionResult,
  StoredCheckpoint,
} from './storage.ts';
export { checkpointStorageFor, localCheckpointPath, validateCheckpointRoot } from './checkpoint-storage-for.ts';
export type { CheckpointStorageChoice } from './checkpoint-storage-for.ts';
export type { ObjectStore } from './object-store.ts';
export { isS3Url, parseS3Url, s3ConnectionFromEnv } from './s3-location.ts';
export type { S3ConnectionOptions, S3Location } from './s3-location.ts';
export { S3ObjectStore } from './s3-object-store.ts';
export { RESERVED_MARKER, S3CheckpointStorage } from './s3-storage.ts';
export type { S3CheckpointStorageOptions } from './s3-storage.ts';
