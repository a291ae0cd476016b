import { afterEach, describe, expect, it } from 'vitest';
import {
  OutputTag,
  TumblingEventTimeWindows,
  WatermarkStrategy,
  collectSink,
  type SourceDefinition,
  type SourceReader,
  type WindowResult,
} from '../../../../runtime/index.ts';
import { TempDirs, brief, failingOnceSource, sale, testEnvironment, total, type Sale, type Total } from './harness.ts';

const dirs = new TempDirs();
afterEach(() => dirs.cleanup());

const SIZE = 5000;
const BOUND = 2000;
const LATENESS = 4000;
const BATCH = 10;

/** 400 sales over 40 s of event time, up to 4.5 s behind (past the 2 s bound: some late within the lateness), 5 % 20 s late. */
function salesStream(): Sale[] {
  let seed = 42;
  const random = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const sales: Sale[] = [];
  for (let i = 1; i <= 400; i++) {
    const jitter = Math.floor(random() * 4500);
    // The first sale after the restore point (index 200) is late too: judging it needs the restored watermark.
    const lateBy = random() < 0.05 || i === 201 ? 20_000 : 0;
    sales.push(sale(['a', 'b', 'c'][i % 3] as string, i * 100 - jitter - lateBy, 1 + Math.floor(random() * 100)));
  }
  return sales;
}

/** The same rule, computed directly: a batch is judged by the watermark after the batch before it. */
function oracle(sales: readonly Sale[]) {
  let watermark = Number.NEGATIVE_INFINITY;
  let maxTs = Number.NEGATIVE_INFINITY;
  const windows = new Map<string, { sum: number; count: number }>();
  const late: Sale[] = [];
  for (let i = 0; i < sales.length; i += BATCH) {
    const batch = sales.slice(i, i + BATCH);
    for (const s of batch) {
      const start = s.ts - (((s.ts % SIZE) + SIZE) % SIZE);
      if (start + SIZE - 1 + LATENESS <= watermark) {
        late.push(s);
        continue;
      }
      const w = windows.get(`${s.key}|${start}`) ?? { sum: 0, count: 0 };
      windows.set(`${s.key}|${start}`, { sum: w.sum + s.amount, count: w.count + 1 });
    }
    for (const s of batch) maxTs = Math.max(maxTs, s.ts);
    watermark = Math.max(watermark, maxTs - BOUND - 1);
  }
  return { windows, late };
}

async function run(backend: 'memory' | 'rocksdb', attempts: { failed: boolean }) {
  const results: WindowResult<string, Total>[] = [];
  const late: Sale[] = [];
  const tag = new OutputTag<Sale>('late');
  const env = testEnvironment(dirs.make(), { backend });
  const windows = env
    .fromSource(failingOnceSource(salesStream(), { batchSize: BATCH, failAfter: 200, attempts }), {
      watermarks: WatermarkStrategy.boundedOutOfOrderness<Sale>(BOUND).withTimestamps((s) => s.ts),
    })
    .keyBy((s) => s.key)
    .window(TumblingEventTimeWindows.of(SIZE))
    .allowedLateness(LATENESS)
    .sideOutputLateData(tag)
    .aggregate(total);
  windows.sinkTo(collectSink(results, { transactional: true }));
  windows.getSideOutput(tag).sinkTo(collectSink(late, { transactional: true }));
  const { restarts } = await env.execute();
  return { results: results.map(brief), late, restarts };
}

describe('a window open at the restore point', () => {
  for (const backend of ['memory', 'rocksdb'] as const) {
    it(`fires exactly once, after the restore, with the elements from both sides (${backend})`, async () => {
      // The checkpoint covers 1–4 s: [0, 10 s) is open (watermark 3 999); 5 s, 6 s and 12 s come after the restore.
      const sales = [
        sale('a', 1000, 1),
        sale('a', 2000, 2),
        sale('a', 3000, 4),
        sale('a', 4000, 8),
        sale('a', 5000, 16),
        sale('a', 6000, 32),
        sale('a', 12_000, 64),
        sale('a', 13_000, 128),
      ];
      const results: WindowResult<string, Total>[] = [];
      const env = testEnvironment(dirs.make(), { backend });
      env
        .fromSource(failingOnceSource(sales, { batchSize: 2, failAfter: 4, attempts: { failed: false } }), {
          watermarks: WatermarkStrategy.forMonotonousTimestamps<Sale>().withTimestamps((s) => s.ts),
        })
        .keyBy((s) => s.key)
        .window(TumblingEventTimeWindows.of(10_000))
        .aggregate(total)
        // Not transactional: a firing in the failed attempt would show here too.
        .sinkTo(collectSink(results));
      const { restarts } = await env.execute();
      expect(restarts).toBe(1);
      expect(results.map(brief)).toEqual([
        { key: 'a', start: 0, end: 10_000, sum: 63, count: 6, firing: 'on-time', updateCount: 0 },
        { key: 'a', start: 10_000, end: 20_000, sum: 192, count: 2, firing: 'on-time', updateCount: 0 },
      ]);
    });
  }
});

describe('window state and timers across a restore', () => {
  for (const backend of ['memory', 'rocksdb'] as const) {
    it(`a job restored in the middle of open windows emits exactly what an uninterrupted run does (${backend})`, async () => {
      const clean = await run(backend, { failed: true });
      const restored = await run(backend, { failed: false });
      expect(clean.restarts).toBe(0);
      expect(restored.restarts).toBe(1);
      expect(restored.results).toEqual(clean.results);
      expect(restored.late).toEqual(clean.late);

      // Each window result is emitted once per firing, and the last one is the oracle's sum.
      const seen = new Set(restored.results.map((r) => `${r.key}|${r.start}|${r.updateCount}`));
      expect(seen.size).toBe(restored.results.length);
      const expected = oracle(salesStream());
      const last = new Map<string, { sum: number; count: number }>();
      for (const r of restored.results) last.set(`${r.key}|${r.start}`, { sum: r.sum, count: r.count });
      expect(Object.fromEntries(last)).toEqual(Object.fromEntries(expected.windows));
      expect(restored.late).toEqual(expected.late);
      // The scenario is only a test if it has updates and late events on both sides of the restore.
      expect(restored.results.some((r) => r.firing === 'late-update')).toBe(true);
      expect(expected.late.length).toBeGreaterThan(3);
    });
  }
});

/**
 * Two splits read alternately, one record each: 'fast' at 0, 1, 2 … s of event time, 'slow' 6 s
 * behind it. On the first attempt it fails once a checkpoint after `failAfter` records per split
 * completed; positions are per split, as Kafka offsets are per partition.
 */
function twoSplitSource(attempts: { failed: boolean }, failAfter: number, perSplit: number): SourceDefinition<Sale> {
  const splits = { fast: 0, slow: -6000 } as const;
  return {
    name: 'two-splits',
    createReader: (): SourceReader<Sale> => {
      const next = new Map<string, number>([
        ['fast', 0],
        ['slow', 0],
      ]);
      const checkpointed = new Map<number, number>();
      const failing = !attempts.failed;
      let armed = false;
      let turn = 0;
      return {
        open: (restored) => {
          for (const p of restored?.positions ?? []) next.set(p.split, Number(p.position));
          // A fresh start polls 'slow' first (a split unseen so far cannot hold the watermark back
          // at start-up); after a restore 'fast' comes first.
          turn = restored === undefined ? 1 : 0;
          return Promise.resolve();
        },
        poll: async (maxWaitMs) => {
          if (failing && armed) {
            attempts.failed = true;
            throw new Error('injected failure after a checkpoint');
          }
          const split = turn++ % 2 === 0 ? 'fast' : 'slow';
          const at = next.get(split) ?? 0;
          if (at >= perSplit || (failing && at >= failAfter)) {
            if (!failing && [...next.values()].every((n) => n >= perSplit)) return 'end';
            await new Promise((resolve) => setTimeout(resolve, Math.min(maxWaitMs, 5)));
            return 'idle';
          }
          next.set(split, at + 1);
          return {
            records: [{ value: sale(split, at * 1000 + splits[split]), timestamp: undefined }],
            split,
            bytes: 64,
          };
        },
        snapshot: (checkpointId) => {
          checkpointed.set(checkpointId, Math.min(...next.values()));
          return { positions: [...next].map(([split, n]) => ({ split, position: String(n) })) };
        },
        notifyCheckpointComplete: (checkpointId) => {
          if ((checkpointed.get(checkpointId) ?? 0) >= failAfter) armed = true;
          return Promise.resolve();
        },
        close: () => Promise.resolve(),
      };
    },
  };
}

describe('source watermarks across a restore', () => {
  it('a split that has not delivered since the restore still holds the watermark back', async () => {
    const run = async (attempts: { failed: boolean }) => {
      const results: WindowResult<string, Total>[] = [];
      const late: Sale[] = [];
      const tag = new OutputTag<Sale>('late');
      const env = testEnvironment(dirs.make());
      const windows = env
        .fromSource(twoSplitSource(attempts, 10, 30), {
          watermarks: WatermarkStrategy.forMonotonousTimestamps<Sale>().withTimestamps((s) => s.ts),
        })
        .keyBy((s) => s.key)
        .window(TumblingEventTimeWindows.of(SIZE))
        .sideOutputLateData(tag)
        .aggregate(total);
      windows.sinkTo(collectSink(results, { transactional: true }));
      windows.getSideOutput(tag).sinkTo(collectSink(late, { transactional: true }));
      const { restarts } = await env.execute();
      return { results: results.map(brief), late, restarts };
    };
    const clean = await run({ failed: true });
    const restored = await run({ failed: false });
    expect(clean.late).toEqual([]);
    expect(restored.restarts).toBe(1);
    // Were only the splits seen since the restore counted, 'fast' alone would set the watermark
    // 6 s ahead and 'slow' records would be late.
    expect(restored.late).toEqual([]);
    expect(restored.results).toEqual(clean.results);
  });
});
