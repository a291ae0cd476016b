/**
 * A checkpoint notification that arrives while the task loop waits in a source's poll is delivered
 * at once, not after the poll returns: a two-phase sink commits (and its rows become visible)
 * without waiting for the next record or the poll's timeout.
 */
import { describe, expect, it } from 'vitest';
import type { SinkDefinition } from '../../../../operators/sinks/sink.ts';
import type { PollResult, SourceDefinition } from '../../../../operators/sources/source.ts';
import { DataStream } from '../../../../runtime/data-stream.ts';
import { SubtaskLoop } from '../../../../runtime/execution/subtask-loop.ts';
import { JobGraph } from '../../../../runtime/graph.ts';
import { RecordingMetrics } from '../../../support/operator-context.ts';

async function waitFor(predicate: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 5_000; i++) {
    if (predicate()) return;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  throw new Error(`gave up waiting for ${what}`);
}

describe('checkpoint notifications during a poll', () => {
  it('reach the sink while the poll still waits for data', async () => {
    const polls: { release: (r: PollResult<number>) => void }[] = [];
    const source: SourceDefinition<number> = {
      name: 'gated',
      createReader: () => ({
        open: () => Promise.resolve(),
        // Resolves only when the test releases it: the loop is waiting in this poll meanwhile.
        poll: () => new Promise<PollResult<number>>((release) => polls.push({ release })),
        snapshot: () => ({ positions: [] }),
        close: () => Promise.resolve(),
      }),
    };
    const completed: number[] = [];
    const sink: SinkDefinition<number> = {
      name: 'committing',
      createOperator: () => ({
        processBatch: () => undefined,
        notifyCheckpointComplete: (id: number) => void completed.push(id),
      }),
    };
    const graph = new JobGraph();
    const node = graph.add({
      name: 'source:gated',
      explicitUid: 'src',
      inputs: [],
      source: source as SourceDefinition<unknown>,
      factory: undefined,
      keySelector: undefined,
      isSink: false,
      sourceOptions: undefined,
    });
    new DataStream<number>(graph, node).sinkTo(sink).uid('sink');
    const loop = new SubtaskLoop({
      jobName: 'notify-during-poll',
      graph,
      uids: graph.resolveUids(),
      restored: new Map(),
      pollWaitMs: 60_000,
      createKeyedBackend: () => Promise.reject(new Error('no keyed operators here')),
      metricsFor: () => new RecordingMetrics(),
      acknowledge: () => undefined,
      decline: () => undefined,
      hooks: {
        recordsIn: () => undefined,
        recordsOut: () => undefined,
        watermarkAdvanced: () => undefined,
        timeSpent: () => undefined,
      },
    });
    await loop.open();
    const running = loop.run();
    await waitFor(() => polls.length === 1, 'the first poll');
    loop.notifyCheckpoint(7, true);
    // Before: delivered only at the next gap between polls, i.e. after this poll returned.
    await waitFor(() => completed.length === 1, 'the notification during the poll');
    expect(completed).toEqual([7]);
    expect(polls).toHaveLength(1);
    loop.stop();
    polls[0]?.release('idle');
    await running;
    await loop.close();
  });
});
