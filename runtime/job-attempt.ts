/**
 * One attempt at running a job: restore from the chosen checkpoint, open every operator, run the
 * task loop with periodic checkpoints, and (for bounded input) take a final checkpoint so every
 * two-phase sink commits what it holds before the job reports success.
 */
import { copyFile, mkdir, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { CheckpointCoordinator, LocalCheckpointStorage, referencedFiles, taskIdOf, type StoredCheckpoint } from '../checkpoints/index.ts';
import type { SourceSnapshot } from '../operators/sources/source.ts';
import { DefaultStateBackendFactory, keyGroupRangeFor, newBytesOf, type KeyedStateHandle } from '../state/index.ts';
import { JobRunner, type KeyedBackend, type TaskState } from './execution/job-runner.ts';
import type { GraphNode, JobGraph } from './graph.ts';
import type { ResolvedOptions } from './job-options.ts';
import type { JobMetrics } from './metrics.ts';
import { checkpointSnapshotStorage } from './state-storage.ts';

/** How TaskState is stored in a checkpoint's TaskSnapshot.operator field. */
interface StoredTaskState {
  readonly operator?: unknown;
  readonly source?: SourceSnapshot;
  readonly watermark?: number;
}

export interface AttemptHandle {
  readonly runner: JobRunner;
  readonly coordinator: CheckpointCoordinator;
}

export async function runAttempt(
  graph: JobGraph,
  options: ResolvedOptions,
  metrics: JobMetrics,
  restoreFrom: ResolvedOptions['restore'],
  onStarted: (handle: AttemptHandle) => void,
): Promise<void> {
  const uids = graph.resolveUids();
  const storage = new LocalCheckpointStorage({ directory: options.checkpointDir, jobName: options.jobName });
  const jobRoot = resolve(options.checkpointDir, options.jobName);
  // The coordinator and the runner call each other; the runner exists once the coordinator does.
  const ref: { runner?: JobRunner } = {};
  let failure: Error | undefined;
  const coordinator = new CheckpointCoordinator({
    jobName: options.jobName,
    storage,
    intervalMs: options.checkpointIntervalMs,
    timeoutMs: options.checkpointTimeoutMs,
    retain: options.retain,
    tasks: graph.nodes.map((n) => taskIdOf(uids.get(n) as string, 0)),
    triggerBarrier: (id) => ref.runner?.requestBarrier(id),
    notifyComplete: (id) => ref.runner?.notifyCheckpoint(id, true),
    notifyAborted: (id) => ref.runner?.notifyCheckpoint(id, false),
    onFailureThresholdExceeded: (reason) => {
      failure = new Error(`too many checkpoints failed in a row: ${reason}`);
      ref.runner?.stop();
    },
    onStats: (s) => {
      metrics.incJobCounter('cdcflow_checkpoints_total', { status: s.status, kind: s.kind });
      if (s.status === 'completed') {
        metrics.checkpointDuration.observe({ job: options.jobName, kind: s.kind }, s.durationMs / 1000);
        metrics.setJobGauge('cdcflow_checkpoint_size_bytes', s.bytes);
        metrics.setJobGauge('cdcflow_checkpoint_last_success_timestamp_seconds', Date.now() / 1000);
      } else options.log(`checkpoint ${s.checkpointId} aborted: ${s.failureReason ?? 'unknown reason'}`);
    },
  });
  const plan = restoreFrom === 'none' ? { restored: undefined } : await coordinator.restoreFrom(restoreFrom);
  const restored = plan.restored;
  if (restored !== undefined) options.log(`restoring from ${restored.metadata.kind} ${restored.metadata.checkpointId} (${restored.location})`);
  if (restored !== undefined && resolve(restored.fileRoot) !== jobRoot) await adoptFiles(restored, jobRoot);
  const restoredTasks = restoredTaskStates(restored, graph, uids);
  const stateFactory = new DefaultStateBackendFactory();
  const snapshotStorage = checkpointSnapshotStorage(jobRoot);

  const runner = new JobRunner({
    jobName: options.jobName,
    graph,
    uids,
    restored: restoredTasks,
    createKeyedBackend: async (uid, handle) => {
      const range = keyGroupRangeFor(0, 1);
      const backend = await stateFactory.createKeyedBackend({ jobName: options.jobName, operatorUid: uid, subtaskIndex: 0, keyGroupRange: range, backend: options.stateBackend, localDir: options.stateDir });
      if (handle !== undefined) await backend.restore([handle as KeyedStateHandle], range, snapshotStorage);
      const adapted: KeyedBackend = {
        state: backend,
        snapshot: async (id) => {
          const written = await backend.snapshot(id, snapshotStorage);
          return { handle: written, bytes: newBytesOf(written) };
        },
      };
      return adapted;
    },
    metricsFor: (uid) => metrics.forOperator(uid),
    acknowledge: (uid, checkpointId, state) => {
      const stored: StoredTaskState = {
        ...(state.operator === undefined ? {} : { operator: state.operator }),
        ...(state.source === undefined ? {} : { source: state.source }),
        ...(state.watermark === undefined ? {} : { watermark: state.watermark }),
      };
      coordinator.acknowledge(taskIdOf(uid, 0), checkpointId, {
        operatorUid: uid,
        subtaskIndex: 0,
        parallelism: 1,
        ...(state.keyed === undefined ? {} : { keyed: state.keyed }),
        operator: stored,
        bytes: state.bytes,
      });
    },
    hooks: {
      recordsIn: (uid, n) => metrics.forOperator(uid).count('cdcflow_records_in_total', {}, n),
      recordsOut: (uid, n) => metrics.forOperator(uid).count('cdcflow_records_out_total', {}, n),
      watermarkAdvanced: (uid, wm) => {
        if (!Number.isFinite(wm)) return;
        const m = metrics.forOperator(uid);
        m.gauge('cdcflow_watermark_ms', wm);
        m.gauge('cdcflow_watermark_lag_ms', Date.now() - wm);
      },
    },
  });
  ref.runner = runner;
  let closed = false;
  onStarted({ runner, coordinator });
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

function restoredTaskStates(restored: StoredCheckpoint | undefined, graph: JobGraph, uids: Map<GraphNode, string>): Map<string, TaskState> {
  const result = new Map<string, TaskState>();
  if (restored === undefined) return result;
  const known = new Set(graph.nodes.map((n) => uids.get(n)));
  for (const task of Object.values(restored.metadata.tasks)) {
    if (!known.has(task.operatorUid)) continue;
    const stored = (task.operator ?? {}) as StoredTaskState;
    result.set(task.operatorUid, {
      ...(stored.operator === undefined ? {} : { operator: stored.operator }),
      ...(stored.source === undefined ? {} : { source: stored.source }),
      ...(stored.watermark === undefined ? {} : { watermark: stored.watermark }),
      ...(task.keyed === undefined ? {} : { keyed: task.keyed }),
      bytes: task.bytes,
    });
  }
  return result;
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
