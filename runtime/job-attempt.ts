/**
 * One attempt at running a job: restore from the chosen checkpoint, open every operator, run the
 * task loop with periodic checkpoints, and (for bounded input) take a final checkpoint so every
 * two-phase sink commits what it holds before the job reports success.
 */
import { checkReplayGate } from './lifecycle/replay-gate.ts';
import { copyFile, mkdir, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { CheckpointCoordinator, checkpointStorageFor, recordParallelism, referencedFiles, taskIdOf, type CheckpointStats, type CheckpointStorage, type StoredCheckpoint } from '../checkpoints/index.ts';
import type { FreshStart } from '../operators/operator.ts';
import { SourceOpenInterruptedError } from '../operators/sources/source.ts';
import type { JobRunner } from './execution/job-runner.ts';
import { assignRestoredState } from './execution/restore-assignment.ts';
import type { JobGraph } from './graph.ts';
import type { ResolvedOptions } from './job-options.ts';
import { CheckpointLog } from './lifecycle/checkpoint-log.ts';
import type { FinalTarget } from './lifecycle/job-control.ts';
import type { JobMetrics } from './metrics.ts';
import { createSubtaskRunner } from './subtask-runner.ts';

/** What the environment sees of a running attempt (single-thread or parallel). */
export interface AttemptHandle {
  readonly coordinator: CheckpointCoordinator;
  /** Where this attempt restored from (a folder), undefined for a fresh start. */
  readonly restoredFrom: string | undefined;
  /** Hard stop: no final checkpoint. */
  stop(): void;
  /** Graceful stop: sources stop reading, a final checkpoint (or savepoint) completes, sinks commit. */
  requestFinal(target: FinalTarget): void;
  watermarks(): unknown;
}

/** How an attempt ended without failing. */
export interface AttemptResult {
  /** The checkpoint or savepoint it ended with (bounded input or a graceful stop); undefined after a hard stop. */
  readonly final: { readonly checkpointId: number; readonly kind: 'checkpoint' | 'savepoint'; readonly savepointPath?: string } | undefined;
}

/** What a start needs to know besides the checkpoint: what it restored from, or why it starts fresh. */
export interface RestorePoint {
  readonly restored: StoredCheckpoint | undefined;
  /** Set for a fresh start (see OperatorContext.freshStart). */
  readonly freshStart: FreshStart | undefined;
}

export interface CoordinatorHooks {
  triggerBarrier(id: number): void;
  notifyComplete(id: number): void;
  notifyAborted(id: number): void;
  onFailureThresholdExceeded(reason: string): void;
  onStats?(stats: CheckpointStats): void;
}

/** The checkpoint coordinator of an attempt, with the job's metrics and log wired in. */
export function createCoordinator(options: ResolvedOptions, metrics: JobMetrics, tasks: string[], hooks: CoordinatorHooks): CheckpointCoordinator {
  const progress = CheckpointLog.everyMinute(options.logger, options.checkpointIntervalMs);
  const storage = checkpointStorageOf(options);
  return new CheckpointCoordinator({
    jobName: options.jobName,
    storage,
    intervalMs: options.checkpointIntervalMs,
    timeoutMs: options.checkpointTimeoutMs,
    retain: options.retain,
    tasks,
    triggerBarrier: (id) => hooks.triggerBarrier(id),
    notifyComplete: (id) => hooks.notifyComplete(id),
    notifyAborted: (id) => hooks.notifyAborted(id),
    onFailureThresholdExceeded: (reason) => hooks.onFailureThresholdExceeded(reason),
    onStats: (s) => {
      progress.onStats(s);
      hooks.onStats?.(s);
      metrics.incJobCounter('cdcflow_checkpoints_total', { status: s.status, kind: s.kind });
      metrics.checkpointFinished(s);
      if (s.status === 'completed') {
        metrics.checkpointDuration.observe({ job: options.jobName, kind: s.kind }, s.durationMs / 1000);
        metrics.setJobGauge('cdcflow_checkpoint_size_bytes', s.bytes);
        metrics.checkpointCompleted(Date.now());
      }
    },
    onEvent: (e) => {
      progress.onEvent(e);
      if (e.type === 'trigger-failed' || e.type === 'callback-failed' || e.type === 'retention-failed') metrics.incJobCounter('cdcflow_checkpoint_coordinator_errors_total', { event: e.type });
    },
  });
}

/**
 * Loads the checkpoint to start from (none for `restore: 'none'`) and adopts a savepoint's files.
 * An explicit target (savepoint, checkpoint id, path) that cannot be loaded fails the start: it
 * never falls back to another checkpoint.
 */
export async function loadRestorePoint(coordinator: CheckpointCoordinator, options: ResolvedOptions, restoreFrom: ResolvedOptions['restore'], attempt: number): Promise<RestorePoint> {
  const log = options.logger;
  const plan = restoreFrom === 'none' ? await coordinator.restoreFrom('latest').then((p) => ({ ...p, restored: undefined })) : await coordinator.restoreFrom(restoreFrom);
  const { restored } = plan;
  // Replay safety (runtime/lifecycle/replay-gate.ts): refuses before anything is opened or sent.
  await checkReplayGate(jobRootOf(options), restored, options.allowReplay, (line) => log.warn(line));
  if (restored !== undefined) {
    log.info({ kind: restored.metadata.kind, checkpoint: restored.metadata.checkpointId, location: restored.location }, `restoring from ${restored.metadata.kind} ${restored.metadata.checkpointId} (${restored.location})`);
    const storage = checkpointStorageOf(options);
    if (storage.adoptFiles !== undefined) await storage.adoptFiles(restored);
    else if (resolve(restored.fileRoot) !== jobRootOf(options)) await adoptFiles(restored, jobRootOf(options));
    return { restored, freshStart: undefined };
  }
  const highestKnownCheckpointId = plan.nextCheckpointId - 1;
  const why = restoreFrom === 'none' ? "restore: 'none' was asked for" : `no completed checkpoint under ${jobRootOf(options)}`;
  log.info({ checkpointRoot: jobRootOf(options), highestKnownCheckpointId }, `starting fresh: ${why}`);
  // A later attempt of this run starts fresh only after the first one checked the sinks: what they hold now is ours.
  return { restored: undefined, freshStart: { highestKnownCheckpointId, discardSinkTransactions: options.discardSinkTransactions || attempt > 1 } };
}

/** The job's checkpoint storage: local, or the object store `checkpoints.dir` names (staging in `checkpointDir`). */
export function checkpointStorageOf(options: ResolvedOptions): CheckpointStorage {
  return checkpointStorageFor({ root: options.checkpointUrl ?? options.checkpointDir, jobName: options.jobName, stagingDirectory: options.checkpointDir });
}

export function jobRootOf(options: ResolvedOptions): string {
  return resolve(options.checkpointDir, options.jobName);
}

export interface AttemptSpec {
  readonly restoreFrom: ResolvedOptions['restore'];
  /** 1 for the first attempt of this run, 2 for the first restart, … */
  readonly attempt: number;
  onStarted(handle: AttemptHandle): void;
  onStats?(stats: CheckpointStats): void;
}

export type FinalOutcome = NonNullable<AttemptResult['final']>;

/**
 * Triggers the checkpoint an attempt ends with: the stop's target, or (bounded input ended) a
 * savepoint named `final-<time>`. Resolves once it completed and its completion was notified.
 */
export function triggerFinal(coordinator: CheckpointCoordinator, options: ResolvedOptions, target: FinalTarget | undefined): Promise<FinalOutcome> {
  if (target?.kind === 'checkpoint') return coordinator.triggerCheckpoint().then((m) => ({ checkpointId: m.checkpointId, kind: 'checkpoint' as const }));
  const name = target === undefined ? `final-${Date.now()}` : target.name;
  return coordinator.triggerSavepoint(name).then((m) => ({
    checkpointId: m.checkpointId,
    kind: 'savepoint' as const,
    savepointPath: join(jobRootOf(options), 'savepoints', name ?? `savepoint-${m.checkpointId}`),
  }));
}

export async function runAttempt(graph: JobGraph, options: ResolvedOptions, metrics: JobMetrics, spec: AttemptSpec): Promise<AttemptResult> {
  const uids = graph.resolveUids();
  // The coordinator and the runner call each other; the runner exists once the coordinator does.
  const ref: { runner?: JobRunner } = {};
  let failure: Error | undefined;
  const coordinator = createCoordinator(
    options,
    metrics,
    graph.nodes.map((n) => taskIdOf(uids.get(n) as string, 0)),
    {
      triggerBarrier: (id) => ref.runner?.requestBarrier(id),
      notifyComplete: (id) => ref.runner?.notifyCheckpoint(id, true),
      notifyAborted: (id) => ref.runner?.notifyCheckpoint(id, false),
      onFailureThresholdExceeded: (reason) => {
        failure = new Error(`too many checkpoints failed in a row: ${reason}`);
        ref.runner?.stop();
      },
      ...(spec.onStats === undefined ? {} : { onStats: spec.onStats }),
    },
  );
  const { restored, freshStart } = await loadRestorePoint(coordinator, options, spec.restoreFrom, spec.attempt);
  // Before the operators open: a sink cleans up after the subtasks of earlier, wider runs.
  const highestParallelism = await recordParallelism(jobRootOf(options), 1);
  const runner = createSubtaskRunner({
    graph,
    uids,
    options,
    metrics,
    jobRoot: jobRootOf(options),
    restored: assignRestoredState(Object.values(restored?.metadata.tasks ?? {}), graph.nodes, uids, 0, 1),
    subtaskIndex: 0,
    parallelism: 1,
    highestParallelism,
    ...(freshStart === undefined ? {} : { freshStart }),
    acknowledge: (uid, checkpointId, snapshot) => coordinator.acknowledge(taskIdOf(uid, 0), checkpointId, snapshot),
    decline: (uid, checkpointId, reason) => coordinator.decline(taskIdOf(uid, 0), checkpointId, reason),
  });
  ref.runner = runner;
  let closed = false;
  let stopTarget: FinalTarget | undefined;
  let final: FinalOutcome | undefined;
  spec.onStarted({
    coordinator,
    restoredFrom: restored?.location,
    stop: () => {
      runner.stop();
      // A final checkpoint in flight would never end now: its trigger rejects, the attempt ends.
      void coordinator.stop().catch(() => undefined);
    },
    requestFinal: (target) => {
      stopTarget = target;
      runner.requestFinal();
    },
    watermarks: () => runner.watermarks,
  });
  // Bounded input ended, or a graceful stop: one last checkpoint commits what the sinks hold, then close.
  const finish = async (target: FinalTarget | undefined) => {
    const pending = triggerFinal(coordinator, options, target).then(
      (outcome) => {
        final = outcome;
      },
      (error: unknown) => {
        failure = error instanceof Error ? error : new Error(String(error));
      },
    );
    let done = false;
    void pending.then(() => (done = true));
    while (!done) {
      // Commit what completed before the final barrier goes in, so sinks see them in order.
      await runner.deliverNotifications();
      await runner.injectBarriers();
      await new Promise((r) => setTimeout(r, 5));
    }
    await runner.deliverNotifications();
    if (failure !== undefined) return;
    closed = true;
    await runner.closeOperators();
  };
  try {
    try {
      await runner.open();
    } catch (error) {
      // Stopped while a source waited in open (a missing topic): nothing ran, nothing to checkpoint.
      if (error instanceof SourceOpenInterruptedError) return { final: undefined };
      throw error;
    }
    coordinator.start();
    await runner.run(
      () => finish(undefined),
      () => finish(stopTarget),
    );
  } finally {
    // A failed attempt still releases connections and open transactions before the restart.
    if (!closed) await Promise.race([runner.closeOperators().catch(() => undefined), new Promise((r) => setTimeout(r, 10_000).unref())]);
    await coordinator.stop().catch(() => undefined);
    await runner.close();
  }
  if (failure !== undefined) throw failure;
  return { final };
}

/** State files of a savepoint (or moved checkpoint) are copied in, so later incremental checkpoints can keep referencing them. */
async function adoptFiles(restored: StoredCheckpoint, jobRoot: string): Promise<void> {
  for (const task of Object.values(restored.metadata.tasks)) {
    for (const relative of referencedFiles(task.keyed)) {
      const target = join(jobRoot, relative);
      if (await stat(target).then(() => true, () => false)) continue;
      await mkdir(dirname(target), { recursive: true });
      await copyFile(join(restored.fileRoot, relative), target);
    }
  }
}
