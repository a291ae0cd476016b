import { afterEach, describe, expect, it } from 'vitest';
import {
  TumblingEventTimeWindows,
  WatermarkStrategy,
  collectSink,
  type DataStream,
  type SourceDefinition,
  type SourceReader,
  type StreamEnvironment,
  type WindowResult,
} from '../../../../runtime/index.ts';
import { TempDirs, sale, testEnvironment, total, type Sale, type Total } from './harness.ts';

const dirs = new TempDirs();
afterEach(() => dirs.cleanup());
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Two splits of one unbounded source: split 'quiet' yields one record and then nothing; split
 * 'busy' yields a record per poll, every 10 ms, from 0 s to 30 s of event time; then the source
 * idles until the job is stopped.
 */
function twoSplitSource(): SourceDefinition<Sale> {
  return {
    name: 'two-splits',
    createReader: (): SourceReader<Sale> => {
      let quietDone = false;
      let busyNext = 0;
      return {
        open: () => Promise.resolve(),
        poll: async (maxWaitMs) => {
          await sleep(Math.min(maxWaitMs, 10));
          if (!quietDone) {
            quietDone = true;
            return { records: [{ value: sale('k', 500), timestamp: undefined }], split: 'quiet', bytes: 64 };
          }
          if (busyNext > 30_000) return 'idle';
          const record = { value: sale('k', busyNext), timestamp: undefined };
          busyNext += 1000;
          return { records: [record], split: 'busy', bytes: 64 };
        },
        snapshot: () => ({ positions: [] }),
        close: () => Promise.resolve(),
      };
    },
  };
}

async function runUntil(
  idlenessMs: number | undefined,
  done: (results: readonly WindowResult<string, Total>[]) => boolean,
  maxMs: number,
) {
  const env = testEnvironment(dirs.make());
  const bounded = WatermarkStrategy.boundedOutOfOrderness<Sale>(0).withTimestamps((s) => s.ts);
  const sales = env.fromSource(twoSplitSource(), {
    watermarks: idlenessMs === undefined ? bounded : bounded.withIdleness(idlenessMs),
  });
  return windowTotalsUntil(env, sales, done, maxMs);
}

/** Sums `sales` per key in 10 s tumbling windows and runs the job until `done` holds or `maxMs` passed. */
async function windowTotalsUntil(
  env: StreamEnvironment,
  sales: DataStream<Sale>,
  done: (results: readonly WindowResult<string, Total>[]) => boolean,
  maxMs: number,
) {
  const results: WindowResult<string, Total>[] = [];
  sales
    .keyBy((s) => s.key)
    .window(TumblingEventTimeWindows.of(10_000))
    .aggregate(total)
    .sinkTo(collectSink(results));
  const running = env.execute();
  const started = Date.now();
  while (!done(results) && Date.now() - started < maxMs) await sleep(10);
  void env.stop();
  await running;
  return results;
}

describe('an idle split', () => {
  it('stops holding the watermark back once idle, so windows fire while other splits run', async () => {
    const results = await runUntil(50, (r) => r.length >= 2, 10_000);
    expect(results.map((r) => [r.window.start, r.result.sum, r.firing])).toEqual([
      [0, 11, 'on-time'], // 500 from the quiet split and 0..9 s from the busy one
      [10_000, 10, 'on-time'],
    ]);
  });

  it('without idleness holds every window back (the control)', async () => {
    const results = await runUntil(undefined, () => false, 600);
    expect(results).toEqual([]);
  });
});

/** A source whose reader owns no split: `assignment` is what its `assignedSplits()` says (undefined: not known yet). */
function splitlessSource(assignment: readonly string[] | undefined): SourceDefinition<Sale> {
  return {
    name: 'splitless',
    createReader: (): SourceReader<Sale> => ({
      open: () => Promise.resolve(),
      poll: async (maxWaitMs) => {
        await sleep(Math.min(maxWaitMs, 10));
        return 'idle';
      },
      snapshot: () => ({ positions: [] }),
      assignedSplits: () => assignment,
      close: () => Promise.resolve(),
    }),
  };
}

/** One split with a record per poll, 1 s of event time apart, from 0 s to 30 s; then idle. */
function busySource(): SourceDefinition<Sale> {
  return {
    name: 'busy',
    createReader: (): SourceReader<Sale> => {
      let next = 0;
      return {
        open: () => Promise.resolve(),
        poll: async (maxWaitMs) => {
          await sleep(Math.min(maxWaitMs, 10));
          if (next > 30_000) return 'idle';
          const record = { value: sale('k', next), timestamp: undefined };
          next += 1000;
          return { records: [record], split: 'busy', bytes: 64 };
        },
        snapshot: () => ({ positions: [] }),
        assignedSplits: () => ['busy'],
        close: () => Promise.resolve(),
      };
    },
  };
}

async function runUnion(
  assignment: readonly string[] | undefined,
  done: (results: readonly WindowResult<string, Total>[]) => boolean,
  maxMs: number,
) {
  const env = testEnvironment(dirs.make());
  // No withIdleness: only the empty assignment may make the splitless source stop holding back.
  const watermarks = WatermarkStrategy.boundedOutOfOrderness<Sale>(0).withTimestamps((s) => s.ts);
  const sales = env
    .fromSource(busySource(), { watermarks })
    .union(env.fromSource(splitlessSource(assignment), { watermarks }));
  return windowTotalsUntil(env, sales, done, maxMs);
}

describe('a source that owns no split', () => {
  it('is idle without withIdleness, so the other input alone fires the windows', async () => {
    const results = await runUnion([], (r) => r.length >= 3, 10_000);
    expect(results.map((r) => [r.window.start, r.result.sum, r.firing])).toEqual([
      [0, 10, 'on-time'],
      [10_000, 10, 'on-time'],
      [20_000, 10, 'on-time'],
    ]);
  });

  it('holds the windows back while its assignment is not known yet (the control)', async () => {
    const results = await runUnion(undefined, () => false, 600);
    expect(results).toEqual([]);
  });
});
