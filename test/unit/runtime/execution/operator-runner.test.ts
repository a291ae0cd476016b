/**
 * The end of an input goes through barrier alignment like its elements: at parallelism 2 a window
 * subtask's channel ended while that channel was held back for a barrier, and the last channel's
 * end fired every window (+∞) before the held records were judged, so on-time records went late.
 */
import { describe, expect, it } from 'vitest';
import type { Operator, StreamRecord } from '../../../../operators/operator.ts';
import { OperatorRunner, type RunnerHooks } from '../../../../runtime/execution/operator-runner.ts';
import { ReentrantOperatorCallError } from '../../../../runtime/execution/reentrant-call-error.ts';
import { KeyedStateBackend, MemoryStore, type KeyedStateView, type ValueState } from '../../../../state/index.ts';

function recordingRunner(
  inputCount: number,
  snapshotTaken: () => Promise<void> = () => Promise.resolve(),
): { runner: OperatorRunner; seen: string[] } {
  const seen: string[] = [];
  const operator: Operator<number, number> = {
    processBatch: (batch: readonly StreamRecord<number>[]) =>
      void seen.push(`batch ${batch.map((r) => r.value).join(',')}`),
    onWatermark: (watermark: number) => void seen.push(`watermark ${watermark}`),
  };
  const hooks: RunnerHooks = {
    snapshotTaken: async () => {
      seen.push('snapshot');
      await snapshotTaken();
    },
    recordsIn: () => undefined,
    recordsOut: () => undefined,
    watermarkAdvanced: () => undefined,
  };
  return {
    runner: new OperatorRunner('op', 'op', operator as Operator<unknown, unknown>, inputCount, undefined, hooks),
    seen,
  };
}

describe('operator runner: end of input and barrier alignment', () => {
  it('an input that ends while held for a barrier ends after what it sent before', async () => {
    const { runner, seen } = recordingRunner(2);
    // Channel 1 is done, +∞ first as the exchange sends it; its barrier follows later (a subtask
    // whose sources ended still serves barriers).
    await runner.push(1, { kind: 'watermark', timestamp: Number.POSITIVE_INFINITY });
    await runner.endInput(1);
    await runner.pushBarrier(0, 7);
    await runner.push(0, { kind: 'batch', records: [{ value: 1, timestamp: 10 }] });
    await runner.push(0, { kind: 'watermark', timestamp: 20 });
    await runner.endInput(0);
    expect(seen).toEqual([]);
    await runner.pushBarrier(1, 7);
    expect(seen).toEqual(['snapshot', 'batch 1', 'watermark 20', 'watermark Infinity']);
  });

  it('an input that is not held ends at once', async () => {
    const { runner, seen } = recordingRunner(2);
    await runner.push(1, { kind: 'watermark', timestamp: Number.POSITIVE_INFINITY });
    await runner.endInput(1);
    await runner.push(0, { kind: 'watermark', timestamp: 5 });
    expect(seen).toEqual(['watermark 5']);
    await runner.endInput(0);
    expect(seen).toEqual(['watermark 5', 'watermark Infinity']);
  });
});

/** A runner over `inputCount` channels whose downstream records every element it is sent. */
function forwardingRunner(inputCount: number): { runner: OperatorRunner; seen: string[]; sent: string[] } {
  const { runner, seen } = recordingRunner(inputCount);
  const sent: string[] = [];
  runner.downstream.push({
    runner: {
      push: (_input, element) =>
        Promise.resolve(void sent.push(element.kind === 'watermark' ? `watermark ${element.timestamp}` : element.kind)),
      pushBarrier: (_input, id) => Promise.resolve(void sent.push(`barrier ${id}`)),
      endInput: () => Promise.resolve(void sent.push('end')),
    },
    input: 0,
    sideOutput: undefined,
  });
  return { runner, seen, sent };
}

describe('operator runner: idle inputs', () => {
  it('an idle channel (a subtask owning no split) is left out; all idle makes the operator idle downstream, once', async () => {
    const { runner, seen, sent } = forwardingRunner(3);
    await runner.push(2, { kind: 'idle' });
    await runner.push(0, { kind: 'watermark', timestamp: 10 });
    await runner.push(1, { kind: 'watermark', timestamp: 20 });
    expect(seen).toEqual(['watermark 10']);
    await runner.push(0, { kind: 'idle' });
    await runner.push(1, { kind: 'idle' });
    await runner.push(1, { kind: 'idle' });
    // Channel 1 held the minimum when the last one went idle: flushed to the highest, then idle.
    expect(sent).toEqual(['watermark 10', 'watermark 20', 'idle']);
  });

  it('a channel active again makes the operator active downstream before anything else, without moving the watermark back', async () => {
    const { runner, seen, sent } = forwardingRunner(2);
    await runner.push(0, { kind: 'watermark', timestamp: 100 });
    await runner.push(1, { kind: 'watermark', timestamp: 100 });
    await runner.push(0, { kind: 'idle' });
    await runner.push(1, { kind: 'idle' });
    await runner.push(1, { kind: 'active' });
    await runner.push(1, { kind: 'batch', records: [{ value: 7, timestamp: 50 }] });
    await runner.push(1, { kind: 'watermark', timestamp: 60 });
    expect(runner.currentWatermark).toBe(100);
    await runner.push(1, { kind: 'watermark', timestamp: 150 });
    expect(seen).toEqual(['watermark 100', 'batch 7', 'watermark 150']);
    expect(sent).toEqual(['watermark 100', 'idle', 'active', 'watermark 150']);
  });

  it('barriers still align over an idle channel (its subtask still sends them)', async () => {
    const { runner, seen, sent } = forwardingRunner(2);
    await runner.push(1, { kind: 'idle' });
    await runner.pushBarrier(0, 3);
    await runner.push(0, { kind: 'watermark', timestamp: 5 });
    expect(seen).toEqual([]);
    await runner.pushBarrier(1, 3);
    expect(seen).toEqual(['snapshot', 'watermark 5']);
    expect(sent).toEqual(['barrier 3', 'watermark 5']);
  });

  it('end of input on every channel still ends the operator when one channel was idle throughout', async () => {
    const { runner, seen, sent } = forwardingRunner(2);
    await runner.push(1, { kind: 'idle' });
    await runner.push(0, { kind: 'watermark', timestamp: 5 });
    await runner.push(1, { kind: 'watermark', timestamp: Number.POSITIVE_INFINITY });
    await runner.endInput(1);
    await runner.push(0, { kind: 'watermark', timestamp: Number.POSITIVE_INFINITY });
    await runner.endInput(0);
    // (+∞ twice: once from channel 0's watermark, once from the end of the last input.)
    expect(seen).toEqual(['watermark 5', 'watermark Infinity', 'watermark Infinity']);
    expect(sent.at(-1)).toBe('end');
  });
});

describe('operator runner: one caller at a time', () => {
  it('refuses an element pushed while the aligned snapshot is still being acknowledged, instead of letting it overtake the held ones', async () => {
    let release: () => void = () => undefined;
    const acknowledged = new Promise<void>((resolve) => (release = resolve));
    const { runner, seen } = recordingRunner(2, () => acknowledged);
    await runner.pushBarrier(0, 3);
    await runner.push(0, { kind: 'batch', records: [{ value: 1, timestamp: 1 }] }); // held behind barrier 3
    const aligning = runner.pushBarrier(1, 3);
    await Promise.resolve();
    await expect(runner.push(0, { kind: 'batch', records: [{ value: 2, timestamp: 2 }] })).rejects.toBeInstanceOf(
      ReentrantOperatorCallError,
    );
    release();
    await aligning;
    expect(seen).toEqual(['snapshot', 'batch 1']);
    // The runner is usable again once the barrier's work finished.
    await runner.push(0, { kind: 'batch', records: [{ value: 3, timestamp: 3 }] });
    expect(seen).toEqual(['snapshot', 'batch 1', 'batch 3']);
  });
});

describe('operator runner: the keyed state of a batch', () => {
  const hooks: RunnerHooks = {
    snapshotTaken: () => Promise.resolve(),
    recordsIn: () => undefined,
    recordsOut: () => undefined,
    watermarkAdvanced: () => undefined,
  };

  async function openBackend(store: MemoryStore): Promise<KeyedStateBackend> {
    const backend = new KeyedStateBackend({ store, keyGroupRange: { start: 0, end: 127 } });
    await backend.open();
    return backend;
  }

  /** Counts per key, touching state only through the operator's view: no prefetch, no flush. */
  function countingOperator(fail: (key: string) => boolean = () => false): {
    operator: Operator<string, never>;
    opened: (view: KeyedStateView) => void;
  } {
    let view: KeyedStateView | undefined;
    let count: ValueState<number> | undefined;
    const operator: Operator<string, never> = {
      processBatch(batch) {
        for (const record of batch) {
          view?.setCurrentKey(record.key);
          count?.update((count.value() ?? 0) + 1);
          if (fail(record.key as string)) throw new Error(`boom at ${String(record.key)}`);
        }
      },
    };
    return { operator, opened: (v) => ((view = v), (count = v.getValueState<number>({ name: 'count' }))) };
  }

  async function storedCount(store: MemoryStore, key: string): Promise<number | undefined> {
    const reader = await openBackend(store);
    const count = reader.getValueState<number>({ name: 'count' });
    return reader.withKeys([key], () => (reader.setCurrentKey(key), count.value()));
  }

  it('loads every key of the batch before processBatch and writes the changes back after it', async () => {
    const store = new MemoryStore();
    const backend = await openBackend(store);
    const { operator, opened } = countingOperator();
    opened(backend);
    const runner = new OperatorRunner(
      'counts',
      'counts',
      operator as Operator<unknown, unknown>,
      1,
      (value) => value,
      hooks,
      undefined,
      backend,
    );
    await runner.push(0, { kind: 'batch', records: ['a', 'b', 'a'].map((value) => ({ value, timestamp: undefined })) });
    // Written to the store (read through a second backend on it), not only cached.
    expect(await storedCount(store, 'a')).toBe(2);
    expect(await storedCount(store, 'b')).toBe(1);
  });

  it('writes nothing back when processBatch throws', async () => {
    const store = new MemoryStore();
    const backend = await openBackend(store);
    const { operator, opened } = countingOperator((key) => key === 'b');
    opened(backend);
    const runner = new OperatorRunner(
      'counts',
      'counts',
      operator as Operator<unknown, unknown>,
      1,
      (value) => value,
      hooks,
      undefined,
      backend,
    );
    await expect(
      runner.push(0, { kind: 'batch', records: ['a', 'b'].map((value) => ({ value, timestamp: undefined })) }),
    ).rejects.toThrow(/boom at b/);
    expect(await storedCount(store, 'a')).toBeUndefined();
  });
});

describe('operator runner: two checkpoints in flight', () => {
  it('holds barrier n+1 on an input that already gave barrier n, and aligns it after n, records in order', async () => {
    const { runner, seen, sent } = forwardingRunner(2);
    await runner.pushBarrier(0, 1);
    await runner.push(0, { kind: 'batch', records: [{ value: 1, timestamp: 1 }] });
    await runner.pushBarrier(0, 2);
    await runner.push(0, { kind: 'batch', records: [{ value: 2, timestamp: 2 }] });
    expect(seen).toEqual([]);
    await runner.push(1, { kind: 'batch', records: [{ value: 10, timestamp: 1 }] });
    await runner.pushBarrier(1, 1);
    // Barrier 1 aligned: record 1 runs, then input 0 blocks again at barrier 2 (record 2 held).
    expect(seen).toEqual(['batch 10', 'snapshot', 'batch 1']);
    await runner.push(1, { kind: 'batch', records: [{ value: 11, timestamp: 2 }] });
    await runner.pushBarrier(1, 2);
    expect(seen).toEqual(['batch 10', 'snapshot', 'batch 1', 'batch 11', 'snapshot', 'batch 2']);
    expect(sent.filter((s) => s.startsWith('barrier'))).toEqual(['barrier 1', 'barrier 2']);
  });
});
