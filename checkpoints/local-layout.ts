/**
 * On-disk layout of one job's checkpoint storage:
 *
 *   <dir>/<jobName>/chk-<id>/_metadata            completed checkpoint (dir without it: incomplete)
 *   <dir>/<jobName>/shared/...                    state files, shared between incremental checkpoints
 *   <dir>/<jobName>/savepoints/<name>/_metadata   self-contained savepoint (+ copies of its files)
 */
export const METADATA_FILE = '_metadata';
export const SHARED_DIR = 'shared';
export const SAVEPOINTS_DIR = 'savepoints';

const CHECKPOINT_DIR = /^chk-(\d+)$/;

export function checkpointDirName(checkpointId: number): string {
  return `chk-${checkpointId}`;
}

/** The id of a `chk-<id>` directory name, or undefined for anything else. */
export function parseCheckpointDirName(name: string): number | undefined {
  const match = CHECKPOINT_DIR.exec(name);
  if (match === null) return undefined;
  const id = Number(match[1]);
  return Number.isSafeInteger(id) ? id : undefined;
}
