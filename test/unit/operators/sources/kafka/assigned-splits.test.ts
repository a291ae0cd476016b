/**
 * A fresh start of the Debezium source on two partitions whose first fetches come one partition
 * at a time: every assigned partition must hold the source watermark back from the assignment
 * on, not from its first record. The fetcher is scripted, so the order is exact.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  OutputTag,
  TumblingEventTimeWindows,
  WatermarkStrategy,
  collectSink,
  debeziumSource,
  type ChangeEvent,
} from '../../../../../runtime/index.ts';
import type { DeadLetterWriter } from '../../../../../operators/sources/kafka/dead-letter-writer.ts';
import { splitOf, type FetchedBatch, type Fetcher } from '../../../../../operators/sources/kafka/fetcher.ts';
import { TempDirs, testEnvironment } from '../../window/harness.ts';
import { envelope, SOURCE } from './messages.ts';

const TOPIC = 'cdc.ecommerce.orders';
const ASSIGNMENT = [splitOf(TOPIC, 0), splitOf(TOPIC, 1)];
const dirs = new TempDirs();
afterEach(() => dirs.cleanup());

interface Row {
  readonly id: number;
  readonly status: string;
}
type Event = ChangeEvent<Row>;

/** One single-message batch per event time, for one partition; offsets count from 0. */
function partitionBatches(partition: number, times: readonly number[]): FetchedBatch[] {
  return times.map((ts, offset) => {
    const value = Buffer.from(
      JSON.stringify(
        envelope({ after: { id: partition * 1000 + offset, status: 'paid' }, source: { ...SOURCE, ts_ms: ts } }),
      ),
    );
    const message = {
      topic: TOPIC,
      partition,
      offset: String(offset),
      key: Buffer.from(`{"id":${partition * 1000 + offset}}`),
      value,
      timestampMs: ts,
    };
    return { topic: TOPIC, partition, messages: [message], nextOffset: String(offset + 1), bytes: value.length };
  });
}

/** Assigns both partitions at start (as a group join does), then delivers `batches` in this order, `paceMs` apart. */
function scriptedFetcher(batches: readonly FetchedBatch[], paceMs: number): Fetcher {
  let assigned: readonly string[] | undefined;
  const ends = new Map(ASSIGNMENT.map((split) => [split, { high: '0', low: '0' }]));
  for (const b of batches) ends.set(splitOf(b.topic, b.partition), { high: b.nextOffset, low: '0' });
  return {
    start: (deliver) => {
      assigned = ASSIGNMENT;
      void (async () => {
        for (const batch of batches) {
          if (paceMs > 0) await new Promise((resolve) => setTimeout(resolve, paceMs));
          await deliver(batch);
        }
      })().catch(() => undefined);
      return Promise.resolve();
    },
    commit: () => Promise.resolve(),
    endOffsets: () => Promise.resolve(ends),
    assignment: () => assigned,
    stop: () => Promise.resolve(),
  };
}

const noDeadLetters: DeadLetterWriter = {
  open: () => Promise.resolve(),
  write: () => Promise.reject(new Error('no dead letters expected')),
  close: () => Promise.resolve(),
};

interface Fired {
  readonly start: number;
  readonly count: number;
  /** The watermark that fired the window: +∞ when only the end of input did. */
  readonly watermark: number;
}

interface RunOptions {
  readonly bounded: boolean;
  readonly idlenessMs?: number;
  /** Pause before each batch. @default 0 */
  readonly paceMs?: number;
  /** Unbounded runs stop once this holds (or after 20 s). */
  readonly until?: (fired: readonly Fired[]) => boolean;
}

async function run(batches: readonly FetchedBatch[], options: RunOptions) {
  const fired: Fired[] = [];
  const late: Event[] = [];
  const tag = new OutputTag<Event>('late');
  const env = testEnvironment(dirs.make());
  const bounded = WatermarkStrategy.boundedOutOfOrderness<Event>(1000).withTimestamps((e) => e.source.tsMs);
  const source = debeziumSource<Row>({
    topics: [TOPIC],
    groupId: 'assigned-splits',
    fetcher: scriptedFetcher(batches, options.paceMs ?? 0),
    deadLetters: noDeadLetters,
    ...(options.bounded ? { bounded: 'latest' as const } : {}),
  });
  const windows = env
    .fromSource(source, {
      watermarks: options.idlenessMs === undefined ? bounded : bounded.withIdleness(options.idlenessMs),
    })
    .keyBy((e) => (e.after as Row).status)
    .window(TumblingEventTimeWindows.of(10_000))
    .sideOutputLateData(tag)
    .process<Fired>({
      process: (_key, ctx, elements, out) =>
        out.emit({ start: ctx.window.start, count: elements.length, watermark: ctx.currentWatermark }),
    });
  windows.sinkTo(collectSink(fired));
  windows.getSideOutput(tag).sinkTo(collectSink(late));
  const running = env.execute();
  if (options.until !== undefined) {
    const started = Date.now();
    while (!options.until(fired) && Date.now() - started < 20_000)
      await new Promise((resolve) => setTimeout(resolve, 10));
    void env.stop();
  }
  await running;
  return { fired, late };
}

describe('Debezium source: every assigned partition counts for the watermark from the start', () => {
  it('a partition whose first fetch comes after the other partition raced ahead is not late', async () => {
    // Partition 0 is 20 s ahead of partition 1 and is fetched entirely first.
    const batches = [
      ...partitionBatches(0, [0, 5000, 10_000, 15_000, 20_000, 25_000]),
      ...partitionBatches(1, [1000, 6000, 11_000]),
    ];
    const { fired, late } = await run(batches, { bounded: true });
    // Before the fix partition 1 was unknown until its first record: the watermark stood at
    // 23 999 by then and all three of its records went to the side output.
    expect(late.map((e) => e.source.tsMs)).toEqual([]);
    expect(fired.map(({ start, count }) => [start, count])).toEqual([
      [0, 4],
      [10_000, 3],
      [20_000, 2],
    ]);
  });

  it('an assigned partition that never delivers holds every window back without idleness', async () => {
    const { fired, late } = await run(partitionBatches(0, [0, 5000, 10_000, 15_000, 20_000, 25_000]), {
      bounded: true,
    });
    expect(late).toEqual([]);
    // Only the end of the bounded input fired them (event time jumps to +∞).
    expect(fired.map((f) => [f.start, f.count, f.watermark])).toEqual([
      [0, 2, Number.POSITIVE_INFINITY],
      [10_000, 2, Number.POSITIVE_INFINITY],
      [20_000, 2, Number.POSITIVE_INFINITY],
    ]);
  });

  it('with idleness, an assigned partition that never delivers stops holding the job back', async () => {
    // Partition 0 keeps delivering (one second of event time every 10 ms), so it is never idle
    // itself once partition 1 is: then partition 0 alone sets the watermark.
    const times = Array.from({ length: 61 }, (_, i) => i * 1000);
    const progressed = (fired: readonly Fired[]) => fired.length >= 2;
    const { fired, late } = await run(partitionBatches(0, times), {
      bounded: false,
      idlenessMs: 50,
      paceMs: 10,
      until: progressed,
    });
    expect(late).toEqual([]);
    expect(fired.slice(0, 2).map((f) => [f.start, f.count])).toEqual([
      [0, 10],
      [10_000, 10],
    ]);
    expect(fired.slice(0, 2).every((f) => Number.isFinite(f.watermark))).toBe(true);
  });
});
