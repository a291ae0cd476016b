import { afterEach, describe, expect, it } from 'vitest';
import {
  TumblingEventTimeWindows,
  WatermarkStrategy,
  collectSink,
  fromCollection,
  type WindowResult,
} from '../../../../runtime/index.ts';
import { TempDirs, runWindows, sale, testEnvironment, total, type Sale } from './harness.ts';

const dirs = new TempDirs();
const tumbling = TumblingEventTimeWindows.of(10_000);
afterEach(() => dirs.cleanup());

describe('tumbling event-time windows', () => {
  it('fires each window once, on time, when events are out of order within the bound', async () => {
    const sales = [
      sale('a', 1000, 1),
      sale('b', 2000, 10),
      sale('a', 3500, 2),
      sale('a', 2500, 4),
      sale('b', 9999, 20),
      sale('a', 11_000, 8),
      sale('a', 9500, 16),
      sale('a', 12_000, 32),
      sale('a', 21_000, 64),
    ];
    const run = await runWindows(dirs.make(), sales, {
      assigner: tumbling,
      batchSize: 1,
      boundMs: 2000,
      latenessMs: 0,
      withTag: true,
    });
    expect(run.results).toEqual([
      { key: 'a', start: 0, end: 10_000, sum: 23, count: 4, firing: 'on-time', updateCount: 0 },
      { key: 'b', start: 0, end: 10_000, sum: 30, count: 2, firing: 'on-time', updateCount: 0 },
      { key: 'a', start: 10_000, end: 20_000, sum: 40, count: 2, firing: 'on-time', updateCount: 0 },
      { key: 'a', start: 20_000, end: 30_000, sum: 64, count: 1, firing: 'on-time', updateCount: 0 },
    ]);
    expect(run.late).toEqual([]);
    expect(run.lateCount).toBe(0);
  });

  it('fires when the watermark reaches end - 1, not before', async () => {
    const fired: { start: number; watermark: number; elements: number[] }[] = [];
    const env = testEnvironment(dirs.make());
    env
      .fromSource(fromCollection([sale('a', 1000), sale('a', 11_999), sale('a', 12_000)], { batchSize: 1 }), {
        watermarks: WatermarkStrategy.boundedOutOfOrderness<Sale>(2000).withTimestamps((s) => s.ts),
      })
      .keyBy((s) => s.key)
      .window(TumblingEventTimeWindows.of(10_000))
      .process<{ start: number; watermark: number; elements: number[] }>({
        process: (_key, ctx, elements, out) =>
          out.emit({ start: ctx.window.start, watermark: ctx.currentWatermark, elements: elements.map((s) => s.ts) }),
      })
      .sinkTo(collectSink(fired));
    await env.execute();
    // 11 999 makes the watermark 9 998: not yet; 12 000 makes it 9 999 = end - 1: fire.
    expect(fired[0]).toEqual({ start: 0, watermark: 9999, elements: [1000] });
    expect(fired[1]).toEqual({ start: 10_000, watermark: Number.POSITIVE_INFINITY, elements: [11_999, 12_000] });
  });

  it('re-fires a window for late events within the allowed lateness, then clears it', async () => {
    const sales = [
      sale('a', 1000, 1),
      sale('a', 10_500, 2), // watermark 10 499: [0, 10 s) fires
      sale('a', 5000, 4), // late, within lateness (9 999 + 5 000 > 10 499): update
      sale('a', 7000, 8), // another update
      sale('a', 14_999, 16), // watermark 14 998: still (just) within lateness
      sale('a', 9000, 32), // accepted: 9 999 + 5 000 <= 14 998 is false
      sale('a', 15_000, 64), // watermark 14 999: [0, 10 s) is cleared
      sale('a', 9100, 128), // beyond the lateness: side output
    ];
    const run = await runWindows(dirs.make(), sales, {
      assigner: tumbling,
      batchSize: 1,
      boundMs: 0,
      latenessMs: 5000,
      withTag: true,
    });
    expect(run.results).toEqual([
      { key: 'a', start: 0, end: 10_000, sum: 1, count: 1, firing: 'on-time', updateCount: 0 },
      { key: 'a', start: 0, end: 10_000, sum: 5, count: 2, firing: 'late-update', updateCount: 1 },
      { key: 'a', start: 0, end: 10_000, sum: 13, count: 3, firing: 'late-update', updateCount: 2 },
      { key: 'a', start: 0, end: 10_000, sum: 45, count: 4, firing: 'late-update', updateCount: 3 },
      { key: 'a', start: 10_000, end: 20_000, sum: 82, count: 3, firing: 'on-time', updateCount: 0 },
    ]);
    expect(run.late).toEqual([sale('a', 9100, 128)]);
    expect(run.lateCount).toBe(1);
    expect(run.dropped).toBe(0);
  });

  it('re-fires once per batch however many late events of the batch changed the window', async () => {
    const sales = [sale('a', 1000, 1), sale('a', 10_500, 2), sale('a', 5000, 4), sale('a', 7000, 8)];
    const run = await runWindows(dirs.make(), sales, {
      assigner: tumbling,
      batchSize: 2,
      boundMs: 0,
      latenessMs: 5000,
      withTag: true,
    });
    expect(run.results).toEqual([
      { key: 'a', start: 0, end: 10_000, sum: 1, count: 1, firing: 'on-time', updateCount: 0 },
      { key: 'a', start: 0, end: 10_000, sum: 13, count: 3, firing: 'late-update', updateCount: 1 },
      { key: 'a', start: 10_000, end: 20_000, sum: 2, count: 1, firing: 'on-time', updateCount: 0 },
    ]);
  });

  it('sends events beyond the allowed lateness to the side output and counts them', async () => {
    const sales = [
      sale('a', 1000, 1),
      sale('b', 10_000, 2),
      sale('a', 2000, 4),
      sale('b', 9999, 8),
      sale('a', 10_001, 16),
    ];
    const run = await runWindows(dirs.make(), sales, {
      assigner: tumbling,
      batchSize: 1,
      boundMs: 0,
      latenessMs: 0,
      withTag: true,
    });
    expect(run.results).toEqual([
      { key: 'a', start: 0, end: 10_000, sum: 1, count: 1, firing: 'on-time', updateCount: 0 },
      { key: 'a', start: 10_000, end: 20_000, sum: 16, count: 1, firing: 'on-time', updateCount: 0 },
      { key: 'b', start: 10_000, end: 20_000, sum: 2, count: 1, firing: 'on-time', updateCount: 0 },
    ]);
    expect(run.late).toEqual([sale('a', 2000, 4), sale('b', 9999, 8)]);
    expect(run.lateCount).toBe(2);
    expect(run.dropped).toBe(0);
  });

  it('without a side output drops late events but still counts them', async () => {
    const sales = [sale('a', 1000, 1), sale('a', 10_000, 2), sale('a', 2000, 4)];
    const run = await runWindows(dirs.make(), sales, {
      assigner: tumbling,
      batchSize: 1,
      boundMs: 0,
      latenessMs: 0,
      withTag: false,
    });
    expect(run.results.map((r) => r.sum)).toEqual([1, 2]);
    expect(run.late).toEqual([]);
    expect(run.lateCount).toBe(1);
    expect(run.dropped).toBe(1);
  });

  it('reduces a window to one element', async () => {
    const out: WindowResult<string, Sale>[] = [];
    const env = testEnvironment(dirs.make());
    env
      .fromSource(
        fromCollection([sale('a', 1, 1), sale('a', 2, 2), sale('b', 3, 4), sale('a', 10_003, 8)], { batchSize: 2 }),
        {
          watermarks: WatermarkStrategy.forMonotonousTimestamps<Sale>().withTimestamps((s) => s.ts),
        },
      )
      .keyBy((s) => s.key)
      .window(TumblingEventTimeWindows.of(10_000))
      .reduce((x, y) => ({ key: x.key, ts: Math.max(x.ts, y.ts), amount: x.amount + y.amount }))
      .sinkTo(collectSink(out));
    await env.execute();
    expect(out.map((r) => [r.key, r.window.start, r.result.amount, r.result.ts])).toEqual([
      ['a', 0, 3, 2],
      ['b', 0, 4, 3],
      ['a', 10_000, 8, 10_003],
    ]);
  });

  it('refuses records without event time', async () => {
    const env = testEnvironment(dirs.make(), { maxAttempts: 0 });
    env
      .fromSource(fromCollection([sale('a', 1)]))
      .keyBy((s) => s.key)
      .window(TumblingEventTimeWindows.of(1000))
      .aggregate(total)
      .sinkTo(collectSink([]));
    await expect(env.execute()).rejects.toThrow(/without event time/);
  });
});
