/**
 * Runs test/support/parallel-job.ts in child processes at a chosen parallelism and reads back
 * what it produced: the committed sink output (JSON lines) and the final upsert table as stored
 * in checkpoint storage. Shared by the unit, integration and chaos tests of parallel execution.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TableChange } from '../../runtime/index.ts';
import type { RevenueRow } from '../../jobs/revenue-windows.ts';
import { loadUpsertState, type LoadedUpsertState } from './checkpoint-state.ts';
import { JobProcess } from './job-process.ts';
import { readJsonLines } from './json-lines-sink.ts';
import { PARALLEL_JOB_FILE, type ParallelJobConfig } from './parallel-job.ts';

export interface RunDirs {
  readonly root: string;
  readonly checkpointDir: string;
  readonly stateDir: string;
  readonly outDir: string;
}

export function runDirs(root: string): RunDirs {
  return { root, checkpointDir: join(root, 'checkpoints'), stateDir: join(root, 'state'), outDir: join(root, 'out') };
}

export class RunFolders {
  private readonly made: string[] = [];

  make(prefix = 'cdcflow-parallel-'): RunDirs {
    const root = mkdtempSync(join(tmpdir(), prefix));
    this.made.push(root);
    return runDirs(root);
  }

  /** A new folder holding a copy of `from`'s checkpoints (its local state and output stay behind). */
  copyCheckpoints(from: RunDirs): RunDirs {
    const to = this.make();
    cpSync(from.checkpointDir, to.checkpointDir, { recursive: true });
    return to;
  }

  cleanup(): void {
    for (const dir of this.made.splice(0)) rmSync(dir, { recursive: true, force: true });
  }
}

export type JobSpec = Omit<ParallelJobConfig, 'checkpointDir' | 'stateDir' | 'outDir'>;

export function startParallelJob(
  spec: JobSpec,
  dirs: RunDirs,
  parallelism: number,
  env: Readonly<Record<string, string>> = {},
): JobProcess {
  const config: ParallelJobConfig = {
    ...spec,
    checkpointDir: dirs.checkpointDir,
    stateDir: dirs.stateDir,
    outDir: dirs.outDir,
  };
  const echo = process.env['CDCFLOW_TEST_VERBOSE'] === '1' ? (line: string) => console.log(`  | ${line}`) : undefined;
  return JobProcess.start({
    file: PARALLEL_JOB_FILE,
    env: {
      ...env,
      CDCFLOW_PARALLELISM: String(parallelism),
      CDCFLOW_TEST_JOB: JSON.stringify(config),
      KAFKAJS_NO_PARTITIONER_WARNING: '1',
    },
    ...(echo === undefined ? {} : { onLine: echo }),
  });
}

/** Runs a bounded job to its end; fails with the job's output unless it exits 0. */
export async function runToEnd(
  spec: JobSpec,
  dirs: RunDirs,
  parallelism: number,
  timeoutMs = 120_000,
  env: Readonly<Record<string, string>> = {},
): Promise<JobProcess> {
  const job = startParallelJob(spec, dirs, parallelism, env);
  const exit = await job.waitForExit(timeoutMs);
  if (exit.code !== 0)
    throw new Error(`parallel job at parallelism ${parallelism} failed (${JSON.stringify(exit)})\n${job.tail(60)}`);
  return job;
}

/** The table the committed upsert changelog describes: per key the change latest in commit order, deletes removed. */
export function committedTable(dirs: RunDirs): Map<number, unknown> {
  const latest = new Map<number, TableChange<number, unknown>>();
  for (const change of readJsonLines<TableChange<number, unknown>>(dirs.outDir, 'changes')) {
    const held = latest.get(change.key);
    if (held === undefined || held.position <= change.position) latest.set(change.key, change);
  }
  const table = new Map<number, unknown>();
  for (const [key, change] of latest) if (change.kind === 'upsert') table.set(key, change.row);
  return table;
}

/** Final window results (highest updateCount per window and status), sorted, and the late events' LSNs. */
export function windowResults(dirs: RunDirs): {
  windows: Omit<RevenueRow, 'firing' | 'updateCount'>[];
  late: number[];
} {
  const final = new Map<string, RevenueRow>();
  for (const row of readJsonLines<RevenueRow>(dirs.outDir, 'windows')) {
    const id = `${row.windowStart}|${row.status}`;
    if ((final.get(id)?.updateCount ?? -1) < row.updateCount) final.set(id, row);
  }
  const windows = [...final.values()]
    .map(({ windowStart, windowEnd, status, sum, count }) => ({ windowStart, windowEnd, status, sum, count }))
    .sort((a, b) => a.windowStart - b.windowStart || a.status.localeCompare(b.status));
  const late = readJsonLines<{ source: { lsn: number } }>(dirs.outDir, 'late')
    .map((e) => e.source.lsn)
    .sort((a, b) => a - b);
  return { windows, late };
}

/** The projection's upsert table in the job's latest checkpoint or savepoint. */
export function storedProjection(dirs: RunDirs): Promise<LoadedUpsertState<unknown>> {
  return loadUpsertState({
    checkpointDir: dirs.checkpointDir,
    jobName: 'parallel-projection',
    operatorUid: 'orders-upsert',
  });
}
