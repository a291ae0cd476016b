/**
 * A job's checkpoints and savepoints as ops see them, read straight from the checkpoint root:
 * the REST API serves it for a running job and `cdcflow checkpoints` reads it offline.
 */
import { readdir } from 'node:fs/promises';
import { LocalCheckpointStorage, type StoredCheckpoint } from '../checkpoints/index.ts';

export interface CheckpointSummary {
  readonly id: number;
  readonly kind: 'checkpoint' | 'savepoint';
  /** Savepoints only. */
  readonly name?: string;
  readonly location: string;
  readonly triggeredAtMs: number;
  readonly completedAtMs: number;
  readonly bytes: number;
  /** Subtask snapshots (operator uid × subtask). */
  readonly tasks: number;
  /** The parallelism it was taken at (highest over its operators). */
  readonly parallelism: number;
}

export interface TaskDetail {
  readonly operatorUid: string;
  readonly subtaskIndex: number;
  readonly parallelism: number;
  readonly bytes: number;
  readonly keyedFiles: number;
  /** Source positions, watermarks, sink transaction handles: the operator's own JSON. */
  readonly operatorState: unknown;
}

export interface CheckpointDetail extends CheckpointSummary {
  readonly operators: readonly { readonly uid: string; readonly subtasks: readonly TaskDetail[] }[];
  readonly sharedFiles: number;
}

export interface CheckpointCatalog {
  readonly job: string;
  readonly directory: string;
  readonly checkpoints: readonly CheckpointSummary[];
  readonly savepoints: readonly CheckpointSummary[];
  readonly invalid: readonly { readonly location: string; readonly reason: string }[];
}

export async function listCheckpoints(root: string, job: string): Promise<CheckpointCatalog> {
  const storage = new LocalCheckpointStorage({ directory: root, jobName: job });
  const listing = await storage.list();
  return {
    job,
    directory: storage.fileRoot,
    checkpoints: listing.checkpoints.map(summarize),
    savepoints: listing.savepoints.map(summarize),
    invalid: listing.invalid,
  };
}

/** `ref`: a checkpoint id, a savepoint name, or a path. Throws `CheckpointNotFoundError`. */
export async function inspectCheckpoint(root: string, job: string, ref: string): Promise<CheckpointDetail> {
  const storage = new LocalCheckpointStorage({ directory: root, jobName: job });
  const stored = await storage.load(/^\d+$/.test(ref) ? Number(ref) : ref);
  const byOperator = new Map<string, TaskDetail[]>();
  for (const task of Object.values(stored.metadata.tasks)) {
    const files = (task.keyed as { files?: unknown[] } | undefined)?.files;
    const detail: TaskDetail = {
      operatorUid: task.operatorUid,
      subtaskIndex: task.subtaskIndex,
      parallelism: task.parallelism,
      bytes: task.bytes,
      keyedFiles: Array.isArray(files) ? files.length : 0,
      operatorState: task.operator ?? null,
    };
    byOperator.set(task.operatorUid, [...(byOperator.get(task.operatorUid) ?? []), detail]);
  }
  const operators = [...byOperator].map(([uid, subtasks]) => ({
    uid,
    subtasks: subtasks.sort((a, b) => a.subtaskIndex - b.subtaskIndex),
  }));
  return { ...summarize(stored), operators, sharedFiles: stored.metadata.sharedFiles.length };
}

/** Job folders under the root (whether or not they hold a checkpoint yet). */
export async function jobsUnder(root: string): Promise<string[]> {
  try {
    const entries = await readdir(root, { withFileTypes: true });
    return entries
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

function summarize(stored: StoredCheckpoint): CheckpointSummary {
  const { metadata } = stored;
  const tasks = Object.values(metadata.tasks);
  return {
    id: metadata.checkpointId,
    kind: metadata.kind,
    ...(metadata.savepointName === undefined ? {} : { name: metadata.savepointName }),
    location: stored.location,
    triggeredAtMs: metadata.triggeredAtMs,
    completedAtMs: metadata.completedAtMs,
    bytes: tasks.reduce((sum, t) => sum + t.bytes, 0),
    tasks: tasks.length,
    parallelism: Math.max(0, ...tasks.map((t) => t.parallelism)),
  };
}
