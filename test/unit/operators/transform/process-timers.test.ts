import { afterEach, describe, expect, it } from 'vitest';
import {
  WatermarkStrategy,
  collectSink,
  fromCollection,
  valueState,
  type Output,
  type SourceDefinition,
  type SourceReader,
  type TimeDomain,
} from '../../../../runtime/index.ts';
import { TempDirs, failingOnceSource, sale, testEnvironment, type Sale } from '../window/harness.ts';

const dirs = new TempDirs();
afterEach(() => dirs.cleanup());
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const eventTime = WatermarkStrategy.forMonotonousTimestamps<Sale>().withTimestamps((s) => s.ts);

interface Fired {
  readonly key: string;
  readonly timestamp: number;
  readonly domain: TimeDomain;
  readonly watermark: number;
}

describe('keyed process function timers', () => {
  it('fire event-time timers once the watermark reaches them, in (timestamp, key) order, each once', async () => {
    const fired: Fired[] = [];
    const env = testEnvironment(dirs.make());
    env
      .fromSource(
        fromCollection([sale('a', 0), sale('a', 500), sale('b', 600), sale('a', 5000), sale('b', 5000)], {
          batchSize: 1,
        }),
        { watermarks: eventTime },
      )
      .keyBy((s) => s.key)
      .process<Fired>({
        processElement(s, ctx) {
          ctx.timers.registerEventTime(s.ts + 1000);
          ctx.timers.registerEventTime(s.ts + 1000); // the same timer: fires once
        },
        onTimer(timestamp, ctx, out) {
          out.emit({
            key: ctx.key as string,
            timestamp,
            domain: ctx.timeDomain,
            watermark: ctx.timers.currentWatermark(),
          });
        },
      })
      .sinkTo(collectSink(fired));
    await env.execute();
    expect(fired).toEqual([
      { key: 'a', timestamp: 1000, domain: 'event-time', watermark: 4999 },
      { key: 'a', timestamp: 1500, domain: 'event-time', watermark: 4999 },
      { key: 'b', timestamp: 1600, domain: 'event-time', watermark: 4999 },
      // End of input: event time jumps to +Infinity and every remaining timer fires.
      { key: 'a', timestamp: 6000, domain: 'event-time', watermark: Number.POSITIVE_INFINITY },
      { key: 'b', timestamp: 6000, domain: 'event-time', watermark: Number.POSITIVE_INFINITY },
    ]);
  });

  it('a deleted timer does not fire', async () => {
    const fired: number[] = [];
    const env = testEnvironment(dirs.make());
    env
      .fromSource(
        fromCollection([sale('a', 0), sale('a', 100, 0), sale('a', 200), sale('a', 5000, 0)], { batchSize: 1 }),
        { watermarks: eventTime },
      )
      .keyBy((s) => s.key)
      .process<number>({
        processElement(s, ctx) {
          if (s.amount === 0) ctx.timers.deleteEventTime(1000);
          else ctx.timers.registerEventTime(s.ts + 1000);
        },
        onTimer: (timestamp, _ctx, out) => out.emit(timestamp),
      })
      .sinkTo(collectSink(fired));
    await env.execute();
    expect(fired).toEqual([1200]);
  });

  it('fire processing-time timers from the task loop while the source is quiet', async () => {
    const fired: { timestamp: number; domain: TimeDomain; now: number }[] = [];
    let endedAt = Number.POSITIVE_INFINITY;
    const quietSource: SourceDefinition<Sale> = {
      name: 'one-then-quiet',
      createReader: (): SourceReader<Sale> => {
        let polls = 0;
        return {
          open: () => Promise.resolve(),
          poll: async (maxWaitMs) => {
            polls += 1;
            if (polls === 1) return { records: [{ value: sale('a', 0), timestamp: undefined }], split: '0', bytes: 64 };
            await sleep(Math.min(maxWaitMs, 10));
            if (polls < 40) return 'idle';
            endedAt = Date.now();
            return 'end';
          },
          snapshot: () => ({ positions: [] }),
          close: () => Promise.resolve(),
        };
      },
    };
    const env = testEnvironment(dirs.make());
    env
      .fromSource(quietSource)
      .keyBy((s) => s.key)
      .process<{ timestamp: number; domain: TimeDomain; now: number }>({
        processElement(_s, ctx) {
          ctx.timers.registerProcessingTime(ctx.timers.currentProcessingTime() + 50);
        },
        onTimer(timestamp, ctx, out) {
          out.emit({ timestamp, domain: ctx.timeDomain, now: ctx.timers.currentProcessingTime() });
        },
      })
      .sinkTo(collectSink(fired));
    await env.execute();
    expect(fired).toHaveLength(1);
    const [timer] = fired as [{ timestamp: number; domain: TimeDomain; now: number }];
    expect(timer.domain).toBe('processing-time');
    expect(timer.now).toBeGreaterThanOrEqual(timer.timestamp);
    expect(timer.now).toBeLessThan(endedAt); // fired by the ticks, not at the end
  });

  it('refuses timers when the function has no onTimer', async () => {
    const env = testEnvironment(dirs.make(), { maxAttempts: 0 });
    env
      .fromSource(fromCollection([sale('a', 0)]), { watermarks: eventTime })
      .keyBy((s) => s.key)
      .process({ processElement: (s, ctx) => ctx.timers.registerEventTime(s.ts + 1) })
      .sinkTo(collectSink([]));
    await expect(env.execute()).rejects.toThrow(/onTimer/);
  });

  for (const backend of ['memory', 'rocksdb'] as const) {
    it(`timers registered before a checkpoint fire exactly once after a restore (${backend})`, async () => {
      const sales = Array.from({ length: 100 }, (_, i) => sale(['a', 'b', 'c', 'd'][i % 4] as string, i * 100));
      const run = async (attempts: { failed: boolean }) => {
        const fired: { key: string; timestamp: number; seen: number }[] = [];
        const env = testEnvironment(dirs.make(), { backend });
        env
          .fromSource(failingOnceSource(sales, { batchSize: 10, failAfter: 50, attempts }), { watermarks: eventTime })
          .keyBy((s) => s.key)
          .process({
            state: { seen: valueState<number>() },
            processElement(s, ctx) {
              ctx.state.seen.update((ctx.state.seen.value() ?? 0) + 1);
              ctx.timers.registerEventTime(s.ts + 2000);
            },
            onTimer(timestamp, ctx, out: Output<{ key: string; timestamp: number; seen: number }>) {
              out.emit({ key: ctx.key, timestamp, seen: ctx.state.seen.value() ?? 0 });
            },
          })
          .sinkTo(collectSink(fired, { transactional: true }));
        const { restarts } = await env.execute();
        return { fired, restarts };
      };
      const clean = await run({ failed: true });
      const restored = await run({ failed: false });
      expect(restored.restarts).toBe(1);
      expect(restored.fired).toEqual(clean.fired);
      expect(restored.fired.map((f) => f.timestamp)).toEqual(sales.map((s) => s.ts + 2000));
    });
  }
});
