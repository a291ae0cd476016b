/**
 * The worker-thread side of a parallel job: subtask i of N runs the task loop of the graph its
 * job module built, talks to the coordinator in the main thread (barriers in, acks out,
 * checkpoint notifications in) and to the other subtasks through the keyed exchange. It never
 * restarts itself: on any failure it reports and the main thread restarts the whole attempt.
 */
import { parentPort } from 'node:worker_threads';
import { locateError, toWireError } from '../../state/index.ts';
import type { MessagePort } from 'node:worker_threads';
import type { GraphNode, JobGraph } from '../graph.ts';
import type { ResolvedOptions } from '../job-options.ts';
import { jobRootOf } from '../attempt-start.ts';
import type { JobMetrics } from '../metrics.ts';
import { createSubtaskLoop } from '../subtask-loop-factory.ts';
import { KeyedExchange } from './keyed-exchange.ts';
import type { FromSubtask, SubtaskInit, ToSubtask } from './protocol.ts';

export async function runSubtask(
  graph: JobGraph,
  options: ResolvedOptions,
  metrics: JobMetrics,
  init: SubtaskInit,
): Promise<void> {
  const port = parentPort as MessagePort;
  const post = (message: FromSubtask) => port.postMessage(message);
  const uids: Map<GraphNode, string> = graph.resolveUids();
  const exchange = new KeyedExchange(init.subtaskIndex, init.parallelism, init.peers);
  const runner = createSubtaskLoop({
    graph,
    uids,
    options,
    metrics,
    jobRoot: jobRootOf(options),
    restored: new Map(init.restored),
    subtaskIndex: init.subtaskIndex,
    parallelism: init.parallelism,
    highestParallelism: init.highestParallelism,
    exchange,
    ...(init.freshStart === undefined ? {} : { freshStart: init.freshStart }),
    acknowledge: (checkpointId, snapshot) => post({ type: 'ack', checkpointId, snapshot }),
    decline: (uid, checkpointId, reason) => post({ type: 'decline', uid, checkpointId, reason }),
  });
  let finish = false;
  let started = false;
  let stopped = false;
  let wake: (() => void) | undefined;
  const woken = () => new Promise<void>((resolve) => (wake = resolve));
  port.on('message', (message: ToSubtask) => {
    switch (message.type) {
      case 'barrier':
        runner.requestBarrier(message.checkpointId);
        break;
      case 'checkpoint-complete':
      case 'checkpoint-aborted':
        runner.notifyCheckpoint(message.checkpointId, message.type === 'checkpoint-complete');
        break;
      case 'finish':
        finish = true;
        break;
      case 'start':
        started = true;
        break;
      case 'stop-sources':
        runner.requestFinal();
        break;
      case 'stop':
        runner.stop();
        stopped = true;
        if (message.abort === true) exchange.abort();
        break;
      case 'metrics-request':
        void metrics.registry
          .getMetricsAsJSON()
          .then((json) => post({ type: 'metrics', requestId: message.requestId, metrics: json }));
        break;
    }
    wake?.();
  });
  let closed = false;
  try {
    await runner.open();
    post({ type: 'opened' });
    while (!started && !stopped) await woken();
    // Sources ended (bounded input) or a graceful stop: either way the final checkpoint needs
    // every subtask, so serve barriers and the exchange until it is done.
    const final = async () => {
      post({ type: 'sources-ended' });
      await runner.serveUntil(() => finish, woken);
      if (!finish) return;
      closed = true;
      await runner.closeOperators();
    };
    await runner.run(final, final);
  } catch (error) {
    post({ type: 'failed', error: toWireError(locateError(error, { subtask: init.subtaskIndex })) });
    throw error;
  } finally {
    if (!closed)
      await Promise.race([
        runner.closeOperators().catch(() => undefined),
        new Promise((r) => setTimeout(r, 10_000).unref()),
      ]);
    await runner.close();
    exchange.close();
    exchange.stats.report(
      `subtask ${init.subtaskIndex}/${init.parallelism} elu=${performance.eventLoopUtilization().utilization.toFixed(2)}`,
    );
  }
  post({ type: 'done', metrics: await metrics.registry.getMetricsAsJSON() });
  // Let the thread end once the job module returns; the main thread terminates it otherwise.
  port.unref();
}
