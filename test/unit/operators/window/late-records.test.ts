import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  OutputTag,
  StreamEnvironment,
  TumblingEventTimeWindows,
  WatermarkStrategy,
  collectSink,
  fromCollection,
  lateCountsPerWindow,
  type LateRecord,
  type WindowLateCount,
} from '../../../../runtime/index.ts';

interface Sale {
  readonly shop: string;
  readonly at: number;
}

describe('late records and per-window late counts', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('give each late element its window, lateness, watermark and operator, and count them per window', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdcflow-late-'));
    dirs.push(dir);
    // Window [0, 60000) of shop a fires at the watermark 130000; three elements of that window arrive after it.
    const sales: Sale[] = [
      { shop: 'a', at: 1_000 },
      { shop: 'a', at: 130_000 },
      { shop: 'a', at: 5_000 },
      { shop: 'a', at: 59_999 },
      { shop: 'b', at: 140_000 },
      { shop: 'a', at: 2_000 },
    ];
    const env = StreamEnvironment.create({
      jobName: 'late-records',
      checkpoints: { dir: join(dir, 'chk'), intervalMs: 50 },
      state: { backend: 'memory' },
      restore: 'none',
      log: () => undefined,
    });
    const lateTag = new OutputTag<LateRecord<string, Sale>>('late-records');
    const windows = env
      .fromSource(fromCollection(sales, { batchSize: 1 }), {
        watermarks: WatermarkStrategy.boundedOutOfOrderness<Sale>(0).withTimestamps((s) => s.at),
      })
      .keyBy((s) => s.shop)
      .window(TumblingEventTimeWindows.of(60_000))
      .sideOutputLateRecords(lateTag)
      .reduce((a) => a)
      .uid('sales-windows');
    const late: LateRecord<string, Sale>[] = [];
    const counts: WindowLateCount<string>[] = [];
    windows.getSideOutput(lateTag).sinkTo(collectSink(late));
    lateCountsPerWindow(windows.getSideOutput(lateTag)).sinkTo(collectSink(counts));
    await env.execute();

    expect(late.map((r) => [r.value.at, r.key, r.windowStart, r.windowEnd, r.operator])).toEqual([
      [5_000, 'a', 0, 60_000, 'sales-windows'],
      [59_999, 'a', 0, 60_000, 'sales-windows'],
      [2_000, 'a', 0, 60_000, 'sales-windows'],
    ]);
    for (const r of late) expect(r.latenessMs).toBe(r.watermark - r.eventTime);
    expect(late[0]?.watermark).toBeGreaterThanOrEqual(60_000);
    const last = counts[counts.length - 1];
    expect(last).toMatchObject({
      operator: 'sales-windows',
      key: 'a',
      windowStart: 0,
      windowEnd: 60_000,
      lateCount: 3,
    });
    expect(last?.maxLatenessMs).toBe(Math.max(...late.map((r) => r.latenessMs)));
  });
});
