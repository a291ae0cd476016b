/**
 * Job files as child processes, for chaos tests: start one with tsx, wait for the progress lines
 * it prints, SIGKILL it, start it again. `killRepeatedly` runs the whole kill/restart loop with
 * seeded random kill moments, so a failing run can be replayed with the same seed.
 *
 * The child is `node --import tsx <file>` itself (not the tsx CLI, which would run the job in a
 * grandchild that a SIGKILL to its parent leaves alive), so the pid we kill is the job's.
 *
 * With CDCFLOW_CHAOS_REPORT_DIR set, a start that hangs (no expected line in time, no exit in
 * time) writes a Node diagnostic report there before it is killed: JS and native stacks of the
 * main thread and of every worker thread, for hangs that do not reproduce on demand.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { isAbsolute, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Prng } from '../../scripts/workload/prng.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

export interface JobProcessOptions {
  /** The job file, relative to the repository root or absolute. */
  readonly file: string;
  /** Added to this process's environment. */
  readonly env?: Readonly<Record<string, string>>;
  /** Command-line arguments after the file. @default none */
  readonly args?: readonly string[];
  /** Sees every output line (stdout and stderr) as it arrives. @default ignore */
  readonly onLine?: (line: string) => void;
}

export interface JobExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

interface Waiter {
  readonly pattern: RegExp;
  resolve(match: RegExpMatchArray): void;
  reject(error: Error): void;
}

/** One run of a job file in a child process; keeps every line it printed. */
export class JobProcess {
  readonly lines: string[] = [];
  readonly exited: Promise<JobExit>;
  private exit: JobExit | undefined;
  private readonly waiters = new Set<Waiter>();

  private constructor(
    private readonly child: ChildProcess,
    private readonly file: string,
    onLine: ((line: string) => void) | undefined,
  ) {
    for (const stream of [child.stdout, child.stderr]) {
      if (stream === null) continue;
      createInterface({ input: stream }).on('line', (line) => {
        this.lines.push(line);
        onLine?.(line);
        for (const waiter of this.waiters) {
          const match = waiter.pattern.exec(line);
          if (match !== null) waiter.resolve(match);
        }
      });
    }
    this.exited = new Promise<JobExit>((resolve) => {
      // 'close' comes after 'exit' and after the output pipes closed: every line has been read.
      child.once('close', (code, signal) => {
        const exit: JobExit = (this.exit = { code, signal });
        for (const waiter of this.waiters)
          waiter.reject(
            new Error(
              `${this.describe()} exited (${describeExit(exit)}) before printing ${String(waiter.pattern)}\n${this.tail()}`,
            ),
          );
        resolve(exit);
      });
    });
  }

  static start(options: JobProcessOptions): JobProcess {
    const file = isAbsolute(options.file) ? options.file : join(repoRoot, options.file);
    // Through NODE_OPTIONS, not argv: worker threads inherit execArgv, and reject report flags there.
    const reportDir = process.env['CDCFLOW_CHAOS_REPORT_DIR'];
    const report =
      reportDir === undefined
        ? {}
        : {
            NODE_OPTIONS:
              `${process.env['NODE_OPTIONS'] ?? ''} --report-on-signal --report-signal=SIGUSR2 --report-directory=${reportDir}`.trim(),
          };
    const child = spawn(process.execPath, ['--import', 'tsx', file, ...(options.args ?? [])], {
      cwd: repoRoot,
      env: { ...process.env, ...options.env, ...report },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new JobProcess(child, options.file, options.onLine);
  }

  get pid(): number {
    return this.child.pid as number;
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  /**
   * The first line (already printed, or to come) matching `pattern`, ignoring the first
   * `fromLine` lines (e.g. `lines.length` at some moment: only what comes after it); rejects on
   * exit or timeout.
   */
  waitFor(pattern: RegExp, timeoutMs: number, fromLine = 0): Promise<RegExpMatchArray> {
    for (const line of this.lines.slice(fromLine)) {
      const match = pattern.exec(line);
      if (match !== null) return Promise.resolve(match);
    }
    if (this.exit !== undefined)
      return Promise.reject(
        new Error(
          `${this.describe()} has exited (${describeExit(this.exit)}) without printing ${String(pattern)}\n${this.tail()}`,
        ),
      );
    return new Promise<RegExpMatchArray>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          settle(() =>
            reject(
              new Error(`${this.describe()} printed no ${String(pattern)} within ${timeoutMs} ms\n${this.tail()}`),
            ),
          ),
        timeoutMs,
      );
      const settle = (finish: () => void) => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        finish();
      };
      const waiter: Waiter = {
        pattern,
        resolve: (m) => settle(() => resolve(m)),
        reject: (e) => settle(() => reject(e)),
      };
      this.waiters.add(waiter);
    });
  }

  /** With CDCFLOW_CHAOS_REPORT_DIR: asks the running process for a diagnostic report and gives it 5 s to write it. */
  async report(): Promise<void> {
    if (this.exit !== undefined || process.env['CDCFLOW_CHAOS_REPORT_DIR'] === undefined) return;
    process.kill(this.pid, 'SIGUSR2');
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    this.lines.push(`(diagnostic report of pid ${this.pid} requested into ${process.env['CDCFLOW_CHAOS_REPORT_DIR']})`);
  }

  /** SIGKILL (no chance to clean up, flush or leave the consumer group); resolves once it is gone. */
  async kill(): Promise<JobExit> {
    if (this.exit === undefined) process.kill(this.pid, 'SIGKILL');
    return this.exited;
  }

  /** Waits for the process to end by itself; kills it and rejects after `timeoutMs`. */
  async waitForExit(timeoutMs: number): Promise<JobExit> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        void this.report().then(() => this.kill());
        reject(new Error(`${this.describe()} did not finish within ${timeoutMs} ms\n${this.tail()}`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The last `count` lines, for error messages. */
  tail(count = 25): string {
    return this.lines
      .slice(-count)
      .map((line) => `  | ${line}`)
      .join('\n');
  }

  private describe(): string {
    return `${this.file} (pid ${this.pid})`;
  }
}

function describeExit(exit: JobExit | undefined): string {
  if (exit === undefined) return 'running';
  return exit.signal === null ? `code ${String(exit.code)}` : `signal ${exit.signal}`;
}

export interface KillLoopOptions {
  readonly job: JobProcessOptions;
  /** How many times the job is started and SIGKILLed. */
  readonly kills: number;
  /** Seeds which kills aim at a restore and every delay (the timing around them still varies); print it. */
  readonly seed: number;
  /** A line the job prints while it makes progress (e.g. a completed checkpoint). */
  readonly running: RegExp;
  /** A line the job prints when it starts restoring from a checkpoint. */
  readonly restoring: RegExp;
  /** Delay after the first `running` line of a start before the kill. @default [300, 2500] */
  readonly runningDelayMs?: readonly [number, number];
  /** Share of kills (after the first) aimed at the restore instead. @default 0.3 */
  readonly restoreKillShare?: number;
  /** Delay after the `restoring` line before a restore kill. @default [0, 400] */
  readonly restoreDelayMs?: readonly [number, number];
  /** Longest wait for a start to reach the line a kill waits for. @default 90_000 */
  readonly startTimeoutMs?: number;
  /** Runs before each start (e.g. to feed more input while the job runs). */
  readonly beforeStart?: (start: number) => void;
  /** Runs after each kill, before the next start (e.g. to check what the killed run left behind). */
  readonly afterKill?: (kill: number) => Promise<void>;
  /** One line per kill. @default ignore */
  readonly log?: (line: string) => void;
}

export interface KillLoopReport {
  readonly kills: number;
  /** Kills that hit a start between its restore line and its first progress line. */
  readonly killsDuringRestore: number;
  /** Starts that restored from a checkpoint (printed the `restoring` line). */
  readonly restores: number;
  readonly processes: readonly JobProcess[];
}

/**
 * Starts the job `kills` times and SIGKILLs every start at a random moment: most some time after
 * it reports progress, some right after it begins restoring. A start that exits by itself fails
 * the loop (an unbounded job must only end when killed).
 */
export async function killRepeatedly(o: KillLoopOptions): Promise<KillLoopReport> {
  const prng = new Prng(o.seed);
  const pick = ([lo, hi]: readonly [number, number]) => prng.range(lo, hi);
  const timeout = o.startTimeoutMs ?? 90_000;
  const processes: JobProcess[] = [];
  let killsDuringRestore = 0;
  for (let start = 0; start < o.kills; start++) {
    o.beforeStart?.(start);
    const job = JobProcess.start(o.job);
    processes.push(job);
    const aimAtRestore = start > 0 && prng.chance(o.restoreKillShare ?? 0.3);
    const startedAt = Date.now();
    const delay = aimAtRestore ? pick(o.restoreDelayMs ?? [0, 400]) : pick(o.runningDelayMs ?? [300, 2500]);
    try {
      await job.waitFor(aimAtRestore ? new RegExp(`${o.restoring.source}|${o.running.source}`) : o.running, timeout);
      await new Promise((resolve) => setTimeout(resolve, delay));
    } catch (error) {
      await job.report();
      await job.kill(); // never leave a job running behind a failed test
      throw error;
    }
    if (!job.running)
      throw new Error(`start ${start + 1} (pid ${job.pid}) exited by itself before its kill\n${job.tail()}`);
    const progressed = job.lines.some((line) => o.running.test(line));
    await job.kill();
    if (aimAtRestore && !progressed) killsDuringRestore += 1;
    const moment = aimAtRestore && !progressed ? 'during restore' : 'while running';
    o.log?.(
      `kill ${start + 1}/${o.kills}: pid ${job.pid} ${moment}, ${Date.now() - startedAt} ms after start (+${delay} ms)`,
    );
    await o.afterKill?.(start + 1);
  }
  const restores = processes.filter((p) => p.lines.some((line) => o.restoring.test(line))).length;
  return { kills: o.kills, killsDuringRestore, restores, processes };
}
