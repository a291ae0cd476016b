/**
 * One attempt of a job at parallelism N > 1, from the main thread: the checkpoint coordinator
 * (tasks = every uid × N subtasks) lives here, the subtasks run in N worker threads. Barriers,
 * acks and notifications travel as messages (protocol.ts). Any worker failure or exit fails the
 * whole attempt: every worker is terminated and the environment restarts the job from the
 * latest checkpoint (global failover, as Flink's default region for an all-to-all graph).
 */
import { taskIdOf } from '../../checkpoints/index.ts';
import { preloadRocksDbBinding } from '../../state/index.ts';
import { startAttempt } from '../attempt-start.ts';
import type { JobGraph } from '../graph.ts';
import { triggerFinal, type AttemptResult, type AttemptSpec } from '../job-attempt.ts';
import type { FinalTarget } from '../lifecycle/job-control.ts';
import type { ResolvedOptions } from '../job-options.ts';
import type { JobMetrics } from '../metrics.ts';
import { checkParallelGraph } from './graph-check.ts';
import type { FromSubtask, ToSubtask } from './protocol.ts';
import { jobModuleUrl, spawnSubtasks } from './worker-spawn.ts';
import { WorkerGroup } from './worker-group.ts';

export async function runParallelAttempt(
  graph: JobGraph,
  options: ResolvedOptions,
  metrics: JobMetrics,
  spec: AttemptSpec,
): Promise<AttemptResult> {
  const n = options.parallelism;
  checkParallelGraph(graph, n);
  const group = new WorkerGroup(n);
  const start = await startAttempt(graph, options, metrics, spec, n);
  const { coordinator, restored, freshStart } = start;
  start.attach({
    requestBarrier: (checkpointId) => group.broadcast({ type: 'barrier', checkpointId }),
    notifyCheckpoint: (checkpointId, completed) =>
      group.broadcast({ type: completed ? 'checkpoint-complete' : 'checkpoint-aborted', checkpointId }),
    fail: (error) => group.fail(error),
  });
  const perSubtask = Array.from({ length: n }, (_, i) => start.restoredFor(i));
  // The rocksdb package's addon registers only in the first thread that loads it: this one.
  if (options.stateBackend === 'rocksdb') preloadRocksDbBinding(options.stateRocksDb.binding);
  const workers = spawnSubtasks({
    jobName: options.jobName,
    moduleUrl: jobModuleUrl(options.jobModule),
    parallelism: n,
    highestParallelism: start.highestParallelism,
    restored: perSubtask,
    ...(freshStart === undefined ? {} : { freshStart }),
  });
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
    if (message.type === 'ack')
      coordinator.acknowledge(taskIdOf(message.snapshot.operatorUid, index), message.checkpointId, message.snapshot);
    else if (message.type === 'decline')
      coordinator.decline(taskIdOf(message.uid, index), message.checkpointId, message.reason);
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
