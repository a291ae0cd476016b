/**
 * The end of an input goes through barrier alignment like its elements: at parallelism 2 a window
 * subtask's channel ended while that channel was held back for a barrier, and the last channel's
 * end fired every window (+∞) before the held records were judged, so on-time records went late.
 */
import { describe, expect, it } from 'vitest';
import type { Operator, StreamRecord } from '../../../../operators/operator.ts';
import { OperatorRunner, type RunnerHooks } from '../../../../runtime/execution/operator-runner.ts';

function recordingRunner(inputCount: number): { runner: OperatorRunner; seen: string[] } {
  const seen: string[] = [];
  const operator: Operator<number, number> = {
    processBatch: (batch: readonly StreamRecord<number>[]) => void seen.push(`batch ${batch.map((r) => r.value).join(',')}`),
    onWatermark: (watermark: number) => void seen.push(`watermark ${watermark}`),
  };
  const hooks: RunnerHooks = {
    snapshotTaken: () => Promise.resolve(void seen.push('snapshot')),
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
