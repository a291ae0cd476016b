/**
 * The highest parallelism any attempt of a job ever started at, kept in the job's checkpoint
 * folder (`<dir>/<jobName>/parallelism.json`). It is written, durably, before any subtask opens:
 * a run that dies before its first checkpoint completed still leaves this trace, and it is the
 * only one — its subtasks' pending transactions (Postgres gids, Kafka transactional ids, staged
 * Redis batches) are in no checkpoint. A later run at a lower parallelism reads it to know which
 * subtask indices may have left such transactions behind (`retiredSubtasks`).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mkdirDurable, writeFileDurably } from '../state/durable-fs.ts';

export const PARALLELISM_FILE = 'parallelism.json';

/** Records that an attempt starts at `parallelism`; returns the highest parallelism ever recorded (this one included). */
export async function recordParallelism(jobRoot: string, parallelism: number): Promise<number> {
  const before = await highestParallelism(jobRoot);
  if (before >= parallelism) return before;
  await mkdirDurable(jobRoot);
  await writeFileDurably(join(jobRoot, PARALLELISM_FILE), `${JSON.stringify({ highestParallelism: parallelism })}\n`);
  return parallelism;
}

/** The highest recorded parallelism, 1 when nothing (or nothing readable) is recorded. */
export async function highestParallelism(jobRoot: string): Promise<number> {
  const text = await readFile(join(jobRoot, PARALLELISM_FILE), 'utf8').catch(() => undefined);
  if (text === undefined) return 1;
  try {
    const value = (JSON.parse(text) as { highestParallelism?: unknown }).highestParallelism;
    return typeof value === 'number' && Number.isSafeInteger(value) && value >= 1 ? value : 1;
  } catch {
    return 1;
  }
}

/**
 * The subtask indices, of runs up to `highest` subtasks, that no longer exist at `parallelism` and
 * that subtask `subtaskIndex` cleans up after: j in [parallelism, highest) with j % parallelism == subtaskIndex.
 */
export function retiredSubtasks(subtaskIndex: number, parallelism: number, highest: number): number[] {
  const retired: number[] = [];
  for (let j = parallelism; j < highest; j++) if (j % parallelism === subtaskIndex) retired.push(j);
  return retired;
}
