/**
 * The task loop keeps processing records while a keyed operator's full snapshot is written (the
 * asynchronous phase): the barrier moves on and the sink acks at once, the keyed operator acks
 * only when its file is durable, with exactly the state at the barrier; a failed write declines
 * the checkpoint and the job keeps running.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { OperatorSnapshot, StreamRecord } from '../../../../operators/operator.ts';
import type { SinkDefinition } from '../../../../operators/sinks/sink.ts';
import type { PollResult, SourceDefinition } from '../../../../operators/sources/source.ts';
import { valueState } from '../../../../operators/transform/process.ts';
import { DataStream } from '../../../../runtime/data-stream.ts';
import type { TaskSnapshot } from '../../../../checkpoints/index.ts';
import { SubtaskLoop } from '../../../../runtime/execution/subtask-loop.ts';
import { JobGraph } from '../../../../runtime/graph.ts';
import { KeyedStateBackend } from '../../../../state/keyed-state-backend.ts';
import { newBytesOf, type KeyedStateHandle } from '../../../../state/snapshot-handle.ts';
import { LocalFsSnapshotStorage } from '../../../../state/snapshot-storage.ts';
import { GatedSnapshotStorage } from '../../../support/gated-snapshot-storage.ts';
import { RecordingMetrics } from '../../../support/operator-context.ts';
import { makeStore, TempDirs, type StoreKind } from '../../state/helpers.ts';

const dirs = new TempDirs();
afterAll(() => dirs.cleanup());

interface Rec {
  readonly id: number;
  readonly seq: number;
}

const KEYS = 200;
const BATCHES = 12;
/** The barrier goes in after this many batches: the state at the barrier is batch 2's seq for every key. */
const BARRIER_AFTER = 2;
const batch = (seq: number): Rec[] =>
  Array.from({ length: KEYS }, (_, id) => ({ id: seq < BARRIER_AFTER ? id : id + (seq % 2) * KEYS, seq }));

/** Hands out BATCHES batches, then idles until `finish()`; records what it was polled for. */
function scriptedSource(): { definition: SourceDefinition<Rec>; finish: () => void; delivered: () => number } {
  let next = 0;
  let finished = false;
  const definition: SourceDefinition<Rec> = {
    name: 'scripted',
    createReader: () => ({
      open: () => Promise.resolve(),
      poll: async (): Promise<PollResult<Rec>> => {
        if (next < BATCHES)
          return { records: batch(next++).map((value) => ({ value, timestamp: undefined })), split: '0', bytes: 0 };
        await new Promise((resolve) => setImmediate(resolve));
        return finished ? 'end' : 'idle';
      },
      snapshot: () => ({ positions: [{ split: '0', position: String(next) }] }),
      close: () => Promise.resolve(),
    }),
  };
  return { definition, finish: () => (finished = true), delivered: () => next };
}

async function waitFor(predicate: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 10_000; i++) {
    if (predicate()) return;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  throw new Error(`gave up waiting for ${what}`);
}

async function harness(kind: StoreKind, storage: GatedSnapshotStorage) {
  const graph = new JobGraph();
  const source = scriptedSource();
  const sinkSeen: Rec[] = [];
  const acks: { uid: string; checkpointId: number; state: TaskSnapshot }[] = [];
  const declines: { uid: string; checkpointId: number; reason: string }[] = [];
  const ref: { runner?: SubtaskLoop } = {};
  const sink: SinkDefinition<Rec> = {
    name: 'seen',
    createOperator: () => ({
      processBatch(records: readonly StreamRecord<Rec>[]) {
        for (const r of records) sinkSeen.push(r.value);
        if (sinkSeen.length === BARRIER_AFTER * KEYS) ref.runner?.requestBarrier(1);
      },
      snapshotState: (): OperatorSnapshot => ({ seen: sinkSeen.length }),
    }),
  };
  const node = graph.add({
    name: 'source:scripted',
    explicitUid: 'src',
    inputs: [],
    source: source.definition as SourceDefinition<unknown>,
    factory: undefined,
    keySelector: undefined,
    isSink: false,
    sourceOptions: undefined,
  });
  new DataStream<Rec>(graph, node)
    .keyBy((r) => r.id)
    .process<Rec, { seq: ReturnType<typeof valueState<number>> }>({
      state: { seq: valueState<number>() },
      processElement(r, ctx, out) {
        ctx.state.seq.update(r.seq);
        out.emit(r);
      },
    })
    .uid('latest')
    .sinkTo(sink)
    .uid('sink');
  const backends: KeyedStateBackend[] = [];
  const runner = new SubtaskLoop({
    jobName: 'async-snapshot-test',
    graph,
    uids: graph.resolveUids(),
    restored: new Map(),
    pollWaitMs: 5,
    createKeyedBackend: async () => {
      const backend = new KeyedStateBackend({
        store: await makeStore(kind, dirs),
        keyGroupRange: { start: 0, end: 127 },
      });
      await backend.open();
      backends.push(backend);
      return {
        state: backend,
        beginSnapshot: async (id) => {
          const { done } = await backend.beginSnapshot(id, storage);
          return { done: done.then((handle) => ({ handle, bytes: newBytesOf(handle) })) };
        },
      };
    },
    metricsFor: () => new RecordingMetrics(),
    acknowledge: (checkpointId, state) => void acks.push({ uid: state.operatorUid, checkpointId, state }),
    decline: (uid, checkpointId, reason) => declines.push({ uid, checkpointId, reason }),
    hooks: { recordsIn: () => undefined, recordsOut: () => undefined, watermarkAdvanced: () => undefined },
  });
  ref.runner = runner;
  await runner.open();
  return { runner, source, sinkSeen, acks, declines };
}

async function restoredSeqs(
  kind: StoreKind,
  handle: KeyedStateHandle,
  storage: LocalFsSnapshotStorage,
): Promise<Map<number, number>> {
  const backend = new KeyedStateBackend({ store: await makeStore(kind, dirs), keyGroupRange: { start: 0, end: 127 } });
  await backend.open();
  const seq = backend.getValueState<number>({ name: 'seq' });
  await backend.restore([handle], { start: 0, end: 127 }, storage);
  const out = new Map<number, number>();
  for await (const key of backend.keys('seq')) {
    await backend.prefetch([key]);
    backend.setCurrentKey(key);
    out.set(key as number, seq.value() as number);
  }
  await backend.close();
  return out;
}

describe.each<StoreKind>(['memory', 'rocksdb'])('asynchronous snapshot phase in the task loop (%s)', (kind) => {
  it('processes records while the full snapshot is written; acks with exactly the state at the barrier', async () => {
    const storage = new LocalFsSnapshotStorage(await dirs.make('chk'));
    const gated = new GatedSnapshotStorage(storage);
    const h = await harness(kind, gated);
    const run = h.runner.run();
    // Every batch after the barrier reaches the sink while the keyed file cannot be finished (the
    // storage holds it): the loop does not wait for the write.
    await waitFor(
      () => h.sinkSeen.length === BATCHES * KEYS && gated.held === 1,
      'all records at the sink, the write held',
    );
    expect(gated.isOpen).toBe(false);
    expect(h.runner.snapshotsInFlight).toBe(1);
    expect(h.acks.map((a) => a.uid).sort()).toEqual(['sink', 'src']); // the barrier moved on at once
    expect(h.acks.find((a) => a.uid === 'sink')?.state.operator?.operator).toEqual({ seen: BARRIER_AFTER * KEYS });

    gated.open();
    await waitFor(() => h.acks.some((a) => a.uid === 'latest'), 'the keyed ack');
    const ack = h.acks.find((a) => a.uid === 'latest');
    expect(ack?.checkpointId).toBe(1);
    expect(h.declines).toEqual([]);
    h.source.finish();
    await run;
    await h.runner.close();

    const handle = ack?.state.keyed as KeyedStateHandle;
    expect(handle.files.map((f) => f.kind)).toEqual(['full']);
    const expected = new Map(Array.from({ length: KEYS }, (_, id) => [id, BARRIER_AFTER - 1]));
    expect(await restoredSeqs(kind, handle, storage)).toEqual(expected);
  });

  it('a failed write declines the checkpoint with the reason; the loop keeps running', async () => {
    const storage = new LocalFsSnapshotStorage(await dirs.make('chk'));
    const failing = new GatedSnapshotStorage(storage, { failWith: new Error('EIO: i/o error, write') });
    const h = await harness(kind, failing);
    const run = h.runner.run();
    await waitFor(() => h.declines.length === 1 && h.sinkSeen.length === BATCHES * KEYS, 'the decline and all records');
    expect(h.declines[0]).toMatchObject({ uid: 'latest', checkpointId: 1 });
    expect(h.declines[0]?.reason).toMatch(
      /full keyed-state snapshot of checkpoint 1 failed: .*EIO: i\/o error.*declined/,
    );
    expect(h.acks.map((a) => a.uid).sort()).toEqual(['sink', 'src']);
    h.source.finish();
    await run;
    await h.runner.close();
    expect(h.runner.snapshotsInFlight).toBe(0);
  });
});
