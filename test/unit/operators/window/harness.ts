/** Shared pieces of the window tests: an environment on temp dirs, sources, and metric reads. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type {
  AggregateFunction,
  JobMetrics,
  SourceDefinition,
  SourceReader,
  StreamRecord,
  WindowAssigner,
  WindowResult,
} from '../../../../runtime/index.ts';
import {
  OutputTag,
  StreamEnvironment,
  WatermarkStrategy,
  collectSink,
  fromCollection,
} from '../../../../runtime/index.ts';

/** One sale: the window tests key by `key` and sum `amount` at event time `ts`. */
export interface Sale {
  readonly key: string;
  readonly ts: number;
  readonly amount: number;
}

export const sale = (key: string, ts: number, amount = 1): Sale => ({ key, ts, amount });

export interface Total {
  readonly sum: number;
  readonly count: number;
}

export const total: AggregateFunction<Sale, Total, Total> = {
  createAccumulator: () => ({ sum: 0, count: 0 }),
  add: (s, acc) => ({ sum: acc.sum + s.amount, count: acc.count + 1 }),
  getResult: (acc) => acc,
  merge: (a, b) => ({ sum: a.sum + b.sum, count: a.count + b.count }),
};

/** A result as the assertions read it. */
export const brief = (r: WindowResult<string, Total>) => ({
  key: r.key,
  start: r.window.start,
  end: r.window.end,
  sum: r.result.sum,
  count: r.result.count,
  firing: r.firing,
  updateCount: r.updateCount,
});

export class TempDirs {
  private readonly dirs: string[] = [];

  make(): string {
    const dir = mkdtempSync(join(tmpdir(), 'cdcflow-window-'));
    this.dirs.push(dir);
    return dir;
  }

  cleanup(): void {
    for (const dir of this.dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  }
}

export interface TestEnvironmentOptions {
  /** @default 'memory' */
  readonly backend?: 'memory' | 'rocksdb';
  /** @default 3 */
  readonly maxAttempts?: number;
}

export function testEnvironment(dir: string, options: TestEnvironmentOptions = {}): StreamEnvironment {
  return StreamEnvironment.create({
    jobName: 'window-test',
    checkpoints: { dir: join(dir, 'chk'), intervalMs: 20 },
    state: { backend: options.backend ?? 'memory', dir: join(dir, 'state') },
    restart: { maxAttempts: options.maxAttempts ?? 3, initialDelayMs: 10 },
    log: process.env['CDCFLOW_TEST_LOG'] === undefined ? () => undefined : (line) => console.error(line),
  });
}

/** Sum of a counter's series whose labels include `labels`. */
export async function counterValue(
  metrics: JobMetrics,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): Promise<number> {
  const metric = metrics.registry.getSingleMetric(name);
  if (metric === undefined) return 0;
  const { values } = await metric.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))
    .reduce((sum, v) => sum + v.value, 0);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A bounded single-split source like fromCollection that, on its first attempt only, fails once
 * a checkpoint covering the first `failAfter` elements completed — so the restart strategy
 * restores from a checkpoint taken in the middle of the input.
 */
export function failingOnceSource<T>(
  values: readonly T[],
  options: { batchSize: number; failAfter: number; attempts: { failed: boolean } },
): SourceDefinition<T> {
  // Batches then start at the same positions in a failing and an uninterrupted run.
  if (options.failAfter % options.batchSize !== 0) throw new Error('failAfter must be a multiple of batchSize');
  return {
    name: 'failing-once',
    createReader: (): SourceReader<T> => {
      let next = 0;
      let armed = false;
      const positions = new Map<number, number>();
      const failing = !options.attempts.failed;
      return {
        open: (restored) => {
          next = Number(restored?.positions[0]?.position ?? 0);
          return Promise.resolve();
        },
        poll: async (maxWaitMs) => {
          if (failing && armed) {
            options.attempts.failed = true;
            throw new Error('injected failure after a checkpoint');
          }
          if (failing && next >= options.failAfter) {
            await sleep(Math.min(maxWaitMs, 5));
            return 'idle';
          }
          if (next >= values.length) return 'end';
          const records: StreamRecord<T>[] = values
            .slice(next, next + options.batchSize)
            .map((value) => ({ value, timestamp: undefined }));
          next += records.length;
          return { records, split: '0', bytes: records.length * 64 };
        },
        snapshot: (checkpointId) => {
          positions.set(checkpointId, next);
          return { positions: [{ split: '0', position: String(next) }] };
        },
        notifyCheckpointComplete: (checkpointId) => {
          if ((positions.get(checkpointId) ?? 0) >= options.failAfter) armed = true;
          return Promise.resolve();
        },
        close: () => Promise.resolve(),
      };
    },
  };
}

export interface WindowRunOptions {
  readonly assigner: WindowAssigner;
  readonly batchSize: number;
  readonly boundMs: number;
  readonly latenessMs: number;
  /** Late events go to a side output (else they are dropped). */
  readonly withTag: boolean;
}

/** Runs sales → keyBy(key) → window → aggregate(total) to the end; returns what the sinks committed and the late counters. */
export async function runWindows(dir: string, sales: readonly Sale[], options: WindowRunOptions) {
  const results: WindowResult<string, Total>[] = [];
  const late: Sale[] = [];
  const tag = new OutputTag<Sale>('late-sales');
  const env = testEnvironment(dir);
  let windowed = env
    .fromSource(fromCollection(sales, { batchSize: options.batchSize }), {
      watermarks: WatermarkStrategy.boundedOutOfOrderness<Sale>(options.boundMs).withTimestamps((s) => s.ts),
    })
    .keyBy((s) => s.key)
    .window(options.assigner)
    .allowedLateness(options.latenessMs);
  if (options.withTag) windowed = windowed.sideOutputLateData(tag);
  const stream = windowed.aggregate(total);
  stream.sinkTo(collectSink(results, { transactional: true }));
  stream.getSideOutput(tag).sinkTo(collectSink(late, { transactional: true }));
  const result = await env.execute();
  return {
    results: results.map(brief),
    late,
    lateCount: await counterValue(result.metrics, 'cdcflow_late_events_total', { reason: 'beyond-allowed-lateness' }),
    dropped: await counterValue(result.metrics, 'cdcflow_late_events_dropped_total'),
  };
}
