/**
 * The SIGKILL loop every sink chaos test runs (test/chaos/*-sink-sigkill.test.ts): a projection
 * job (Debezium orders → keyBy id → upsert → the sink under test) in a child process, the
 * reference workload written at a steady rate while it runs, and the job SIGKILLed again and again:
 *  - half the kills at random moments (mid-batch, mid-checkpoint, mid-restore);
 *  - half 0–150 ms after the sink printed its pre-commit line (PREPARE, staged batch, flushed
 *    Kafka transaction): between the pre-commit at the barrier and the commit after the
 *    checkpoint completed, before or after the checkpoint became durable; some of those aimed at
 *    the sink's recovery of the transactions the restored checkpoint recorded instead.
 * Each start restores the latest checkpoint. A last bounded run reads to the end, takes the final
 * savepoint and must exit 0; then the test compares the sink with its oracle.
 *
 * With `parallelism` the kill loop runs the job as that many subtasks (CDCFLOW_PARALLELISM), and
 * `finalParallelism` makes the last bounded run restore at another one (a rescale).
 * `abandonedParallelism` adds one start at that parallelism between the two, SIGKILLed as soon as
 * each of its subtasks printed a pre-commit: a rescale that dies at (or just after) its first checkpoint, so
 * the final run restores either that checkpoint or the kill loop's and meets transactions of
 * subtasks that exist in neither the final run nor (in the second case) its checkpoint.
 *
 * CDCFLOW_CHAOS_KILLS (default 10; `npm run chaos` sets 30) and CDCFLOW_CHAOS_SEED (kill moments;
 * printed) replay a run; CDCFLOW_CHAOS_VERBOSE=1 echoes the job's output; CDCFLOW_CHAOS_REPORT_DIR
 * collects a diagnostic report of a start that hangs (job-process.ts). Runs at parallelism > 1
 * take CDCFLOW_CHAOS_PARALLEL_KILLS (default 4, or CDCFLOW_CHAOS_KILLS when that is set).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import type { WorkloadOptions } from '../../scripts/workload/workload-options.ts';
import { testEndpoints, uniqueName } from './endpoints.ts';
import { JobProcess, killRepeatedly, type JobProcessOptions, type KillLoopReport } from './job-process.ts';
import { WorkloadFeeder } from './workload-feeder.ts';

/** The broker's floor by default (group.min.session.timeout.ms); bounds each restart's wait for the killed member. */
const SESSION_TIMEOUT_MS = 6_000;
/** How long a start in the kill loop lasts, roughly: the killed member's session timeout, restore, first commit, the kill delay. */
const STEADY_START_SECONDS = 8;
const RESTORING = /restoring from (checkpoint|savepoint) \d+/;

export interface ChaosSettings {
  readonly kills: number;
  readonly seed: number;
  /** Echoes a job line when CDCFLOW_CHAOS_VERBOSE=1. */
  readonly echo: ((line: string) => void) | undefined;
}

/** `parallel`: the smaller CI default of the runs at parallelism > 1 (see the file comment). */
export function chaosSettings(parallel = false): ChaosSettings {
  const verbose = process.env['CDCFLOW_CHAOS_VERBOSE'] === '1';
  const kills = process.env['CDCFLOW_CHAOS_KILLS'] ?? 10;
  return {
    kills: Math.max(
      2,
      Number(
        parallel ? (process.env['CDCFLOW_CHAOS_PARALLEL_KILLS'] ?? process.env['CDCFLOW_CHAOS_KILLS'] ?? 4) : kills,
      ),
    ),
    seed: Number(process.env['CDCFLOW_CHAOS_SEED'] ?? Math.floor(Math.random() * 1_000_000)),
    echo: verbose ? (line) => console.log(`  | ${line}`) : undefined,
  };
}

/** Unique names and a work folder for one chaos run; `cleanup` removes what it made (the folder only if the run passed). */
export class ChaosWorkspace {
  readonly brokers: string[];
  readonly topic: string;
  readonly jobName: string;
  readonly groupId: string;
  readonly workDir: string;
  readonly checkpointDir: string;
  /** Extra topics to delete at cleanup (sink output, dead letters). */
  readonly topics: string[] = [];

  constructor(readonly label: string) {
    this.brokers = testEndpoints().kafkaBrokers.split(',');
    this.topic = uniqueName(`chaos-${label}-orders`);
    this.jobName = uniqueName(`chaos-${label}`);
    this.groupId = uniqueName(`chaos-${label}-group`);
    this.workDir = mkdtempSync(join(tmpdir(), `cdcflow-chaos-${label}-`));
    this.checkpointDir = join(this.workDir, 'checkpoints');
  }

  readonly say = (line: string): void => console.log(`[chaos ${this.label}] ${line}`);

  /** What every projection job reads (see jobs/orders-projection.ts), plus `extra`. */
  jobEnv(extra: Readonly<Record<string, string>>): Record<string, string> {
    return {
      KAFKA_BROKERS: this.brokers.join(','),
      CDCFLOW_TOPIC: this.topic,
      CDCFLOW_GROUP_ID: this.groupId,
      CDCFLOW_JOB_NAME: this.jobName,
      CDCFLOW_CHECKPOINT_DIR: this.checkpointDir,
      CDCFLOW_STATE_DIR: join(this.workDir, 'state'),
      CDCFLOW_SESSION_TIMEOUT_MS: String(SESSION_TIMEOUT_MS),
      KAFKAJS_NO_PARTITIONER_WARNING: '1',
      ...extra,
    };
  }

  async cleanup(passed: boolean): Promise<void> {
    if (passed) rmSync(this.workDir, { recursive: true, force: true });
    else this.say(`checkpoints and job state kept in ${this.workDir}`);
    const admin = new Kafka({ clientId: 'chaos-cleanup', brokers: this.brokers, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [this.topic, ...(passed ? this.topics : [])] }).catch(() => undefined);
    await admin.disconnect();
  }
}

export interface SinkChaosOptions {
  /** The job file; it reads the environment `ChaosWorkspace.jobEnv` writes. */
  readonly file: string;
  /** The sink's own settings (endpoints, table, topic, prefix, ...). */
  readonly env: Readonly<Record<string, string>>;
  readonly workload: WorkloadOptions;
  readonly settings: ChaosSettings;
  /** A line the sink prints at each pre-commit (barrier). */
  readonly prepared: RegExp;
  /** A line the job prints as it makes progress (a commit, or the pre-commit where there is none). */
  readonly running: RegExp;
  /** A line the sink prints while it recovers recorded transactions on restore; some kills aim at it. */
  readonly recovering?: RegExp;
  readonly afterKill?: (kill: number) => Promise<void>;
  /** Subtasks of the job in the kill loop (CDCFLOW_PARALLELISM). @default 1 */
  readonly parallelism?: number;
  /** Subtasks of the last bounded run, which restores the kill loop's last checkpoint. @default parallelism */
  readonly finalParallelism?: number;
  /** Subtasks of one more start after the kill loop, killed at its first pre-commits (see above). @default none */
  readonly abandonedParallelism?: number;
}

export interface SinkChaosRun {
  readonly kills: number;
  readonly killsDuringRestore: number;
  /** Starts (including the final one) that restored from a checkpoint. */
  readonly restores: number;
  /** Killed processes whose last pre-commit/commit line was a pre-commit. */
  readonly killedPrepared: number;
  /** Killed processes whose last line matching `recovering` came after their restore line and before any progress. */
  readonly killedRecovering: number;
  /** The `abandonedParallelism` start, if any, and whether it got as far as a `running` line (a completed checkpoint's commit). */
  readonly abandoned?: { readonly process: JobProcess; readonly progressed: boolean };
  readonly processes: readonly JobProcess[];
  readonly final: JobProcess;
  readonly seconds: number;
  readonly written: number;
  /** Every line of every process, in process order. */
  readonly lines: readonly string[];
}

export async function runSinkChaos(ws: ChaosWorkspace, o: SinkChaosOptions): Promise<SinkChaosRun> {
  const { kills, seed, echo } = o.settings;
  const parallelism = o.parallelism ?? 1;
  const env = ws.jobEnv({ CDCFLOW_PARALLELISM: String(parallelism), ...o.env });
  const job: JobProcessOptions = { file: o.file, env, ...(echo === undefined ? {} : { onLine: echo }) };
  const feeder = new WorkloadFeeder(ws.brokers, ws.topic, o.workload);
  await feeder.open();
  // Every start gets its own slice, written at a steady rate over ~STEADY_START_SECONDS: so each
  // start has records to read (a start killed after its pre-commit line needs one), and records
  // keep arriving while it runs, so a kill finds an open transaction that holds some. Slices
  // queue, so short starts make the trickle continuous; ~10 % is left for after the loop.
  const slice = Math.ceil(((o.workload.events ?? 0) * 0.9) / kills);
  const feeding: Promise<void>[] = [];
  const beforeStart = () => void feeding.push(feeder.feedSteadily(slice, Math.max(100, slice / STEADY_START_SECONDS)));
  const common = { job, beforeStart, log: ws.say, ...(o.afterKill === undefined ? {} : { afterKill: o.afterKill }) };
  const started = Date.now();
  const reports: KillLoopReport[] = [];
  try {
    const anywhere = Math.ceil(kills / 2);
    reports.push(await killRepeatedly({ ...common, kills: anywhere, seed, running: o.running, restoring: RESTORING }));
    const recovering = o.recovering ?? RESTORING;
    reports.push(
      await killRepeatedly({
        ...common,
        kills: kills - anywhere,
        seed: seed + 1,
        running: o.prepared,
        runningDelayMs: [0, 150],
        restoring: recovering,
        restoreKillShare: o.recovering === undefined ? 0 : 0.3,
        restoreDelayMs: [0, 20],
      }),
    );
  } finally {
    feeder.hurry();
    await Promise.allSettled(feeding);
  }
  await Promise.all(feeding);
  await feeder.feedRest();
  await feeder.close();
  const abandoned =
    o.abandonedParallelism === undefined
      ? undefined
      : await runAbandoned(job, o.abandonedParallelism, o.prepared, o.running, ws.say);

  const final = JobProcess.start({
    ...job,
    env: { ...env, CDCFLOW_BOUNDED: '1', CDCFLOW_PARALLELISM: String(o.finalParallelism ?? parallelism) },
  });
  const exit = await final.waitForExit(240_000);
  if (exit.code !== 0 || exit.signal !== null)
    throw new Error(`the final bounded run failed (${JSON.stringify(exit)})\n${final.tail(40)}`);
  const seconds = (Date.now() - started) / 1000;

  const killed = [...reports.flatMap((r) => r.processes), ...(abandoned === undefined ? [] : [abandoned.process])];
  const processes = [...killed, final];
  const lastOf = (p: JobProcess, patterns: RegExp[]) => p.lines.filter((l) => patterns.some((re) => re.test(l))).at(-1);
  const killedPrepared = killed.filter((p) => {
    const last = lastOf(p, [o.prepared, o.running]);
    return last !== undefined && o.prepared.test(last) && !o.running.test(last);
  }).length;
  const killedRecovering =
    o.recovering === undefined
      ? 0
      : killed.filter(
          (p) =>
            !p.lines.some((l) => o.running.test(l) || o.prepared.test(l)) &&
            p.lines.some((l) => (o.recovering as RegExp).test(l)),
        ).length;
  return {
    kills,
    killsDuringRestore: reports.reduce((n, r) => n + r.killsDuringRestore, 0),
    restores: processes.filter((p) => p.lines.some((l) => RESTORING.test(l))).length,
    killedPrepared,
    killedRecovering,
    ...(abandoned === undefined ? {} : { abandoned }),
    processes,
    final,
    seconds,
    written: feeder.written,
    lines: processes.flatMap((p) => p.lines),
  };
}

/** One start at `parallelism`, SIGKILLed the moment it printed one pre-commit line per subtask. */
async function runAbandoned(
  job: JobProcessOptions,
  parallelism: number,
  prepared: RegExp,
  running: RegExp,
  say: (line: string) => void,
): Promise<{ process: JobProcess; progressed: boolean }> {
  const start = JobProcess.start({ ...job, env: { ...job.env, CDCFLOW_PARALLELISM: String(parallelism) } });
  const started = Date.now();
  try {
    // One pre-commit line per subtask: all of them hold a prepared transaction of the same checkpoint
    // (the next barrier waits for this one to complete), which may or may not have completed yet.
    for (let seen = 0, from = 0; seen < parallelism; seen++) {
      await start.waitFor(prepared, 90_000, from);
      from = start.lines.findIndex((line, i) => i >= from && prepared.test(line)) + 1;
    }
  } catch (error) {
    await start.report();
    throw error;
  } finally {
    await start.kill();
  }
  const progressed = start.lines.some((l) => running.test(l));
  say(
    `abandoned start at parallelism ${parallelism}: pid ${start.pid} killed at its first pre-commits, ${Date.now() - started} ms after start (${progressed ? 'a checkpoint had completed' : 'before any checkpoint completed'})`,
  );
  return { process: start, progressed };
}

/** How many lines match `pattern`, or the sum of its first group when it has one. */
export function countLines(lines: readonly string[], pattern: RegExp): number {
  return lines.reduce((n, line) => {
    const match = pattern.exec(line);
    if (match === null) return n;
    return n + (match[1] === undefined ? 1 : Number(match[1]));
  }, 0);
}
