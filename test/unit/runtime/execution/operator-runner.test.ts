/**
 * The end of an input goes through barrier alignment like its elements: at parallelism 2 a window
 * subtask's channel ended while that channel was held back for a barrier, and the last channel's
 * end fired every window (+∞) before the held records were judged, so on-time records went late.
 */
import { describe, expect, it } from 'vitest';
import type { Operator, StreamRecord } from '../../../../operators/operator.ts';
import { OperatorRunner, type RunnerHooks } from '../../../../runtime/execution/operator-runner.ts';
import { ReentrantOperatorCallError } from '../../../../runtime/execution/reentrant-call-error.ts';

function recordingRunner(inputCount: number, snapshotTaken: () => Promise<void> = () => Promise.resolve()): { runner: OperatorRunner; seen: string[] } {
  const seen: string[] = [];
  const operator: Operator<number, number> = {
    processBatch: (batch: readonly StreamRecord<number>[]) => void seen.push(`batch ${batch.map((r) => r.value).join(',')}`),
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
  return { runner: new OperatorRunner('op', 'op', operator as Operator<unknown, unknown>, inputCount, undefined, hooks), seen };
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

describe('operator runner: one caller at a time', () => {
  it('refuses an element pushed while the aligned snapshot is still being acknowledged, instead of letting it overtake the held ones', async () => {
    let release: () => void = () => undefined;
    const acknowledged = new Promise<void>((resolve) => (release = resolve));
    const { runner, seen } = recordingRunner(2, () => acknowledged);
    await runner.pushBarrier(0, 3);
    await runner.push(0, { kind: 'batch', records: [{ value: 1, timestamp: 1 }] }); // held behind barrier 3
    const aligning = runner.pushBarrier(1, 3);
    await Promise.resolve();
    await expect(runner.push(0, { kind: 'batch', records: [{ value: 2, timestamp: 2 }] })).rejects.toBeInstanceOf(ReentrantOperatorCallError);
    release();
    await aligning;
    expect(seen).toEqual(['snapshot', 'batch 1']);
    // The runner is usable again once the barrier's work finished.
    await runner.push(0, { kind: 'batch', records: [{ value: 3, timestamp: 3 }] });
    expect(seen).toEqual(['snapshot', 'batch 1', 'batch 3']);
  });
});
