/**
 * The start-up every attempt shares, single-thread or parallel: the checkpoint coordinator (its
 * tasks: every operator uid × the attempt's subtasks, its stats and events wired to the job's
 * metrics and log), the restore point (the replay gate checked, a savepoint's files adopted),
 * the recorded parallelism, and what each subtask restores. The attempt then builds its subtask
 * loops (in this thread, or in worker threads) and `attach`es them: the coordinator sends its
 * barriers and notifications there.
 */
import { copyFile, mkdir, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import {
  CheckpointCoordinator,
  checkpointStorageFor,
  recordParallelism,
  referencedFiles,
  taskIdOf,
  type CheckpointStats,
  type CheckpointStorage,
  type StoredCheckpoint,
} from '../checkpoints/index.ts';
import type { FreshStart } from '../operators/operator.ts';
import { assignRestoredState, type RestoredTask } from './execution/restore-assignment.ts';
import type { GraphNode, JobGraph } from './graph.ts';
import type { ResolvedOptions } from './job-options.ts';
import { CheckpointLog } from './lifecycle/checkpoint-log.ts';
import { checkReplayGate } from './lifecycle/replay-gate.ts';
import type { JobMetrics } from './metrics.ts';

/** What a start needs to know besides the checkpoint: what it restored from, or why it starts fresh. */
export interface RestorePoint {
  readonly restored: StoredCheckpoint | undefined;
  /** Set for a fresh start (see OperatorContext.freshStart). */
  readonly freshStart: FreshStart | undefined;
}

/** What the coordinator drives: the attempt's subtask loops, in this thread or in worker threads. */
export interface AttemptTasks {
  requestBarrier(checkpointId: number): void;
  notifyCheckpoint(checkpointId: number, completed: boolean): void;
  /** More checkpoints failed in a row than tolerated: the attempt fails with `error` (the restart strategy decides). */
  fail(error: Error): void;
}

export interface AttemptStartSpec {
  readonly restoreFrom: ResolvedOptions['restore'];
  /** 1 for the first attempt of this run, 2 for the first restart, … */
  readonly attempt: number;
  onStats?(stats: CheckpointStats): void;
}

/** A started attempt, before its subtask loops exist. */
export interface AttemptStart extends RestorePoint {
  readonly coordinator: CheckpointCoordinator;
  readonly uids: Map<GraphNode, string>;
  /** The job's checkpoint folder (`<checkpoints.dir>/<jobName>`). */
  readonly jobRoot: string;
  /** The highest parallelism this job ever started at, this attempt included. */
  readonly highestParallelism: number;
  /** What subtask `subtaskIndex` of this attempt restores. */
  restoredFor(subtaskIndex: number): Map<string, RestoredTask>;
  /** Connects the subtask loops; call before `coordinator.start()` (nothing is triggered before it). */
  attach(tasks: AttemptTasks): void;
}

export async function startAttempt(
  graph: JobGraph,
  options: ResolvedOptions,
  metrics: JobMetrics,
  spec: AttemptStartSpec,
  parallelism: number,
): Promise<AttemptStart> {
  const uids = graph.resolveUids();
  const taskIds = graph.nodes.flatMap((node) =>
    Array.from({ length: parallelism }, (_, i) => taskIdOf(uids.get(node) as string, i)),
  );
  let attached: AttemptTasks | undefined;
  // One storage per attempt: the coordinator writes through it and the restore adopts files through it.
  const storage = checkpointStorageOf(options);
  const coordinator = createCoordinator(options, storage, metrics, taskIds, () => attached, spec.onStats);
  const { restored, freshStart } = await loadRestorePoint(
    coordinator,
    storage,
    options,
    spec.restoreFrom,
    spec.attempt,
  );
  const jobRoot = jobRootOf(options);
  // Before any subtask opens: a sink cleans up after the subtasks of earlier, wider runs (transactions are named after the index).
  const highestParallelism = await recordParallelism(jobRoot, parallelism);
  const stored = Object.values(restored?.metadata.tasks ?? {});
  return {
    coordinator,
    uids,
    jobRoot,
    restored,
    freshStart,
    highestParallelism,
    restoredFor: (subtaskIndex) => assignRestoredState(stored, graph.nodes, uids, subtaskIndex, parallelism),
    attach: (tasks) => void (attached = tasks),
  };
}

/** The checkpoint coordinator of an attempt, with the job's metrics and log wired in. */
function createCoordinator(
  options: ResolvedOptions,
  storage: CheckpointStorage,
  metrics: JobMetrics,
  taskIds: string[],
  tasks: () => AttemptTasks | undefined,
  onStats: ((stats: CheckpointStats) => void) | undefined,
): CheckpointCoordinator {
  const progress = CheckpointLog.everyMinute(options.logger, options.checkpointIntervalMs);
  return new CheckpointCoordinator({
    jobName: options.jobName,
    storage,
    intervalMs: options.checkpointIntervalMs,
    timeoutMs: options.checkpointTimeoutMs,
    retain: options.retain,
    maxConcurrentCheckpoints: options.maxConcurrentCheckpoints,
    ...(options.firstCheckpointId === undefined ? {} : { firstCheckpointId: options.firstCheckpointId }),
    tasks: taskIds,
    triggerBarrier: (id) => tasks()?.requestBarrier(id),
    notifyComplete: (id) => tasks()?.notifyCheckpoint(id, true),
    notifyAborted: (id) => tasks()?.notifyCheckpoint(id, false),
    onFailureThresholdExceeded: (reason) => tasks()?.fail(new Error(`too many checkpoints failed in a row: ${reason}`)),
    onStats: (s) => {
      progress.onStats(s);
      onStats?.(s);
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
      if (e.type === 'trigger-failed' || e.type === 'callback-failed' || e.type === 'retention-failed')
        metrics.incJobCounter('cdcflow_checkpoint_coordinator_errors_total', { event: e.type });
    },
  });
}

/**
 * Loads the checkpoint to start from (none for `restore: 'none'`) and adopts a savepoint's files.
 * An explicit target (savepoint, checkpoint id, path) that cannot be loaded fails the start: it
 * never falls back to another checkpoint.
 */
async function loadRestorePoint(
  coordinator: CheckpointCoordinator,
  storage: CheckpointStorage,
  options: ResolvedOptions,
  restoreFrom: ResolvedOptions['restore'],
  attempt: number,
): Promise<RestorePoint> {
  const log = options.logger;
  const plan =
    restoreFrom === 'none'
      ? await coordinator.restoreFrom('latest').then((p) => ({ ...p, restored: undefined }))
      : await coordinator.restoreFrom(restoreFrom);
  const { restored } = plan;
  // Replay safety (runtime/lifecycle/replay-gate.ts): refuses before anything is opened or sent.
  await checkReplayGate(jobRootOf(options), restored, options.allowReplay, (line) => log.warn(line));
  if (restored !== undefined) {
    log.info(
      { kind: restored.metadata.kind, checkpoint: restored.metadata.checkpointId, location: restored.location },
      `restoring from ${restored.metadata.kind} ${restored.metadata.checkpointId} (${restored.location})`,
    );
    if (storage.adoptFiles !== undefined) await storage.adoptFiles(restored);
    else if (resolve(restored.fileRoot) !== jobRootOf(options)) await adoptFiles(restored, jobRootOf(options));
    return { restored, freshStart: undefined };
  }
  const highestKnownCheckpointId = plan.nextCheckpointId - 1;
  const why =
    restoreFrom === 'none' ? "restore: 'none' was asked for" : `no completed checkpoint under ${jobRootOf(options)}`;
  log.info({ checkpointRoot: jobRootOf(options), highestKnownCheckpointId }, `starting fresh: ${why}`);
  // A later attempt of this run starts fresh only after the first one checked the sinks: what they hold now is ours.
  return {
    restored: undefined,
    freshStart: { highestKnownCheckpointId, discardSinkTransactions: options.discardSinkTransactions || attempt > 1 },
  };
}

/** The job's checkpoint storage: local, or the object store `checkpoints.dir` names (staging in `checkpointDir`). */
export function checkpointStorageOf(options: ResolvedOptions): CheckpointStorage {
  return checkpointStorageFor({
    root: options.checkpointUrl ?? options.checkpointDir,
    jobName: options.jobName,
    stagingDirectory: options.checkpointDir,
  });
}

export function jobRootOf(options: ResolvedOptions): string {
  return resolve(options.checkpointDir, options.jobName);
}

/** State files of a savepoint (or moved checkpoint) are copied in, so later incremental checkpoints can keep referencing them. */
async function adoptFiles(restored: StoredCheckpoint, jobRoot: string): Promise<void> {
  for (const task of Object.values(restored.metadata.tasks)) {
    for (const relative of referencedFiles(task.keyed)) {
      const target = join(jobRoot, relative);
      if (
        await stat(target).then(
          () => true,
          () => false,
        )
      )
        continue;
      await mkdir(dirname(target), { recursive: true });
      await copyFile(join(restored.fileRoot, relative), target);
    }
  }
}
