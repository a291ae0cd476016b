import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Clock } from '../../../checkpoints/clock.ts';
import { collectSharedFiles, METADATA_FORMAT_VERSION } from '../../../checkpoints/checkpoint-metadata.ts';
import type { CheckpointMetadata, TaskSnapshot, TaskState } from '../../../checkpoints/checkpoint-metadata.ts';

/** Manual clock: time moves only in `advance`, which fires due timers in order. */
export class FakeClock implements Clock {
  private time = 0;
  private seq = 0;
  private timers: { at: number; seq: number; fn: () => void }[] = [];

  now(): number {
    return this.time;
  }

  schedule(ms: number, fn: () => void): () => void {
    const timer = { at: this.time + ms, seq: this.seq++, fn };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((t) => t !== timer);
    };
  }

  advance(ms: number): void {
    const target = this.time + ms;
    for (let i = 0; i < 10_000; i++) {
      const due = this.timers.filter((t) => t.at <= target).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (due === undefined) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.time = due.at;
      due.fn();
    }
    this.time = target;
  }

  get pendingTimers(): number {
    return this.timers.length;
  }
}

/** Polls `predicate` across event-loop turns (real fs work runs in between); bounded, never timed. */
export async function waitFor(predicate: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 5_000; i++) {
    if (predicate()) return;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  throw new Error(`gave up waiting for ${what}`);
}

export async function makeTempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'cdcflow-chk-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export async function writeStateFile(root: string, path: string, contents = path): Promise<void> {
  await mkdir(dirname(join(root, path)), { recursive: true });
  await writeFile(join(root, path), contents);
}

/** A snapshot whose keyed handle references `files` (relative to the job directory). */
export function snapshot(
  taskId: string,
  checkpointId: number,
  files: readonly string[] = [],
  operator?: TaskState,
): TaskSnapshot {
  const [operatorUid = '', index = '0'] = taskId.split('#');
  return {
    operatorUid,
    subtaskIndex: Number(index),
    parallelism: Number(index) + 1,
    keyed: { files: files.map((path) => ({ path, kind: 'full', keyGroups: [0, 127], bytes: 10, checkpointId })) },
    ...(operator === undefined ? {} : { operator }),
    bytes: files.length * 10,
  };
}

export function metadataFor(
  jobName: string,
  checkpointId: number,
  tasks: Record<string, TaskSnapshot>,
  kind: CheckpointMetadata['kind'] = 'checkpoint',
): CheckpointMetadata {
  return {
    formatVersion: METADATA_FORMAT_VERSION,
    jobName,
    checkpointId,
    kind,
    triggeredAtMs: checkpointId * 1000,
    completedAtMs: checkpointId * 1000 + 5,
    fileBase: 'job-directory',
    tasks,
    sharedFiles: collectSharedFiles(tasks),
  };
}
