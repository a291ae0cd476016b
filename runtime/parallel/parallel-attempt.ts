/**
 * One attempt of a job at parallelism N > 1, from the main thread: the checkpoint coordinator
 * (tasks = every uid × N subtasks) lives here, the subtasks run in N worker threads. Barriers,
 * acks and notifications travel as messages (protocol.ts). Any worker failure or exit fails the
 * whole attempt: every worker is terminated and the environment restarts the job from the
 * latest checkpoint (global failover, as Flink's default region for an all-to-all graph).
 */
import { recordParallelism, taskIdOf } from '../../checkpoints/index.ts';
import { assignRestoredState } from '../execution/restore-assignment.ts';
import type { JobGraph } from '../graph.ts';
import { createCoordinator, jobRootOf, loadRestorePoint, triggerFinal, type AttemptResult, type AttemptSpec } from '../job-attempt.ts';
import type { FinalTarget } from '../lifecycle/job-control.ts';
import type { ResolvedOptions } from '../job-options.ts';
import type { JobMetrics } from '../metrics.ts';
import { checkParallelGraph } from './graph-check.ts';
import type { FromSubtask, ToSubtask } from './protocol.ts';
import { jobModuleUrl, spawnSubtasks } from './worker-spawn.ts';
import { WorkerGroup } from './worker-group.ts';

export async function runParallelAttempt(graph: JobGraph, options: ResolvedOptions, metrics: JobMetrics, spec: AttemptSpec): Promise<AttemptResult> {
  const n = options.parallelism;
  checkParallelGraph(graph, n);
  const uids = graph.resolveUids();
  const group = new WorkerGroup(n);
  const tasks = graph.nodes.flatMap((node) => Array.from({ length: n }, (_, i) => taskIdOf(uids.get(node) as string, i)));
  const coordinator = createCoordinator(options, metrics, tasks, {
    triggerBarrier: (checkpointId) => group.broadcast({ type: 'barrier', checkpointId }),
    notifyComplete: (checkpointId) => group.broadcast({ type: 'checkpoint-complete', checkpointId }),
    notifyAborted: (checkpointId) => group.broadcast({ type: 'checkpoint-aborted', checkpointId }),
    onFailureThresholdExceeded: (reason) => group.fail(new Error(`too many checkpoints failed in a row: ${reason}`)),
    ...(spec.onStats === undefined ? {} : { onStats: spec.onStats }),
  });
  const { restored, freshStart } = await loadRestorePoint(coordinator, options, spec.restoreFrom, spec.attempt);
  // Before any subtask opens (and creates transactions named after its index).
  const highestParallelism = await recordParallelism(jobRootOf(options), n);
  const stored = Object.values(restored?.metadata.tasks ?? {});
  const perSubtask = Array.from({ length: n }, (_, i) => assignRestoredState(stored, graph.nodes, uids, i, n));
  const workers = spawnSubtasks({ jobName: options.jobName, moduleUrl: jobModuleUrl(options.jobModule), parallelism: n, highestParallelism, restored: perSubtask, ...(freshStart === undefined ? {} : { freshStart }) });
  group.attach(workers, (index, message) => onMessage(index, message));
  metrics.attachWorkers(() => group.metrics());
  // A hard stop skips the final checkpoint; a graceful one (stopTarget) ends with it, like bounded input.
  let hardStop = false;
  let stopTarget: FinalTarget | undefined;
  let final: AttemptResult['final'];
  spec.onStarted({
    coordinator,
    restoredFrom: restored?.location,
    stop: () => {
      hardStop = true;
      group.broadcast({ type: 'stop' });
      void coordinator.stop().catch(() => undefined);
    },
    requestFinal: (target) => {
      stopTarget = target;
      group.broadcast({ type: 'stop-sources' });
    },
    watermarks: () => undefined,
  });

  function onMessage(index: number, message: FromSubtask): void {
    if (message.type === 'ack') coordinator.acknowledge(taskIdOf(message.snapshot.operatorUid, index), message.checkpointId, message.snapshot);
    else if (message.type === 'decline') coordinator.decline(taskIdOf(message.uid, index), message.checkpointId, message.reason);
  }

  try {
    await group.until('opened');
    coordinator.start();
    group.broadcast({ type: 'start' });
    await group.until('sources-ended');
    if (!hardStop) {
      // Bounded input ended (or a graceful stop) on every subtask: one last checkpoint commits what the sinks hold.
      final = await group.race(triggerFinal(coordinator, options, stopTarget));
      group.broadcast({ type: 'finish' } satisfies ToSubtask);
    }
    await group.until('done');
  } finally {
    metrics.attachWorkers(undefined, await group.metrics());
    await coordinator.stop().catch(() => undefined);
    await group.terminate();
  }
  return { final };
}
