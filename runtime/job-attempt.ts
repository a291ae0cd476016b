/**
 * One attempt at running a job: restore from the chosen checkpoint, open every operator, run the
 * task loop with periodic checkpoints, and (for bounded input) take a final checkpoint so every
 * two-phase sink commits what it holds before the job reports success.
 */
import { join } from 'node:path';
import { taskIdOf, type CheckpointCoordinator } from '../checkpoints/index.ts';
import { SourceOpenInterruptedError } from '../operators/sources/source.ts';
import { jobRootOf, startAttempt, type AttemptStartSpec } from './attempt-start.ts';
import type { JobGraph } from './graph.ts';
import type { ResolvedOptions } from './job-options.ts';
import type { FinalTarget } from './lifecycle/job-control.ts';
import type { JobMetrics } from './metrics.ts';
import { createSubtaskLoop } from './subtask-loop-factory.ts';

export { checkpointStorageOf, jobRootOf } from './attempt-start.ts';

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
  readonly final:
    | { readonly checkpointId: number; readonly kind: 'checkpoint' | 'savepoint'; readonly savepointPath?: string }
    | undefined;
}

export interface AttemptSpec extends AttemptStartSpec {
  onStarted(handle: AttemptHandle): void;
}

export type FinalOutcome = NonNullable<AttemptResult['final']>;

/**
 * Triggers the checkpoint an attempt ends with: the stop's target, or (bounded input ended) a
 * savepoint named `final-<time>`. Resolves once it completed and its completion was notified.
 */
export function triggerFinal(
  coordinator: CheckpointCoordinator,
  options: ResolvedOptions,
  target: FinalTarget | undefined,
): Promise<FinalOutcome> {
  if (target?.kind === 'checkpoint')
    return coordinator.triggerCheckpoint().then((m) => ({ checkpointId: m.checkpointId, kind: 'checkpoint' as const }));
  const name = target === undefined ? `final-${Date.now()}` : target.name;
  return coordinator.triggerSavepoint(name).then((m) => ({
    checkpointId: m.checkpointId,
    kind: 'savepoint' as const,
    savepointPath: join(jobRootOf(options), 'savepoints', name ?? `savepoint-${m.checkpointId}`),
  }));
}

export async function runAttempt(
  graph: JobGraph,
  options: ResolvedOptions,
  metrics: JobMetrics,
  spec: AttemptSpec,
): Promise<AttemptResult> {
  const start = await startAttempt(graph, options, metrics, spec, 1);
  const { coordinator, restored } = start;
  let failure: Error | undefined;
  const runner = createSubtaskLoop({
    graph,
    uids: start.uids,
    options,
    metrics,
    jobRoot: start.jobRoot,
    restored: start.restoredFor(0),
    subtaskIndex: 0,
    parallelism: 1,
    highestParallelism: start.highestParallelism,
    ...(start.freshStart === undefined ? {} : { freshStart: start.freshStart }),
    acknowledge: (checkpointId, snapshot) =>
      coordinator.acknowledge(taskIdOf(snapshot.operatorUid, 0), checkpointId, snapshot),
    decline: (uid, checkpointId, reason) => coordinator.decline(taskIdOf(uid, 0), checkpointId, reason),
  });
  start.attach({
    requestBarrier: (id) => runner.requestBarrier(id),
    notifyCheckpoint: (id, completed) => runner.notifyCheckpoint(id, completed),
    fail: (error) => {
      failure = error;
      runner.stop();
    },
  });
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
    if (!closed)
      await Promise.race([
        runner.closeOperators().catch(() => undefined),
        new Promise((r) => setTimeout(r, 10_000).unref()),
      ]);
    await coordinator.stop().catch(() => undefined);
    await runner.close();
  }
  if (failure !== undefined) throw failure;
  return { final };
}
