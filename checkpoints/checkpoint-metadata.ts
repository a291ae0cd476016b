import { CheckpointError, CheckpointFormatError } from './errors.ts';
import { assertSafeRelativePath, referencedFiles } from './state-files.ts';

/** The only metadata format this build writes and reads. Bump it with a migration, never silently. */
export const METADATA_FORMAT_VERSION = 1;

export type CheckpointKind = 'checkpoint' | 'savepoint';

/**
 * What file paths in `sharedFiles` (and inside keyed state handles) are relative to:
 * `job-directory` for checkpoints (files live in the job's `shared/` folder, shared between
 * incremental checkpoints); `metadata-directory` for savepoints, which carry copies of their files
 * so the savepoint folder can be moved or outlive retention.
 */
export type FileBase = 'job-directory' | 'metadata-directory';

/**
 * What a task stores besides its keyed state, as JSON. It sits in `TaskSnapshot.operator` (the
 * field name is the `_metadata` format every checkpoint so far was written in).
 */
export interface TaskState {
  /** The operator's own snapshot (sink transaction handles, buffers); opaque here. */
  readonly operator?: unknown;
  /** A source's next read position per split; `position` is opaque (a Kafka offset as a decimal string). */
  readonly source?: {
    readonly positions: readonly { readonly split: string; readonly position: string }[];
    /** Upstream watermarks an exchange carried, per split and origin (infinities as strings). */
    readonly carriedWatermarks?: readonly {
      readonly split: string;
      readonly origin: string;
      readonly watermark: number | '-Infinity' | 'Infinity';
    }[];
  };
  /** The task's watermark at the barrier; absent while it had none. */
  readonly watermark?: number;
}

/**
 * One subtask's contribution to a checkpoint: what its task loop acknowledges, what the
 * coordinator collects, what `_metadata` stores and what a restore reads — the same shape throughout.
 */
export interface TaskSnapshot {
  readonly operatorUid: string;
  readonly subtaskIndex: number;
  readonly parallelism: number;
  /** Keyed state handle from the state backend (opaque here, but its `files[].path` are tracked). */
  readonly keyed?: unknown;
  readonly operator?: TaskState;
  /** Bytes this snapshot wrote, for the checkpoint size metric. */
  readonly bytes: number;
}

/** Contents of a `_metadata` file. Self-describing: a reader needs nothing else to interpret it. */
export interface CheckpointMetadata {
  readonly formatVersion: typeof METADATA_FORMAT_VERSION;
  readonly jobName: string;
  readonly checkpointId: number;
  readonly kind: CheckpointKind;
  /** Set on savepoints only. */
  readonly savepointName?: string;
  readonly triggeredAtMs: number;
  readonly completedAtMs: number;
  readonly fileBase: FileBase;
  /** Keyed by task id `${operatorUid}#${subtaskIndex}`. */
  readonly tasks: Readonly<Record<string, TaskSnapshot>>;
  /** Every state file the tasks reference, sorted; retention keeps exactly these alive. */
  readonly sharedFiles: readonly string[];
}

/** The task id the coordinator expects for a subtask: `${operatorUid}#${subtaskIndex}`. */
export function taskIdOf(operatorUid: string, subtaskIndex: number): string {
  return `${operatorUid}#${subtaskIndex}`;
}

/** Sorted, de-duplicated paths of every file referenced by the tasks' keyed state handles. */
export function collectSharedFiles(tasks: Readonly<Record<string, TaskSnapshot>>): string[] {
  const all = new Set<string>();
  for (const task of Object.values(tasks)) {
    for (const path of referencedFiles(task.keyed)) all.add(path);
  }
  return [...all].sort();
}

/** Total bytes written by the tasks of one checkpoint. */
export function totalBytes(tasks: Readonly<Record<string, TaskSnapshot>>): number {
  return Object.values(tasks).reduce((sum, task) => sum + task.bytes, 0);
}

export function serializeMetadata(metadata: CheckpointMetadata): string {
  return `${JSON.stringify(metadata, null, 2)}\n`;
}

/** Parses and validates the text of a `_metadata` file; `location` only makes errors actionable. */
export function parseMetadata(text: string, location: string): CheckpointMetadata {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new CheckpointFormatError(location, 'not valid JSON (truncated or corrupt file?)', { cause });
  }
  return validateMetadata(raw, location);
}

/** Checks an untrusted value against the format; returns it typed or throws `CheckpointFormatError`. */
export function validateMetadata(raw: unknown, location: string): CheckpointMetadata {
  const fail = (message: string): never => {
    throw new CheckpointFormatError(location, message);
  };
  if (!isRecord(raw)) return fail('expected a JSON object');
  checkFormatVersion(raw['formatVersion'], fail);
  const jobName = requireString(raw, 'jobName', fail);
  const checkpointId = requireNonNegativeInt(raw, 'checkpointId', fail);
  const kind = raw['kind'];
  if (kind !== 'checkpoint' && kind !== 'savepoint')
    return fail(`"kind" must be "checkpoint" or "savepoint", got ${JSON.stringify(kind)}`);
  const fileBase = raw['fileBase'];
  if (fileBase !== 'job-directory' && fileBase !== 'metadata-directory') {
    return fail(`"fileBase" must be "job-directory" or "metadata-directory", got ${JSON.stringify(fileBase)}`);
  }
  const savepointName = raw['savepointName'];
  if (savepointName !== undefined && typeof savepointName !== 'string') return fail('"savepointName" must be a string');
  const tasks = validateTasks(raw['tasks'], fail);
  const sharedFiles = validateSharedFiles(raw['sharedFiles'], tasks, fail);
  return {
    formatVersion: METADATA_FORMAT_VERSION,
    jobName,
    checkpointId,
    kind,
    ...(savepointName === undefined ? {} : { savepointName }),
    triggeredAtMs: requireNonNegativeInt(raw, 'triggeredAtMs', fail),
    completedAtMs: requireNonNegativeInt(raw, 'completedAtMs', fail),
    fileBase,
    tasks,
    sharedFiles,
  };
}

type Fail = (message: string) => never;

function checkFormatVersion(version: unknown, fail: Fail): void {
  if (version === METADATA_FORMAT_VERSION) return;
  if (typeof version === 'number' && version > METADATA_FORMAT_VERSION) {
    fail(
      `format version ${version} is newer than this cdcflow understands (max ${METADATA_FORMAT_VERSION}); ` +
        'upgrade cdcflow to restore it, or restore from an older checkpoint/savepoint',
    );
  }
  fail(
    `unsupported format version ${JSON.stringify(version)} (this cdcflow reads version ${METADATA_FORMAT_VERSION}); ` +
      'the file is corrupt or was not written by cdcflow — restore from another checkpoint/savepoint',
  );
}

function validateTasks(raw: unknown, fail: Fail): Record<string, TaskSnapshot> {
  if (!isRecord(raw)) return fail('"tasks" must be an object keyed by task id');
  const tasks: Record<string, TaskSnapshot> = {};
  for (const [taskId, value] of Object.entries(raw)) {
    tasks[taskId] = validateTaskSnapshot(taskId, value, fail);
  }
  return tasks;
}

/** Validates one task snapshot; also used by the coordinator on every acknowledgement. */
export function validateTaskSnapshot(taskId: string, raw: unknown, fail: Fail): TaskSnapshot {
  const where = `task "${taskId}"`;
  const failTask: Fail = (message) => fail(`${where}: ${message}`);
  if (!isRecord(raw)) return failTask('snapshot must be an object');
  const operatorUid = requireString(raw, 'operatorUid', failTask);
  const subtaskIndex = requireNonNegativeInt(raw, 'subtaskIndex', failTask);
  const parallelism = requireNonNegativeInt(raw, 'parallelism', failTask);
  if (parallelism < 1 || subtaskIndex >= parallelism)
    failTask(`subtaskIndex ${subtaskIndex} is outside parallelism ${parallelism}`);
  if (taskIdOf(operatorUid, subtaskIndex) !== taskId)
    failTask(`id must be "${taskIdOf(operatorUid, subtaskIndex)}" (operatorUid#subtaskIndex)`);
  const bytes = requireNonNegativeInt(raw, 'bytes', failTask);
  return {
    operatorUid,
    subtaskIndex,
    parallelism,
    ...('keyed' in raw && raw['keyed'] !== undefined ? { keyed: raw['keyed'] } : {}),
    ...('operator' in raw && raw['operator'] !== undefined
      ? { operator: validateTaskState(raw['operator'], failTask) }
      : {}),
    bytes,
  };
}

/** Checks the fields of a task's state the runtime reads back; the operator's own snapshot stays opaque. */
function validateTaskState(raw: unknown, fail: Fail): TaskState {
  if (!isRecord(raw)) return fail('"operator" must be an object');
  const watermark = raw['watermark'];
  if (watermark !== undefined && typeof watermark !== 'number')
    fail(`"operator.watermark" must be a number, got ${JSON.stringify(watermark)}`);
  const source = raw['source'];
  if (source !== undefined) {
    const positions = isRecord(source) ? source['positions'] : undefined;
    const valid =
      Array.isArray(positions) &&
      positions.every((p) => isRecord(p) && typeof p['split'] === 'string' && typeof p['position'] === 'string');
    if (!valid) fail('"operator.source.positions" must be an array of { split, position } strings');
    const carried = isRecord(source) ? source['carriedWatermarks'] : undefined;
    const validCarried =
      carried === undefined ||
      (Array.isArray(carried) &&
        carried.every(
          (c) =>
            isRecord(c) &&
            typeof c['split'] === 'string' &&
            typeof c['origin'] === 'string' &&
            (typeof c['watermark'] === 'number' || c['watermark'] === '-Infinity' || c['watermark'] === 'Infinity'),
        ));
    if (!validCarried)
      fail('"operator.source.carriedWatermarks" must be an array of { split, origin, watermark } entries');
  }
  return raw as TaskState;
}

function validateSharedFiles(raw: unknown, tasks: Record<string, TaskSnapshot>, fail: Fail): string[] {
  if (!Array.isArray(raw) || !raw.every((p): p is string => typeof p === 'string')) {
    return fail('"sharedFiles" must be an array of relative paths');
  }
  for (const path of raw) assertSafeRelativePath(path, fail);
  const listed = new Set(raw);
  // A handle path missing from sharedFiles would be invisible to retention and could be deleted
  // while still needed, so the inconsistency is rejected rather than repaired.
  const missing = collectSharedFiles(tasks).filter((p) => !listed.has(p));
  if (missing.length > 0)
    fail(`"sharedFiles" misses paths referenced by state handles: ${missing.slice(0, 5).join(', ')}`);
  return [...raw];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function requireString(raw: Record<string, unknown>, key: string, fail: Fail): string {
  const value = raw[key];
  if (typeof value !== 'string' || value.length === 0) fail(`"${key}" must be a non-empty string`);
  return value as string;
}

function requireNonNegativeInt(raw: Record<string, unknown>, key: string, fail: Fail): number {
  const value = raw[key];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    fail(`"${key}" must be a non-negative integer, got ${JSON.stringify(value)}`);
  }
  return value as number;
}

/** A storage refuses to write metadata of another job, kind or file base than the call is for. */
export function assertOwnMetadata(
  metadata: CheckpointMetadata,
  jobName: string,
  kind: CheckpointMetadata['kind'],
  fileBase: CheckpointMetadata['fileBase'],
): void {
  validateMetadata(metadata, `(about to write ${kind} ${metadata.checkpointId})`);
  if (metadata.jobName !== jobName || metadata.kind !== kind || metadata.fileBase !== fileBase) {
    throw new CheckpointError(
      `storage for job "${jobName}" was handed a ${metadata.kind} of job "${metadata.jobName}" with fileBase ` +
        `${metadata.fileBase}; expected a ${kind} with fileBase ${fileBase} (a cdcflow bug; please report it)`,
    );
  }
}
