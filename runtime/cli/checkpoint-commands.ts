/** `cdcflow checkpoints list|inspect`: read straight from the checkpoint root, running job or not. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { inspectCheckpoint, listCheckpoints } from '../checkpoint-catalog.ts';
import type { CliContext } from './cli-context.ts';
import { CliError, NOT_RUNNING } from './cli-error.ts';
import { ago, bytes, table } from './format.ts';

function assertKnown(ctx: CliContext, job: string): void {
  if (!existsSync(join(ctx.root, job)))
    throw new CliError(
      `no job '${job}' under the checkpoint root ${ctx.root} (see cdcflow list; --checkpoint-root or CDCFLOW_CHECKPOINT_DIR pick another root)`,
      NOT_RUNNING,
    );
}

export async function listJobCheckpoints(ctx: CliContext, job: string): Promise<void> {
  assertKnown(ctx, job);
  const catalog = await listCheckpoints(ctx.root, job);
  const all = [...catalog.checkpoints, ...catalog.savepoints].sort((a, b) => a.id - b.id);
  ctx.output(catalog, () => [
    `${job}: ${catalog.checkpoints.length} checkpoints, ${catalog.savepoints.length} savepoints in ${catalog.directory}`,
    ...(all.length === 0
      ? []
      : table(
          ['ID', 'KIND', 'NAME', 'COMPLETED', 'SIZE', 'TASKS', 'PARALLELISM'],
          all.map((c) => [
            String(c.id),
            c.kind,
            c.name ?? '-',
            ago(c.completedAtMs),
            bytes(c.bytes),
            String(c.tasks),
            String(c.parallelism),
          ]),
        )),
    // A reserved id whose checkpoint never completed (aborted, or the job stopped first) is normal.
    ...catalog.invalid.map((i) => `incomplete, never used for restore: ${i.location} (${i.reason})`),
  ]);
}

export async function inspectJobCheckpoint(ctx: CliContext, job: string, ref: string): Promise<void> {
  assertKnown(ctx, job);
  let detail;
  try {
    detail = await inspectCheckpoint(ctx.root, job, ref);
  } catch (error) {
    throw new CliError(`${job}: ${(error as Error).message}`);
  }
  const short = (value: unknown) => {
    const text = JSON.stringify(value);
    return text.length > 160 ? `${text.slice(0, 157)}...` : text;
  };
  ctx.output(detail, () => [
    `${detail.kind} ${detail.id}${detail.name === undefined ? '' : ` "${detail.name}"`} of ${job}`,
    `location     ${detail.location}`,
    `completed    ${ago(detail.completedAtMs)} (took ${detail.completedAtMs - detail.triggeredAtMs} ms)`,
    `size         ${bytes(detail.bytes)} in ${detail.tasks} subtask snapshots, ${detail.sharedFiles} state files; parallelism ${detail.parallelism}`,
    ...detail.operators.flatMap((o) => [
      `operator ${o.uid}`,
      ...o.subtasks.map(
        (t) =>
          `  subtask ${t.subtaskIndex}/${t.parallelism}  ${bytes(t.bytes)}, ${t.keyedFiles} keyed-state files${t.operatorState === null ? '' : `, state ${short(t.operatorState)}`}`,
      ),
    ]),
  ]);
}
