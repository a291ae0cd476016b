import { afterEach, describe, expect, it } from 'vitest';
import { EventTimeSessionWindows, StreamEnvironment, fromCollection } from '../../../../runtime/index.ts';
import { TempDirs, runWindows, sale, type Sale } from './harness.ts';

const dirs = new TempDirs();
afterEach(() => dirs.cleanup());
const sessions = EventTimeSessionWindows.withGap(3000);

describe('event-time session windows', () => {
  it('merges overlapping and touching sessions per key, also when an element bridges two', async () => {
    const sales = [
      sale('a', 1000, 1),
      sale('a', 2000, 2), // [1 s, 5 s)
      sale('a', 9000, 4), // [9 s, 12 s)
      sale('a', 6000, 8), // [6 s, 9 s) touches [9 s, 12 s): [6 s, 12 s)
      sale('b', 1000, 16), // other key, own session
      sale('a', 4500, 32), // [4.5 s, 7.5 s) bridges [1 s, 5 s) and [6 s, 12 s)
      sale('a', 20_000, 64),
    ];
    // A 20 s bound keeps every session open until the end of input.
    const run = await runWindows(dirs.make(), sales, {
      assigner: sessions,
      batchSize: 1,
      boundMs: 20_000,
      latenessMs: 0,
      withTag: true,
    });
    expect(run.results).toEqual([
      { key: 'b', start: 1000, end: 4000, sum: 16, count: 1, firing: 'on-time', updateCount: 0 },
      { key: 'a', start: 1000, end: 12_000, sum: 47, count: 5, firing: 'on-time', updateCount: 0 },
      { key: 'a', start: 20_000, end: 23_000, sum: 64, count: 1, firing: 'on-time', updateCount: 0 },
    ]);
  });

  it('a late element that extends a fired session re-fires the merged session as an update', async () => {
    const sales = [
      sale('a', 1000, 1), // [1 s, 4 s)
      sale('a', 5000, 2), // watermark 4 999: [1 s, 4 s) fires
      sale('a', 3500, 4), // [3.5 s, 6.5 s) merges both: [1 s, 8 s), end not yet passed
      sale('a', 9000, 8), // watermark 8 999: [1 s, 8 s) fires — its second result
      sale('a', 2000, 16), // inside [1 s, 8 s), within lateness: late update
      sale('a', 30_000, 32), // watermark 29 999: everything up to 18 s is cleared
      sale('a', 2500, 64), // late
    ];
    const run = await runWindows(dirs.make(), sales, {
      assigner: sessions,
      batchSize: 1,
      boundMs: 0,
      latenessMs: 10_000,
      withTag: true,
    });
    expect(run.results).toEqual([
      { key: 'a', start: 1000, end: 4000, sum: 1, count: 1, firing: 'on-time', updateCount: 0 },
      { key: 'a', start: 1000, end: 8000, sum: 7, count: 3, firing: 'on-time', updateCount: 1 },
      { key: 'a', start: 1000, end: 8000, sum: 23, count: 4, firing: 'late-update', updateCount: 2 },
      { key: 'a', start: 9000, end: 12_000, sum: 8, count: 1, firing: 'on-time', updateCount: 0 },
      { key: 'a', start: 30_000, end: 33_000, sum: 32, count: 1, firing: 'on-time', updateCount: 0 },
    ]);
    expect(run.late).toEqual([sale('a', 2500, 64)]);
  });

  it('refuses an AggregateFunction without merge when the job is built', () => {
    const env = StreamEnvironment.create({ jobName: 'session-no-merge', log: () => undefined });
    const windowed = env
      .fromSource(fromCollection<Sale>([]))
      .keyBy((s) => s.key)
      .window(sessions);
    expect(() =>
      windowed.aggregate({ createAccumulator: () => 0, add: (s, acc) => acc + s.amount, getResult: (acc) => acc }),
    ).toThrow(/merge/);
  });
});
