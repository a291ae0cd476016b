/**
 * One attempt at running a job: restore from the chosen checkpoint, open every operator, run the
 * task loop with periodic checkpoints, and (for bounded input) take a final checkpoint so every
 * two-phase sink commits what it holds before the job reports success.
 */
import { copyFile, mkdir, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { CheckpointCoordinator, LocalCheckpointStorage, recordParallelism, referencedFiles, taskIdOf, type StoredCheckpoint } from '../checkpoints/index.ts';
import type { JobRunner } from './execution/job-runner.ts';
import { assignRestoredState } from './execution/restore-assignment.ts';
import type { JobGraph } from './graph.ts';
import type { ResolvedOptions } from './job-options.ts';
import type { JobMetrics } from './metrics.ts';
import { createSubtaskRunner } from './subtask-runner.ts';

/** What the environment sees of a running attempt (single-thread or parallel). */
export interface AttemptHandle {
  readonly coordinator: CheckpointCoordinator;
  stop(): void;
  watermarks(): unknown;
}

export interface CoordinatorHooks {
  triggerBarrier(id: number): void;
  notifyComplete(id: number): void;
  notifyAborted(id: number): void;
  onFailureThresholdExceeded(reason: string): void;
}

/** The checkpoint coordinator of an attempt, with the job's metrics and log wired in. */
export function createCoordinator(options: ResolvedOptions, metrics: JobMetrics, tasks: string[], hooks: CoordinatorHooks): CheckpointCoordinator {
  const storage = new LocalCheckpointStorage({ directory: options.checkpointDir, jobName: options.jobName });
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
      metrics.incJobCounter('cdcflow_checkpoints_total', { status: s.status, kind: s.kind });
      if (s.status === 'completed') {
        metrics.checkpointDuration.observe({ job: options.jobName, kind: s.kind }, s.durationMs / 1000);
        metrics.setJobGauge('cdcflow_checkpoint_size_bytes', s.bytes);
        metrics.checkpointCompleted(Date.now());
      } else options.log(`checkpoint ${s.checkpointId} aborted: ${s.failureReason ?? 'unknown reason'}`);
    },
  });
}

/** Loads the checkpoint to start from (none for `restore: 'none'`) and adopts a savepoint's files. */
export async function loadRestorePoint(coordinator: CheckpointCoordinator, options: ResolvedOptions, restoreFrom: ResolvedOptions['restore']): Promise<StoredCheckpoint | undefined> {
  const restored = restoreFrom === 'none' ? undefined : (await coordinator.restoreFrom(restoreFrom)).restored;
  if (restored !== undefined) options.log(`restoring from ${restored.metadata.kind} ${restored.metadata.checkpointId} (${restored.location})`);
  if (restored !== undefined && resolve(restored.fileRoot) !== jobRootOf(options)) await adoptFiles(restored, jobRootOf(options));
  return restored;
}

export function jobRootOf(options: ResolvedOptions): string {
  return resolve(options.checkpointDir, options.jobName);
}

export async function runAttempt(
  graph: JobGraph,
  options: ResolvedOptions,
  metrics: JobMetrics,
  restoreFrom: ResolvedOptions['restore'],
  onStarted: (handle: AttemptHandle) => void,
): Promise<void> {
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
    },
  );
  const restored = await loadRestorePoint(coordinator, options, restoreFrom);
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
    acknowledge: (uid, checkpointId, snapshot) => coordinator.acknowledge(taskIdOf(uid, 0), checkpointId, snapshot),
    decline: (uid, checkpointId, reason) => coordinator.decline(taskIdOf(uid, 0), checkpointId, reason),
  });
  ref.runner = runner;
  let closed = false;
  onStarted({ coordinator, stop: () => runner.stop(), watermarks: () => runner.watermarks });
  try {
    await runner.open();
    coordinator.start();
    await runner.run(async () => {
      // Bounded input ended: one last checkpoint commits what the sinks hold, then close.
      const final = coordinator.triggerSavepoint(`final-${Date.now()}`).then(
        () => true,
        (error: unknown) => {
          failure = error instanceof Error ? error : new Error(String(error));
          return true;
        },
      );
      let done = false;
      void final.then(() => (done = true));
      while (!done) {
        // Commit what completed before the final barrier goes in, so sinks see them in order.
        await runner.deliverNotifications();
        await runner.injectBarriers();
        await new Promise((r) => setTimeout(r, 5));
      }
      await runner.deliverNotifications();
      closed = true;
      await runner.closeOperators();
    });
  } finally {
    // A failed attempt still releases connections and open transactions before the restart.
    if (!closed) await Promise.race([runner.closeOperators().catch(() => undefined), new Promise((r) => setTimeout(r, 10_000).unref())]);
    await coordinator.stop().catch(() => undefined);
    await runner.close();
  }
  if (failure !== undefined) throw failure;
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
