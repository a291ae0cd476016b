import { afterEach, describe, expect, it } from 'vitest';
import { SlidingEventTimeWindows } from '../../../../runtime/index.ts';
import { TempDirs, runWindows, sale } from './harness.ts';

const dirs = new TempDirs();
afterEach(() => dirs.cleanup());

describe('sliding event-time windows', () => {
  it('puts each element in size/slide windows and fires each when the watermark passes its end', async () => {
    const sales = [
      sale('a', 1000, 1), // [-5 s, 5 s) and [0, 10 s)
      sale('a', 7000, 2), // [0, 10 s) and [5 s, 15 s)
      sale('a', 12_000, 4), // watermark 11 999: [-5 s, 5 s) and [0, 10 s) fire
      sale('a', 6000, 8), // [0, 10 s) is late, [5 s, 15 s) is not: goes there only
      sale('a', 3000, 16), // both its windows are late: side output
    ];
    const run = await runWindows(dirs.make(), sales, {
      assigner: SlidingEventTimeWindows.of(10_000, 5000),
      batchSize: 1,
      boundMs: 0,
      latenessMs: 0,
      withTag: true,
    });
    expect(run.results).toEqual([
      { key: 'a', start: -5000, end: 5000, sum: 1, count: 1, firing: 'on-time', updateCount: 0 },
      { key: 'a', start: 0, end: 10_000, sum: 3, count: 2, firing: 'on-time', updateCount: 0 },
      { key: 'a', start: 5000, end: 15_000, sum: 14, count: 3, firing: 'on-time', updateCount: 0 },
      { key: 'a', start: 10_000, end: 20_000, sum: 4, count: 1, firing: 'on-time', updateCount: 0 },
    ]);
    expect(run.late).toEqual([sale('a', 3000, 16)]);
    expect(run.lateCount).toBe(1);
  });

  it('re-fires only the windows a late element (within the lateness) changed', async () => {
    const sales = [sale('a', 1000, 1), sale('a', 10_500, 2), sale('a', 4000, 4)];
    const run = await runWindows(dirs.make(), sales, {
      assigner: SlidingEventTimeWindows.of(10_000, 5000),
      batchSize: 1,
      boundMs: 0,
      latenessMs: 3000,
      withTag: true,
    });
    // Watermark 10 499 fired [-5 s, 5 s) and [0, 10 s) and cleared [-5 s, 5 s) (4 999 + 3 000 <= 10 499);
    // 4 000 is too late for that one but not for [0, 10 s) (9 999 + 3 000 > 10 499): only it re-fires.
    expect(run.results).toEqual([
      { key: 'a', start: -5000, end: 5000, sum: 1, count: 1, firing: 'on-time', updateCount: 0 },
      { key: 'a', start: 0, end: 10_000, sum: 1, count: 1, firing: 'on-time', updateCount: 0 },
      { key: 'a', start: 0, end: 10_000, sum: 5, count: 2, firing: 'late-update', updateCount: 1 },
      { key: 'a', start: 5000, end: 15_000, sum: 2, count: 1, firing: 'on-time', updateCount: 0 },
      { key: 'a', start: 10_000, end: 20_000, sum: 2, count: 1, firing: 'on-time', updateCount: 0 },
    ]);
    expect(run.late).toEqual([]);
    expect(run.lateCount).toBe(0);
  });
});
